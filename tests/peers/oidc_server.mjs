// A real OAuth 2.0 authorization server for tests: panva's oidc-provider with one confidential client.
//
// PKCE is required, refresh tokens rotate (reusing a rotated one revokes the whole grant), access tokens
// live OIDC_ACCESS_TOKEN_TTL seconds. The provider scopes a connector asks for (OIDC_SCOPES) are the
// scopes of one resource server, the default resource, so no `resource` parameter is needed. Every code
// grant issues a refresh token (no `offline_access` dance). The dev login and consent forms accept anyone.
//
// Besides the provider's own routes, /_control/stats counts token requests by grant type and outcome, and
// POST /_control/revoke-grants destroys every grant, as a user revoking the app at the provider would.
// It is also the resource server: POST /crm/v3/objects/contacts/search (HubSpot's path and answer shape)
// answers only a live access token this provider issued with crm.objects.contacts.read, on a live grant.
//
// Environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, OIDC_SCOPES (space
// separated), OIDC_ACCESS_TOKEN_TTL (seconds, default 30), NODE_MODULES_DIR (where oidc-provider is).

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.NODE_MODULES_DIR ?? resolve(here, '../../.tools/node/node_modules');
const pkg = JSON.parse(readFileSync(join(modules, 'oidc-provider', 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider', pkg.main)).href);

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const port = Number(env('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const resourceServer = `${issuer}/api`;
const scopes = env('OIDC_SCOPES').split(' ').filter(Boolean);
const accessTokenTTL = Number(env('OIDC_ACCESS_TOKEN_TTL', '30'));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env('OIDC_CLIENT_ID'),
      client_secret: env('OIDC_CLIENT_SECRET'),
      token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: [env('OIDC_REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  ],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: accessTokenTTL },
  cookies: { keys: ['switchboard-test-only-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resourceServer,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resourceServer) throw new Provider.errors.InvalidTarget();
        return { scope: scopes.join(' '), accessTokenTTL, accessTokenFormat: 'opaque' };
      },
    },
  },
});

const stats = {
  token_requests: {}, token_errors: {}, errors: [], rotated_refresh_tokens: [], grants: [], api_requests: 0,
  api_refused: 0,
};
const count = (table, key) => { table[key] = (table[key] ?? 0) + 1; };

provider.on('grant.success', (ctx) => {
  const grantType = ctx.oidc.params.grant_type;
  count(stats.token_requests, grantType);
  const grant = ctx.oidc.entities.Grant;
  if (grantType === 'authorization_code' && grant) stats.grants.push(grant.jti);
  const rotated = ctx.oidc.entities.RotatedRefreshToken;
  if (rotated) stats.rotated_refresh_tokens.push(rotated.jti);
});
provider.on('grant.error', (ctx, error) => {
  const grantType = ctx.oidc.params?.grant_type ?? 'unknown';
  count(stats.token_requests, grantType);
  count(stats.token_errors, grantType);
  stats.errors.push(`${grantType}: ${error.error} (${error.error_description})`);
});

async function control(req, res) {
  let body = stats;
  if (req.method === 'POST' && req.url === '/_control/revoke-grants') {
    for (const id of stats.grants) {
      const grant = await provider.Grant.find(id);
      if (grant) await grant.destroy();
    }
    body = { revoked: stats.grants.length };
  } else if (req.url !== '/_control/stats') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const CONTACT = {
  id: '1',
  properties: { email: 'ada@example.com', firstname: 'Ada', lastname: 'Lovelace' },
  createdAt: '2024-01-01T00:00:00Z',
  updatedAt: '2024-01-02T00:00:00Z',
  archived: false,
};

async function api(req, res) {
  for await (const _ of req); // drain the body
  stats.api_requests += 1;
  const value = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  const token = value ? await provider.AccessToken.find(value) : undefined;
  const grant = token ? await provider.Grant.find(token.grantId) : undefined;
  if (!token || token.isExpired || !grant || !token.scopes.has('crm.objects.contacts.read')) {
    stats.api_refused += 1;
    res.writeHead(401, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: 'error', category: 'INVALID_AUTHENTICATION', message: 'Authentication credentials not found.' }));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ total: 1, results: [CONTACT] }));
}

const handle = provider.callback();
const server = createServer((req, res) => {
  const fail = (error) => res.writeHead(500).end(String(error));
  if (req.url.startsWith('/_control/')) {
    control(req, res).catch(fail);
  } else if (req.method === 'POST' && req.url.split('?')[0] === '/crm/v3/objects/contacts/search') {
    api(req, res).catch(fail);
  } else {
    handle(req, res);
  }
});
server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
