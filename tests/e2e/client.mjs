// SPDX-License-Identifier: Apache-2.0
// The DPoP client of the end-to-end tests: panva's oauth4webapi.
//
//   node client.mjs STATE.json STEPS.json
//
// STATE (0600, kept by the test between runs): {issuer, client_id,
// client_secret, keys: {NAME: {private, public}}, tokens: {NAME: {...}}}.
// Keys and tokens made by one run are saved there for the next; the test
// reads the tokens and private keys from it only to check that no log ever
// holds one. STEPS: a list, run in order, one JSON result each on stdout:
//   {op: "key", name}                               new ES256 DPoP key pair
//   {op: "token", name, key, resource}              client_credentials grant,
//       DPoP-bound to `key` (the AS's use_dpop_nonce is retried by the handle)
//   {op: "call", token, key, url, method, h2}       protectedResourceRequest
//       with the DPoP handle of `key`; on a use_dpop_nonce challenge
//       (isDPoPNonceError) it retries ONCE, as the library documents, with
//       the nonce the handle cached from the DPoP-Nonce header; with h2:
//       true over HTTP/2 (node:http2 as its customFetch, one session per run;
//       the result's `session` numbers the connection it went on)
//   {op: "replay", token, key, url}                 one call, then the very
//       same request (same proof) again through plain fetch
//   {op: "revoke", token}                           RFC 7009 at the AS
//   {op: "sleep", ms}                               wait (an h2 session stays
//       open across it: the next call reaches the same httpd child)
// Results never hold a token or a proof: statuses, the challenge's error,
// whether a retry happened, and the backend's NAME=value lines.
// The CA of the AS and of httpd comes in through NODE_EXTRA_CA_CERTS.
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import * as oauth from 'oauth4webapi';

const [statePath, stepsPath] = process.argv.slice(2);
const state = JSON.parse(readFileSync(statePath, 'utf8'));
const steps = JSON.parse(readFileSync(stepsPath, 'utf8'));
state.keys ||= {};
state.tokens ||= {};

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' };
const client = { client_id: state.client_id };
const clientAuth = oauth.ClientSecretBasic(state.client_secret);
const handles = {};
state.proofs ||= [];

// Every DPoP proof sent is kept in the state file, for the test's check
// that no log holds one (never printed).
function remember(init) {
  const proof = new Headers(init?.headers).get('dpop');
  if (proof) state.proofs.push(proof);
}

function recordingFetch(url, init) {
  remember(init);
  return fetch(url, init);
}

// A fetch over HTTP/2 (node:http2), one session per origin reused by every
// call of this run: oauth4webapi's protectedResourceRequest goes through it
// as [oauth.customFetch] when a step says h2. A session whose ALPN did not
// pick h2 fails (node:http2 speaks nothing else).
const sessions = {};
let sessionCount = 0;
function h2Fetch(url, init) {
  remember(init);
  const u = new URL(url);
  if (!sessions[u.origin] || sessions[u.origin].closed) {
    sessions[u.origin] = http2.connect(u.origin);
    sessions[u.origin].streams = 0;
    sessionCount += 1;
    sessions[u.origin].number = sessionCount;
  }
  const session = sessions[u.origin];
  session.streams += 1;
  const headers = { ':method': init.method || 'GET', ':path': u.pathname + u.search };
  for (const [k, v] of new Headers(init.headers)) headers[k] = v;
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: !init.body });
    if (init.body) stream.end(init.body);
    const chunks = [];
    let status = 0;
    const out = new Headers();
    stream.on('response', (h) => {
      status = h[':status'];
      for (const [k, v] of Object.entries(h)) {
        if (!k.startsWith(':')) out.append(k, Array.isArray(v) ? v.join(', ') : String(v));
      }
    });
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const res = new Response(Buffer.concat(chunks), { status, headers: out });
      Object.defineProperty(res, 'url', { value: u.href });
      res.protocol = session.alpnProtocol;
      res.session = session.number;
      resolve(res);
    });
    stream.on('error', reject);
  });
}

function closeSessions() {
  for (const s of Object.values(sessions)) s.close();
}

