// Apollo Client 3 (InMemoryCache with possibleTypes, the APQ link, BatchHttpLink, graphql-ws)
// against a running gateway, as a web or mobile app team would use it.
//
//   node apollo.mjs manifest           -> the app's persisted-query manifest (Apollo format)
//   node apollo.mjs run HTTP_URL WS_URL -> one JSON line reporting what each step saw
//
// The manifest holds TRUSTED exactly as the APQ link sends it (with the __typename fields
// the cache adds), as @apollo/generate-persisted-query-manifest would write it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const { ApolloClient, HttpLink, InMemoryCache, from, gql, split } = require('@apollo/client/core');
const { BatchHttpLink } = require('@apollo/client/link/batch-http');
const { createPersistedQueryLink } = require('@apollo/client/link/persisted-queries');
const { GraphQLWsLink } = require('@apollo/client/link/subscriptions');
const { addTypenameToDocument, getMainDefinition, print } = require('@apollo/client/utilities');

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
// Browser apps send this on every request (CSRF rule: a header only a script can set)
const headers = { 'apollo-require-preflight': 'true' };

const PLANS = gql`
  query Plans {
    packages(filter: { provider: ROAMIFY }, first: 20) {
      edges { node { id packageId requiresTravelDate price { amount currency } } }
    }
  }
`;
const TRUSTED = gql`
  query TrustedCatalog { catalogStatus { provider plans } }
`;
const BUY = gql`
  mutation Buy($input: CreateOrderInput!) {
    createOrder(input: $input) {
      __typename
      ... on Order { id status idempotencyKey esims { id iccid status } }
      ... on Error { message }
    }
  }
`;
const FOLLOW = gql`
  subscription Follow($id: ID!) { orderUpdated(id: $id) { id status } }
`;

if (process.argv[2] === 'manifest') {
  const body = print(addTypenameToDocument(TRUSTED));
  const manifest = {
    format: 'apollo-persisted-query-manifest',
    version: 1,
    operations: [{ id: sha256(body), name: 'TrustedCatalog', type: 'query', body }],
  };
  console.log(JSON.stringify(manifest));
  process.exit(0);
}

const [, , , httpUrl, wsUrl] = process.argv; // after "run"
const possibleTypes = JSON.parse(
  readFileSync(new URL('../../possible-types.json', import.meta.url), 'utf8'),
);

// every HTTP exchange, to report what went over the wire
const wire = [];
const recordingFetch = async (uri, init) => {
  const response = await fetch(uri, init);
  const text = await response.clone().text();
  const url = new URL(uri);
  wire.push({
    method: init.method,
    request: init.body ? JSON.parse(init.body) : Object.fromEntries(url.searchParams),
    status: response.status,
    response: text ? JSON.parse(text) : null,
  });
  return response;
};

const ws = createClient({ url: wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
const http = from([
  createPersistedQueryLink({ sha256, useGETForHashedQueries: true }),
  new HttpLink({ uri: httpUrl, fetch: recordingFetch, headers }),
]);
const client = new ApolloClient({
  cache: new InMemoryCache({ possibleTypes }),
  link: split(
    ({ query }) => getMainDefinition(query).operation === 'subscription',
    new GraphQLWsLink(ws),
    http,
  ),
});
const batching = new ApolloClient({
  cache: new InMemoryCache({ possibleTypes }),
  link: new BatchHttpLink({ uri: httpUrl, fetch: recordingFetch, headers, batchMax: 5, batchInterval: 20 }),
});

const report = {};
const since = () => wire.length;
const exchanges = (start) => wire.slice(start);
const notFound = (exchange) =>
  (exchange.response?.errors ?? []).some((e) => e.message === 'PersistedQueryNotFound');
const hashOnly = (exchange) =>
  exchange.request.query === undefined && JSON.stringify(exchange.request).includes('sha256Hash');

try {
  // a query through APQ: the hash alone is unknown, the link resends it with its text
  let start = since();
  const plans = await client.query({ query: PLANS, fetchPolicy: 'network-only' });
  let seen = exchanges(start);
  report.plans = plans.data.packages.edges.length;
  report.apqFirst = seen.map((e) => ({ method: e.method, hashOnly: hashOnly(e), notFound: notFound(e) }));
  // the same query again: the hash alone is enough now
  start = since();
  await client.query({ query: PLANS, fetchPolicy: 'network-only' });
  seen = exchanges(start);
  report.apqAgain = seen.map((e) => ({ method: e.method, hashOnly: hashOnly(e), notFound: notFound(e) }));

  // a trusted document (in the gateway's manifest): found by its hash on the first try
  start = since();
  const trusted = await client.query({ query: TRUSTED, fetchPolicy: 'network-only' });
  seen = exchanges(start);
  report.trusted = {
    providers: trusted.data.catalogStatus.length,
    exchanges: seen.map((e) => ({ hashOnly: hashOnly(e), notFound: notFound(e) })),
  };

  // a mutation with a union result, then the same idempotency key again
  const plan = plans.data.packages.edges.map((e) => e.node).find((n) => !n.requiresTravelDate);
  const input = {
    provider: 'ROAMIFY',
    items: [{ packageId: plan.packageId, quantity: 1 }],
    idempotencyKey: `apollo-${Date.now()}`,
  };
  const bought = (await client.mutate({ mutation: BUY, variables: { input } })).data.createOrder;
  const replayed = (await client.mutate({ mutation: BUY, variables: { input } })).data.createOrder;
  const esim = bought.esims[0];
  report.order = { typename: bought.__typename, status: bought.status, esims: bought.esims.length };
  report.replay = { typename: replayed.__typename, sameOrder: replayed.id === bought.id };
  report.esimNormalised =
    client.cache.identify({ __typename: 'Esim', id: esim.id }) in client.cache.extract();

  // two queries in one tick: one HTTP request carrying both
  start = since();
  const [first, second] = await Promise.all([
    batching.query({ query: TRUSTED, fetchPolicy: 'network-only' }),
    batching.query({
      query: gql`query PlanCount { packages(first: 1) { totalCount } }`,
      fetchPolicy: 'network-only',
    }),
  ]);
  seen = exchanges(start);
  report.batch = {
    requests: seen.length,
    operations: Array.isArray(seen[0]?.request) ? seen[0].request.length : 0,
    results: [first.data.catalogStatus.length > 0, second.data.packages.totalCount > 0],
  };

  // a subscription over graphql-ws: the order's current state first
  report.subscription = await new Promise((resolve, reject) => {
    const subscription = client.subscribe({ query: FOLLOW, variables: { id: bought.id } }).subscribe({
      next: ({ data }) => {
        subscription.unsubscribe();
        resolve({ id: data.orderUpdated.id === bought.id, status: data.orderUpdated.status });
      },
      error: reject,
    });
  });
} catch (error) {
  report.error = String(error?.stack ?? error);
} finally {
  await ws.dispose();
}
console.log(JSON.stringify(report));
