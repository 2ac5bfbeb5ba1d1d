// An upstream identity provider for the hub built with panva's certified `oidc-provider`
// (run by tests/interop.rs).
//
//   node op.mjs '<json>'
//
// <json>: {"redirect_uri": the hub's /idp/callback, "client_id",
//          "auth": "client_secret_basic" | "private_key_jwt", "client_secret"?,
//          "jwks_uri"? (the hub's /jwks, for private_key_jwt), "acr"? (asserted level, "P2")}
//
// Listens on a free loopback port and prints {"issuer": "http://127.0.0.1:PORT"} as one
// line on stdout once it accepts requests; runs until killed (or its stdin closes).
//
// Its own interaction pages, plain HTML forms a cookie-jar client can submit:
//   GET  /interaction/:uid          login page (prompt login) or consent page (prompt consent)
//   POST /interaction/:uid/login    login=<account id>: signs in with acr <acr>
//   POST /interaction/:uid/confirm  grants the requested scopes and claims
//   POST /interaction/:uid/cancel   access_denied, "End-User cancelled the sign-in"
//   POST /interaction/:uid/deny     access_denied, "End-User denied the consent"
//   GET  /test/userinfo-requests    {"count": N}: requests its userinfo endpoint has had
//
// The `claims` request parameter is supported (OIDC Core 5.5): claims asked for in the
// ID token are put there once consented to.
//
// Accounts: "alice" (Alice Smith, 1980-04-10, 12 High Street, Leeds LS1 4AB: the demo
// department record 123) and "bob" (Robert Brown, no department record).

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const input = JSON.parse(process.argv[2] ?? '{}');
const acr = input.acr ?? 'P2';

const ACCOUNTS = {
  alice: {
    given_name: 'Alice',
    family_name: 'Smith',
    birthdate: '1980-04-10',
    gender: 'female',
    address: {
      street_address: '12 High Street',
      locality: 'Leeds',
      postal_code: 'LS1 4AB',
      country: 'GB',
    },
  },
  bob: {
    given_name: 'Robert',
    family_name: 'Brown',
    birthdate: '1975-01-31',
    gender: 'male',
    address: {
      street_address: '3 Mill Lane',
      locality: 'York',
      postal_code: 'YO1 7HH',
      country: 'GB',
    },
  },
};

function html(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function client() {
  const c = {
    client_id: input.client_id,
    redirect_uris: [input.redirect_uri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: input.auth,
  };
  if (input.auth === 'client_secret_basic') {
    c.client_secret = input.client_secret;
  } else {
    c.jwks_uri = input.jwks_uri;
    c.token_endpoint_auth_signing_alg = 'ES256';
  }
  return c;
}

// Where start-up has got to, on stderr (shown by the test if the start times out).
const progress = (step) =>
  console.error(`op.mjs: ${step}, ${Math.round(process.uptime() * 1000)} ms after node started`);
progress('oidc-provider imported');

// The OP's own signing key: RSA, so ID tokens are RS256 (oidc-provider's default).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
progress(`key generated, listening at ${issuer}`);

const provider = new Provider(issuer, {
  clients: [client()],
  jwks: { keys: [signingJwk] },
  acrValues: ['P0', 'P1', 'P2', 'P3'],
  claims: {
    acr: null,
    auth_time: null,
    iss: null,
    sid: null,
    openid: ['sub'],
    profile: ['given_name', 'middle_name', 'family_name', 'birthdate', 'gender'],
    address: ['address'],
  },
  scopes: ['openid', 'profile', 'address'],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: false }, claimsParameter: { enabled: true } },
  // oidc-provider refuses to fetch from special-use addresses (SSRF protection); the hub's
  // jwks_uri is on loopback in the tests, so drop that guard for them.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const claims = ACCOUNTS[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});

// What went wrong, on stderr (printed by the test when it fails).
for (const event of ['server_error', 'grant.error', 'userinfo.error', 'authorization.error']) {
  provider.on(event, (ctx, err) => {
    let line = `oidc-provider ${event}: ${err?.name}: ${err?.message} (${err?.error_description ?? ''}; ${err?.error_detail ?? ''})`;
    for (let cause = err?.cause; cause; cause = cause.cause) {
      line += `\n  caused by ${cause?.name}: ${cause?.message ?? cause}`;
    }
    console.error(line);
  });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  const { prompt, params, session } = details;
  if (req.method === 'GET' && !action) {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (prompt.name === 'login') {
      res.end(html('Sign in', `<h1>Sign in</h1>
<form method="post" action="/interaction/${escape(uid)}/login">
  <input type="text" name="login" value="">
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/cancel"><button type="submit">Cancel</button></form>`));
    } else {
      res.end(html('Consent', `<h1>Share ${escape(params.scope)} with ${escape(params.client_id)}?</h1>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${escape(uid)}/deny"><button type="submit">Deny</button></form>`));
    }
    return;
  }
  if (req.method !== 'POST') {
    res.statusCode = 405;
    res.end();
    return;
  }
  const form = await readForm(req);
  let result;
  switch (action) {
    case 'login': {
      const accountId = form.get('login');
      if (prompt.name !== 'login' || !ACCOUNTS[accountId]) {
        res.statusCode = 400;
        res.end(html('Sign in', '<p>unknown account</p>'));
        return;
      }
      result = { login: { accountId, acr, amr: ['pwd'] } };
      break;
    }
    case 'confirm': {
      if (prompt.name !== 'consent') throw new Error(`consent submitted at prompt ${prompt.name}`);
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result = { consent: { grantId: await grant.save() } };
      break;
    }
    case 'cancel':
      result = { error: 'access_denied', error_description: 'End-User cancelled the sign-in' };
      break;
    case 'deny':
      result = { error: 'access_denied', error_description: 'End-User denied the consent' };
      break;
    default:
      res.statusCode = 404;
      res.end();
      return;
  }
  await provider.interactionFinished(req, res, result, {
    mergeWithLastSubmission: action === 'confirm',
  });
}

const callback = provider.callback();
let userinfoRequests = 0;
server.on('request', (req, res) => {
  if (req.url === '/test/userinfo-requests') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ count: userinfoRequests }));
    return;
  }
  if (req.url.startsWith('/me')) userinfoRequests += 1;
  const m = /^\/interaction\/([^/?]+)(?:\/([a-z]+))?(?:\?.*)?$/.exec(req.url);
  if (!m) {
    callback(req, res);
    return;
  }
  interaction(req, res, m[1], m[2]).catch((err) => {
    console.error('interaction failed:', err);
    if (!res.headersSent) res.statusCode = 500;
    res.end(html('Error', `<p>${escape(err.message)}</p>`));
  });
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
// The test holds our stdin: when it goes away (test ended, even by a panic), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
