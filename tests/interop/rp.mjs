// A relying party of the hub built with panva's certified `openid-client` (run by
// tests/interop.rs). Two steps, each one process, each printing one JSON object on stdout:
//
//   node rp.mjs authorize '<json>'  discovery, then the authorization URL (PKCE S256, state,
//                                   nonce): {"authorization_url", "state", "nonce", "code_verifier"};
//                                   with "request_mode": "par" the parameters are pushed to the
//                                   hub's /par first (RFC 9126), with "jar" they travel in a
//                                   request object signed with the RP's key (RFC 9101)
//   node rp.mjs callback '<json>'   given the URL the browser was sent back to: the code
//                                   exchange (ID token validated by openid-client), userinfo
//                                   and, with "replay": true, the same code redeemed again.
//
// <json>: {"issuer", "client_id", "redirect_uri", "auth": "client_secret_basic" |
// "private_key_jwt", "client_secret"?, "key_file"? (PKCS#8 DER, P-256), "kid"?,
// "acr_values"?, "request_mode"? ("plain" | "par" | "jar"), "callback_url"?, "state"?,
// "nonce"?, "code_verifier"?, "replay"?}
//
// OIDC errors (authorization response errors, token endpoint errors) are results, printed
// as {"error": {...}} with exit code 0; anything else is a crash (exit code 1, stderr).

import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import * as client from 'openid-client';

const TIMEOUT_SECS = 10;

function describe(e) {
  return {
    name: e?.name,
    code: e?.code,
    error: e?.error,
    error_description: e?.error_description,
    status: e?.status,
    message: e?.message,
  };
}

function isOidcError(e) {
  return e instanceof client.AuthorizationResponseError || e instanceof client.ResponseBodyError;
}

// The RP's P-256 signing key and its kid (client assertions and request objects).
async function signingKey(input) {
  if (!input.key_file) throw new Error('key_file is required to sign');
  const der = readFileSync(input.key_file);
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    der,
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  return { key, kid: input.kid };
}

async function clientAuth(input) {
  switch (input.auth) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(input.client_secret);
    case 'private_key_jwt':
      return client.PrivateKeyJwt(await signingKey(input));
    default:
      throw new Error(`unknown auth method ${input.auth}`);
  }
}

async function configuration(input) {
  const metadata = {
    redirect_uris: [input.redirect_uri],
    response_types: ['code'],
    token_endpoint_auth_method: input.auth,
  };
  if (input.client_secret) metadata.client_secret = input.client_secret;
  const config = await client.discovery(
    new URL(input.issuer),
    input.client_id,
    metadata,
    await clientAuth(input),
    // The hub runs on plain http on loopback in the tests.
    { execute: [client.allowInsecureRequests], timeout: TIMEOUT_SECS },
  );
  config.timeout = TIMEOUT_SECS;
  // Also verify the ID token's JWS signature with the hub's jwks_uri (openid-client
  // otherwise relies on TLS for ID tokens straight from the token endpoint).
  client.enableNonRepudiationChecks(config);
  return config;
}

async function authorize(input) {
  const config = await configuration(input);
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: input.redirect_uri,
    scope: 'openid profile address',
    acr_values: input.acr_values ?? 'P2',
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  let url;
  switch (input.request_mode ?? 'plain') {
    case 'plain':
      url = client.buildAuthorizationUrl(config, parameters);
      break;
    case 'par':
      url = await client.buildAuthorizationUrlWithPAR(config, parameters);
      break;
    case 'jar':
      url = await client.buildAuthorizationUrlWithJAR(config, parameters, await signingKey(input));
      break;
    default:
      throw new Error(`unknown request_mode ${input.request_mode}`);
  }
  const server = config.serverMetadata();
  return {
    authorization_url: url.href,
    state,
    nonce,
    code_verifier,
    server: {
      issuer: server.issuer,
      authorization_response_iss_parameter_supported:
        server.authorization_response_iss_parameter_supported ?? false,
      pushed_authorization_request_endpoint: server.pushed_authorization_request_endpoint ?? null,
      request_parameter_supported: server.request_parameter_supported ?? false,
    },
  };
}

async function redeem(config, input) {
  return client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.code_verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
}

async function callback(input) {
  const config = await configuration(input);
  let tokens;
  try {
    tokens = await redeem(config, input);
  } catch (e) {
    if (isOidcError(e)) return { error: describe(e) };
    throw e;
  }
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const result = {
    token: { token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope },
    id_token: tokens.id_token,
    id_token_claims: claims,
    userinfo,
  };
  if (input.replay) {
    try {
      await redeem(config, input);
      result.replay = { redeemed_again: true };
    } catch (e) {
      if (!isOidcError(e)) throw e;
      result.replay = { error: describe(e) };
    }
  }
  return result;
}

const [step, arg] = process.argv.slice(2);
const steps = { authorize, callback };
if (!steps[step] || !arg) {
  console.error('usage: node rp.mjs authorize|callback <json>');
  process.exit(2);
}
try {
  const out = await steps[step](JSON.parse(arg));
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (e) {
  console.error(`rp.mjs ${step} failed:`, e, e?.cause ?? '');
  process.exit(1);
}
