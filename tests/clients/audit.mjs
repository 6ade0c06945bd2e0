// The GraphQL-over-HTTP spec audit (npm graphql-http) against a running gateway.
// usage: node audit.mjs URL  -> prints one JSON line {ok, warn, error, notice, problems}
// Every request carries the CSRF header the gateway asks of scripts (a browser app's
// Apollo Client sends `apollo-require-preflight` the same way).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('x-graphql-csrf', '1');
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, warn: 0, error: 0, notice: 0 };
const problems = [];
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    problems.push({ id: result.id, status: result.status, name: result.name, reason: result.reason });
  }
}
console.log(JSON.stringify({ ...counts, problems }));