async function keyPair(name) {
  const k = state.keys[name];
  if (!k) throw new Error(`no key ${name}`);
  return {
    privateKey: await crypto.subtle.importKey('jwk', k.private, ES256, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', k.public, ES256, true, ['verify']),
  };
}

async function handle(name) {
  handles[name] ||= oauth.DPoP(client, await keyPair(name));
  return handles[name];
}

async function discover() {
  const issuer = new URL(state.issuer);
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oidc' });
  return oauth.processDiscoveryResponse(issuer, res);
}

function backendEnv(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

function challengeOf(err) {
  const c = (err.cause || [])[0];
  return c ? { scheme: c.scheme, error: c.parameters?.error } : {};
}

async function call(step) {
  const tok = state.tokens[step.token];
  const dpop = await handle(step.key);
  const method = step.method || 'GET';
  const url = new URL(step.url);
  let retried = false;
  for (;;) {
    try {
      const res = await oauth.protectedResourceRequest(tok.access_token, method, url,
        new Headers(), null, { DPoP: dpop, [oauth.customFetch]: step.h2 ? h2Fetch : recordingFetch });
      const text = await res.text();
      return {
        status: res.status,
        retried,
        protocol: step.h2 ? res.protocol : 'http/1.1',
        session: res.session,
        env: backendEnv(text),
      };
    } catch (err) {
      if (oauth.isDPoPNonceError(err) && !retried) {
        retried = true;
        continue;
      }
      if (err instanceof oauth.WWWAuthenticateChallengeError) {
        return {
          status: err.response.status,
          retried,
          protocol: step.h2 ? err.response.protocol : 'http/1.1',
          session: err.response.session,
          ...challengeOf(err),
        };
      }
      throw err;
    }
  }
}

async function replay(step) {
  const tok = state.tokens[step.token];
  const dpop = await handle(step.key);
  let captured;
  const first = await oauth.protectedResourceRequest(tok.access_token, 'GET', new URL(step.url),
    new Headers(), null, {
      DPoP: dpop,
      [oauth.customFetch]: (url, init) => {
        captured = { url, headers: new Headers(init.headers) };
        return recordingFetch(url, init);
      },
    });
  const again = await fetch(captured.url, { method: 'GET', headers: captured.headers });
  return {
    first: first.status,
    second: again.status,
    second_www_authenticate_error: /error="([^"]+)"/.exec(again.headers.get('www-authenticate') || '')?.[1],
  };
}

async function run(step, as) {
  switch (step.op) {
    case 'key': {
      const kp = await crypto.subtle.generateKey(ES256, true, ['sign', 'verify']);
      state.keys[step.name] = {
        private: await crypto.subtle.exportKey('jwk', kp.privateKey),
        public: await crypto.subtle.exportKey('jwk', kp.publicKey),
      };
      const jkt = await oauth.DPoP(client, kp).calculateThumbprint();
      state.keys[step.name].jkt = jkt;
      return { ok: true, jkt };
    }
    case 'token': {
      const dpop = await handle(step.key);
      const params = new URLSearchParams({ scope: 'api:read', resource: step.resource });
      const req = () => oauth.clientCredentialsGrantRequest(as, client, clientAuth, params,
        { DPoP: dpop, [oauth.customFetch]: recordingFetch });
      let res;
      try {
        res = await oauth.processClientCredentialsResponse(as, client, await req());
      } catch (err) {
        if (!oauth.isDPoPNonceError(err)) throw err;
        res = await oauth.processClientCredentialsResponse(as, client, await req());
      }
      state.tokens[step.name] = { access_token: res.access_token, key: step.key };
      return {
        ok: true,
        token_type: res.token_type,
        expires_in: res.expires_in,
        jws_shaped: res.access_token.split('.').length === 3,
      };
    }
    case 'call':
      return call(step);
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, step.ms));
      return { ok: true };
    case 'replay':
      return replay(step);
    case 'revoke': {
      const res = await oauth.revocationRequest(as, client, clientAuth,
        state.tokens[step.token].access_token);
      await oauth.processRevocationResponse(res);
      return { ok: true };
    }
    default:
      throw new Error(`unknown op ${step.op}`);
  }
}

let failed = false;
try {
  const as = steps.some((s) => s.op === 'token' || s.op === 'revoke') ? await discover() : null;
  for (const step of steps) {
    try {
      const out = await run(step, as);
      console.log(JSON.stringify({ op: step.op, ...out }));
    } catch (err) {
      failed = true;
      // the message and code of an oauth4webapi error name no credential
      console.log(JSON.stringify({ op: step.op, error: err.code || err.name, message: err.message }));
    }
  }
} finally {
  closeSessions();
  writeFileSync(statePath, JSON.stringify(state), { mode: 0o600 });
}
process.exit(failed ? 1 : 0);
