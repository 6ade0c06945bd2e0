// Composed by bench/load.py once the simulator's port is known (ROAMIFY_UPSTREAM), then
// served by Hive Gateway with its defaults: the generic gateway the benchmark compares to.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('Roamify', {
        source: './roamify-order.openapi.json',
        endpoint: process.env.ROAMIFY_UPSTREAM ?? 'http://127.0.0.1:8100/roamify',
        operationHeaders: {
          Authorization: `Bearer ${process.env.ROAMIFY_TOKEN ?? 'sandbox-roamify-token'}`,
        },
      }),
    },
  ],
});
