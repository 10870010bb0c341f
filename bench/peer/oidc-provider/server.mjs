// Peer authorization server for bench/oauth.sh: node oidc-provider (panva/node-oidc-provider)
// issuing client_credentials access tokens, configured to match what Berth does as closely as
// the library allows:
//   - one confidential client authenticated with client_secret_basic,
//   - access tokens are JWTs (RFC 9068 `at+jwt`) signed with Ed25519 (`alg: EdDSA`, Berth's
//     algorithm), via a resource indicator whose accessTokenFormat is 'jwt'; JWT tokens are not
//     written to the adapter, so the default in-memory adapter holds nothing per token and
//     workers share no state,
//   - one-hour lifetime, scope `projects:read` as Berth's bench client.
// Listens on 127.0.0.1 only. With PEER_WORKERS > 1 it runs node:cluster workers sharing the port
// (every worker gets the same signing key and client from the primary).
//
// Environment: PEER_PORT (default 18201), PEER_WORKERS (default 1), PEER_CLIENT_ID,
// PEER_CLIENT_SECRET (required), PEER_TOKEN_FORMAT ('jwt' default, or 'opaque').
import cluster from 'node:cluster';
import * as crypto from 'node:crypto';

const port = Number(process.env.PEER_PORT || 18201);
const workers = Number(process.env.PEER_WORKERS || 1);
const format = process.env.PEER_TOKEN_FORMAT || 'jwt';
const clientId = process.env.PEER_CLIENT_ID || 'bench';
const clientSecret = process.env.PEER_CLIENT_SECRET;
if (!clientSecret) throw new Error('PEER_CLIENT_SECRET is required');
if (!['jwt', 'opaque'].includes(format)) throw new Error('PEER_TOKEN_FORMAT must be jwt or opaque');

if (cluster.isPrimary && workers > 1) {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-ed25519', use: 'sig', alg: 'EdDSA' };
  const cookieKey = crypto.randomBytes(32).toString('base64url');
  let stopping = false;
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ PEER_JWK: JSON.stringify(jwk), PEER_COOKIE_KEY: cookieKey });
  }
  let listening = 0;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === workers) console.log(`oidc-provider: ${workers} workers on 127.0.0.1:${port}`);
  });
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      console.error(`worker ${w.process.pid} died (${signal || code}); stopping`);
      process.exit(1);
    }
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const { default: Provider } = await import('oidc-provider');
  const jwk = process.env.PEER_JWK
    ? JSON.parse(process.env.PEER_JWK)
    : { ...crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'bench-ed25519', use: 'sig', alg: 'EdDSA' };
  const cookieKey = process.env.PEER_COOKIE_KEY || crypto.randomBytes(32).toString('base64url');
  const resource = 'urn:berth:bench';

  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'projects:read',
    }],
    clientDefaults: { id_token_signed_response_alg: 'EdDSA' },
    jwks: { keys: [jwk] },
    cookies: { keys: [cookieKey] },
    scopes: ['projects:read'],
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'projects:read',
            audience: resource,
            accessTokenTTL: 3600,
            accessTokenFormat: format,
            ...(format === 'jwt' ? { jwt: { sign: { alg: 'EdDSA' } } } : {}),
          };
        },
      },
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));

  const server = provider.listen(port, '127.0.0.1', () => {
    if (!cluster.isWorker) console.log(`oidc-provider: 1 process on 127.0.0.1:${port}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
