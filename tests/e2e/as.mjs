// SPDX-License-Identifier: Apache-2.0
// The authorization server of the end-to-end tests: panva's oidc-provider
// behind node's https server (the test's throwaway CA signed its certificate).
//
//   node as.mjs CONFIG.json
//
// CONFIG (written by tests/integration/test_e2e_oidc.py, mode 0600):
//   port, issuer           https://127.0.0.1:PORT (no trailing slash)
//   tls: {cert, key}       PEM files
//   jwks: {keys: [...]}    private signing JWKs, each with kid and alg; a
//                          "rotation" is a restart with another set
//   clients: [{client_id, client_secret, scope}]
//   resources: {URI: {format: "jwt"|"opaque", ttl}}
//
// Grants client_credentials only; DPoP-bound tokens (RFC 9449); one access
// token format per resource indicator (RFC 8707); introspection (RFC 7662),
// revocation (RFC 7009) and discovery. Tokens live in oidc-provider's memory
// adapter: a restart forgets every opaque token. Prints "ready PORT" on
// stdout once listening; never logs a token or a secret.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const provider = new Provider(cfg.issuer, {
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope: c.scope || 'api:read',
  })),
  jwks: cfg.jwks,
  scopes: ['api:read'],
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const rs = cfg.resources[resource];
        if (!rs) throw new Error('unknown resource');
        const info = {
          scope: 'api:read',
          audience: resource,
          accessTokenTTL: rs.ttl || 300,
          accessTokenFormat: rs.format,
        };
        if (rs.format === 'jwt') info.jwt = { sign: { alg: 'ES256' } };
        return info;
      },
    },
  },
  // the suite's clocks are one machine's: no leeway needed beyond the default
  cookies: { keys: ['e2e-cookie-key-not-a-secret-of-any-test'] },
});

// oidc-provider emits server_error events with the error object only; print
// the message (never a request body, so never a token or a secret).
provider.on('server_error', (ctx, err) => console.error('as: server_error:', err.message));

const server = https.createServer({
  cert: readFileSync(cfg.tls.cert),
  key: readFileSync(cfg.tls.key),
}, provider.callback());
server.listen(cfg.port, '127.0.0.1', () => {
  console.log(`ready ${cfg.port}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
