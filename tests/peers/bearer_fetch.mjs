// Preloaded into an MCP client written in Node (`node --import`), adds `Authorization: Bearer
// $MCP_BEARER_TOKEN` to every fetch to $MCP_BEARER_ORIGIN. It stands in for the `--header` option that the
// MCP Inspector CLI gained only after 0.15 (those versions need Node 22); with it the test drives the same
// real client, the Inspector's TypeScript SDK transport, and the key stays out of the command line.

const origin = process.env.MCP_BEARER_ORIGIN;
const token = process.env.MCP_BEARER_TOKEN;
const original = globalThis.fetch;

if (origin && token) {
  globalThis.fetch = (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.origin !== origin) return original(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('authorization', `Bearer ${token}`);
    return original(input, { ...init, headers });
  };
}
