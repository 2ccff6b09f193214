// SPDX-License-Identifier: Apache-2.0
// Interoperability of mod_dpop's DPoP proofs with an independent
// implementation, the npm `jose` library (panva/jose).
//
//   (a) dpopctl keygen + dpopctl proof  ->  jose jwtVerify with EmbeddedJWK
//       (typ, alg, htm, htu, iat, ath checked here; RFC 7638 thumbprint from
//       jose's calculateJwkThumbprint compared with `dpopctl thumbprint`)
//   (b) jose generateKeyPair + SignJWT  ->  dpopctl verify must accept
//       (and reject the same proof for another method)
//
// usage: node interop.mjs DPOPCTL WORKDIR
// Prints one JSON line per check and a final summary line; exits 1 on any
// failure.  Never prints private keys or tokens.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  EmbeddedJWK,
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  jwtVerify,
} from "jose";

const [dpopctl, work] = process.argv.slice(2);
if (!dpopctl || !work) {
  console.error("usage: node interop.mjs DPOPCTL WORKDIR");
  process.exit(2);
}

const ALGS = ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"];
const TARGET = "https://api.example.com/v1/invoices";
const TOKEN = "interop-access-token." + randomBytes(12).toString("base64url");
const ATH = createHash("sha256").update(TOKEN, "ascii").digest("base64url");
let failures = 0;

function report(obj) {
  if (!obj.ok) failures++;
  console.log(JSON.stringify(obj));
}

function ctl(args) {
  return execFileSync(dpopctl, args, { encoding: "utf8" }).trim();
}

function ctlStatus(args) {
  const r = spawnSync(dpopctl, args, { encoding: "utf8" });
  return { status: r.status, out: r.stdout.trim() };
}

// (a) proofs made by dpopctl, verified by jose
for (const alg of ALGS) {
  const check = { dir: "dpopctl->jose", alg };
  try {
    const keyFile = join(work, `interop-${alg}.jwk`);
    ctl(["keygen", "--alg", alg, "--out", keyFile]);
    const now = Math.floor(Date.now() / 1000);
    const proof = ctl(["proof", "--key", keyFile, "--method", "POST", "--url", TARGET + "?page=1",
      "--access-token", TOKEN, "--iat", String(now)]);
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: "dpop+jwt",
      algorithms: [alg],
      maxTokenAge: "5m",
      clockTolerance: 5,
    });
    if (protectedHeader.typ !== "dpop+jwt") throw new Error("typ " + protectedHeader.typ);
    if (protectedHeader.alg !== alg) throw new Error("alg " + protectedHeader.alg);
    for (const m of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
      if (m in protectedHeader.jwk) throw new Error("private member in jwk: " + m);
    }
    if (payload.htm !== "POST") throw new Error("htm " + payload.htm);
    // RFC 9449 §4.2: htu without query and fragment (dpopctl drops them)
    if (payload.htu !== TARGET) throw new Error("htu " + payload.htu);
    if (!Number.isInteger(payload.iat) || payload.iat !== now) throw new Error("iat");
    if (typeof payload.jti !== "string" || payload.jti.length < 16) throw new Error("jti");
    if (payload.ath !== ATH) throw new Error("ath differs from base64url(SHA-256(token))");
    const joseJkt = await calculateJwkThumbprint(protectedHeader.jwk, "sha256");
    const ctlJkt = ctl(["thumbprint", keyFile]);
    if (joseJkt !== ctlJkt) throw new Error(`thumbprint jose ${joseJkt} dpopctl ${ctlJkt}`);
    // a tampered proof must fail in jose as well
    const parts = proof.split(".");
    const forged = parts[0] + "." + Buffer.from(JSON.stringify({ ...payload, htm: "GET" }))
      .toString("base64url") + "." + parts[2];
    let rejected = false;
    try {
      await jwtVerify(forged, EmbeddedJWK, { typ: "dpop+jwt", algorithms: [alg] });
    } catch {
      rejected = true;
    }
    if (!rejected) throw new Error("jose accepted a forged payload");
    report({ ...check, ok: true, jkt: joseJkt });
  } catch (e) {
    report({ ...check, ok: false, error: String(e.message || e) });
  }
}

// (b) proofs made by jose, verified by dpopctl
for (const alg of ALGS) {
  const check = { dir: "jose->dpopctl", alg };
  try {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(publicKey);
    const now = Math.floor(Date.now() / 1000);
    const jti = randomBytes(16).toString("base64url");
    const proof = await new SignJWT({ htm: "DELETE", htu: TARGET, ath: ATH, nonce: "srv-n1" })
      .setProtectedHeader({ typ: "dpop+jwt", alg, jwk })
      .setJti(jti)
      .setIssuedAt(now)
      .sign(privateKey);
    const jkt = await calculateJwkThumbprint(jwk, "sha256");
    const ok = ctlStatus(["verify", "--method", "DELETE", "--url",
      "https://API.example.com:443/v1/invoices?x=y", "--proof", proof, "--access-token", TOKEN,
      "--nonce", "srv-n1", "--jkt", jkt, "--now", String(now + 2), "--algs", alg]);
    const res = JSON.parse(ok.out);
    if (ok.status !== 0 || res.valid !== true) throw new Error("rejected: " + ok.out);
    if (res.jkt !== jkt || res.jti !== jti || res.alg !== alg || res.iat !== now) {
      throw new Error("result differs: " + ok.out);
    }
    const bad = ctlStatus(["verify", "--method", "GET", "--url", TARGET, "--proof", proof,
      "--access-token", TOKEN, "--now", String(now)]);
    const badRes = JSON.parse(bad.out);
    if (bad.status !== 1 || badRes.reason !== "htm_mismatch") {
      throw new Error("wrong method not rejected: " + bad.out);
    }
    const badTok = ctlStatus(["verify", "--method", "DELETE", "--url", TARGET, "--proof", proof,
      "--access-token", TOKEN + "x", "--now", String(now)]);
    if (badTok.status !== 1 || JSON.parse(badTok.out).reason !== "ath_mismatch") {
      throw new Error("other token not rejected: " + badTok.out);
    }
    report({ ...check, ok: true, jkt });
  } catch (e) {
    report({ ...check, ok: false, error: String(e.message || e) });
  }
}

// the RFC 7638 §3.1 example key: both implementations agree on the vector
{
  const jwk = JSON.parse(readFileSync(new URL("./rfc7638-key.json", import.meta.url), "utf8"));
  const joseJkt = await calculateJwkThumbprint(jwk, "sha256");
  const r = spawnSync(dpopctl, ["thumbprint", "-"], { input: JSON.stringify(jwk),
    encoding: "utf8" });
  const ctlJkt = r.stdout.trim();
  report({ dir: "rfc7638", ok: joseJkt === ctlJkt &&
    ctlJkt === "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", jose: joseJkt, dpopctl: ctlJkt });
}

console.log(JSON.stringify({ summary: true, failures }));
process.exit(failures ? 1 : 0);
