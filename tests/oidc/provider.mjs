// A real OpenID Connect provider for the tests: panva's oidc-provider, mounted under
// /realms/<realm> on 127.0.0.1 with Keycloak's endpoint paths, its users and public clients read
// from one JSON file (argv[2]). See crates/testkit/src/oidc.rs for the file's format.
//
// Prints exactly one line, `listening <port> <issuer>`, on stdout once it serves; logs one line per
// request (method, path without the query, status) on stderr; exits when stdin closes or on
// SIGTERM/SIGINT, so a test that dies never leaves it running.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: node provider.mjs <config.json>\n');
  process.exit(2);
}

let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  process.stderr.write(`${configPath}: not a readable JSON configuration (${err.message})\n`);
  process.exit(2);
}

const realm = config.realm ?? 'svcid';
const users = config.users ?? [];
const clients = config.clients ?? [];
const accessTokenTtl = config.accessTokenTtl ?? 300;
const idTokenTtl = config.idTokenTtl ?? accessTokenTtl;
const refreshTokenTtl = config.refreshTokenTtl ?? 1800;
// Keycloak's access tokens name the `account` client as their audience.
const audience = config.audience ?? 'account';
// Keycloak's header `typ`; `at+jwt` is what oidc-provider would use (RFC 9068).
const accessTokenTyp = config.accessTokenTyp ?? 'JWT';
// The resource indicator every authorization request gets when it names none: its access tokens
// are RS256 JWTs for `audience`.
const RESOURCE = 'urn:svcid:test-resource';
const RESOURCE_SCOPE = 'openid profile email';

const prefix = `/realms/${encodeURIComponent(realm)}`;
const interactionPrefix = `${prefix}/login-actions/`;

function userById(id) {
  return users.find((u) => u.id === id);
}

// One RSA 2048 signing key, generated now, held in memory only.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomUUID(),
  alg: 'RS256',
  use: 'sig',
};

function htmlEscape(text) {
  return String(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function providerConfiguration() {
  return {
    clients: clients.map((c) => ({
      client_id: c.client_id,
      redirect_uris: c.redirect_uris ?? [],
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    })),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub', 'preferred_username'],
      profile: ['name', 'preferred_username'],
      email: [],
    },
    // ID tokens carry the profile claims (as Keycloak's do), not only `sub`.
    conformIdTokenClaims: false,
    findAccount(_ctx, sub) {
      const user = userById(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return { sub: user.id, preferred_username: user.username, name: user.name ?? user.username };
        },
      };
    },
    // Keycloak issues a refresh token to every client allowed the grant, offline_access or not.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: accessTokenTtl,
      IdToken: idTokenTtl,
      RefreshToken: refreshTokenTtl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      end_session: '/protocol/openid-connect/logout',
      userinfo: '/protocol/openid-connect/userinfo',
      introspection: '/protocol/openid-connect/token/introspect',
      revocation: '/protocol/openid-connect/revoke',
    },
    interactions: {
      url: (_ctx, interaction) => `${interactionPrefix}${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // No confirmation page: a form that submits itself (with `logout=yes`, ending the whole
        // session), as Keycloak signs out at once when the request names its ID token.
        logoutSource: async (ctx, form) => {
          const autoForm = form.replace(
            '</form>',
            '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit">Sign out</button></noscript></form>',
          );
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing out</title></head>
<body>${autoForm}
<script>document.forms[0].submit()</script></body></html>`;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: RESOURCE_SCOPE,
            audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        // Keycloak's access token: header typ JWT, and the user's name and roles in both shapes
        // the modules read (Keycloak's realm_access.roles, MicroProfile JWT's groups).
        jwt: (_ctx, token, jwt) => {
          jwt.header = { typ: accessTokenTyp };
          const user = userById(token.accountId);
          jwt.payload.typ = 'Bearer';
          jwt.payload.azp = token.clientId;
          if (user) {
            const roles = user.roles ?? [];
            jwt.payload.preferred_username = user.username;
            jwt.payload.name = user.name ?? user.username;
            jwt.payload.realm_access = { roles: [...roles] };
            jwt.payload.groups = [...roles];
          }
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Error</title></head><body>
<h1 id="error">${htmlEscape(out.error)}</h1><p id="error_description">${htmlEscape(out.error_description ?? '')}</p>
</body></html>`;
    },
  };
}

function loginPage(uid, { username = '', error } = {}) {
  const action = `${interactionPrefix}${uid}`;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in to ${htmlEscape(realm)}</title></head>
<body>
<h1>Sign in to ${htmlEscape(realm)}</h1>
${error ? `<p id="error" role="alert">${htmlEscape(error)}</p>` : ''}
<form method="post" action="${htmlEscape(action)}">
<label for="username">Username</label>
<input name="username" id="username" value="${htmlEscape(username)}" autofocus>
<label for="password">Password</label>
<input name="password" id="password" type="password">
<button id="login" type="submit">Sign in</button>
</form>
</body></html>`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) reject(new Error('request body over 64 KiB'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

// The consent prompt: every scope, claim and resource the request asks for is granted.
async function grantEverything(provider, interaction) {
  const { prompt: { details }, params, session } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return interaction.grantId ? {} : { grantId };
}

async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt } = details;
  if (prompt.name === 'consent') {
    const consent = await grantEverything(provider, details);
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }
  if (prompt.name !== 'login') {
    send(res, 400, 'text/plain', `unsupported prompt ${prompt.name}\n`);
    return;
  }
  if (req.method === 'GET') {
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain', 'GET or POST\n');
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  const username = form.get('username') ?? '';
  const password = form.get('password') ?? '';
  const user = users.find((u) => u.username === username && u.password === password);
  if (!user) {
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid, {
      username,
      error: 'Invalid username or password.',
    }));
    return;
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: user.id } },
    { mergeWithLastSubmission: false },
  );
}

const server = createServer();
server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}${prefix}`;
  const provider = new Provider(issuer, providerConfiguration());
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`server_error: ${err.stack ?? err}\n`);
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.on('finish', () => {
      // The path only: queries carry codes and tokens.
      process.stderr.write(`${req.method} ${path} ${res.statusCode}\n`);
    });
    try {
      if (path.startsWith(interactionPrefix)) {
        await interaction(provider, req, res);
      } else if (path === prefix || path.startsWith(`${prefix}/`)) {
        req.originalUrl = req.url;
        req.url = req.url.slice(prefix.length) || '/';
        callback(req, res);
      } else {
        send(res, 404, 'text/plain', 'not found\n');
      }
    } catch (err) {
      process.stderr.write(`${req.method} ${path}: ${err.stack ?? err}\n`);
      if (!res.headersSent) {
        send(res, 400, 'text/plain', `${err.name ?? 'error'}: ${err.message ?? err}\n`);
      } else {
        res.end();
      }
    }
  });

  process.stdout.write(`listening ${port} ${issuer}\n`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
