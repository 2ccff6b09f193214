# SPDX-License-Identifier: Apache-2.0
"""dpopctl for client developers (issue 20 item 1): jwks, hash-token, tokens
from stdin or a file wherever a token is taken, htu without query and
fragment, URL and method validation, `proof --header`, and the messages
and `--version` of issue 20 item 2.  Needs no httpd (the shell walk-through
of docs/dpopctl.md runs against one in test_dpopctl_walkthrough.py).
"""
import base64
import hashlib
import json
import os
import subprocess

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("DPOP_BUILD", os.path.join(TOP, "build-release"))
DPOPCTL = os.path.join(BUILD, "core", "dpopctl")
TESTTOKEN = os.path.join(BUILD, "tests", "tools", "dpop_testtoken")
PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

pytestmark = pytest.mark.skipif(not os.access(DPOPCTL, os.X_OK),
                                reason="dpopctl not built at %s (set DPOP_BUILD)" % DPOPCTL)


def run(*args, stdin=None, cwd=None):
    p = subprocess.run([DPOPCTL] + [str(a) for a in args], input=stdin, cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def sha256_b64u(s):
    return base64.urlsafe_b64encode(hashlib.sha256(s.encode()).digest()).decode().rstrip("=")


def claims(proof):
    seg = proof.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dpopctl-client")
    out = {}
    for alg in ("ES256", "PS256", "EdDSA"):
        path = str(d / ("%s.jwk" % alg))
        assert run("keygen", "--alg", alg, "--out", path)[0] == 0
        out[alg] = path
    tok = d / "token.txt"
    tok.write_text(TOKEN + "\n")
    out["token_file"] = str(tok)
    out["dir"] = str(d)
    return out


def proof(keys, *extra, url="https://api.example.com/a", stdin=None):
    rc, out, err = run("proof", "--key", keys["ES256"], "--method", "GET", "--url", url,
                       *extra, stdin=stdin)
    assert rc == 0, err
    return out.strip()


# ---- tokens from stdin and files (failed before: "-" hashed the string "-")

def test_proof_access_token_dash_reads_stdin(keys):
    p = proof(keys, "--access-token", "-", stdin=TOKEN + "\n")
    assert claims(p)["ath"] == sha256_b64u(TOKEN)
    assert claims(p)["ath"] != sha256_b64u("-")


def test_proof_access_token_file(keys):
    p = proof(keys, "--access-token-file", keys["token_file"])
    assert claims(p)["ath"] == sha256_b64u(TOKEN)


def test_proof_access_token_and_file_together_refused(keys):
    rc, out, err = run("proof", "--key", keys["ES256"], "--method", "GET", "--url",
                       "https://h/a", "--access-token", TOKEN, "--access-token-file",
                       keys["token_file"])
    assert rc == 2 and out == "" and "not both" in err and TOKEN not in err


@pytest.mark.parametrize("how", ["arg", "stdin", "file"])
def test_verify_access_token_sources(keys, how):
    p = proof(keys, "--access-token", TOKEN)
    args = ["verify", "--method", "GET", "--url", "https://api.example.com/a", "--proof", p]
    stdin = None
    if how == "arg":
        args += ["--access-token", TOKEN]
    elif how == "stdin":
        args += ["--access-token", "-"]
        stdin = TOKEN + "\n"
    else:
        args += ["--access-token-file", keys["token_file"]]
    rc, out, err = run(*args, stdin=stdin)
    assert rc == 0 and json.loads(out)["valid"] is True, (out, err)
    # and another token is ath_mismatch, whichever way it is given
    rc, out, _ = run(*args[:-2], "--access-token", "-", stdin="other-token")
    assert rc == 1 and json.loads(out)["reason"] == "ath_mismatch"


def test_verify_proof_and_token_cannot_both_read_stdin(keys):
    rc, out, err = run("verify", "--method", "GET", "--url", "https://h/a", "--proof", "-",
                       "--access-token", "-", stdin="x")
    assert rc == 2 and out == "" and "stdin" in err


def test_token_reads_access_token_file(keys):
    as_key = keys["ES256"]
    jwks = os.path.join(keys["dir"], "as-jwks.json")
    with open(jwks, "w") as f:
        f.write(run("jwks", as_key)[1])
    tok = subprocess.run([TESTTOKEN, "--key", as_key, "--jkt", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "--sub", "alice"],
                         capture_output=True, text=True, check=True).stdout.strip()
    tf = os.path.join(keys["dir"], "at.txt")
    with open(tf, "w") as f:
        f.write(tok + "\n")
    rc, out, err = run("token", "--jwks", jwks, "--access-token-file", tf)
    assert rc == 0 and json.loads(out)["sub"] == "alice", (out, err)
    rc, out, err = run("token", "--jwks", jwks, "-", stdin=tok)
    assert rc == 0 and json.loads(out)["valid"] is True, err
    rc, out, err = run("token", "--jwks", jwks, "--access-token-file", tf, tok)
    assert rc == 2 and tok not in err


# ---- htu, URL and method

def test_htu_has_no_query_or_fragment(keys):
    p = proof(keys, url="https://h.example/api/x?secret=abc#frag")
    c = claims(p)
    assert c["htu"] == "https://h.example/api/x"
    assert "secret" not in json.dumps(c)


@pytest.mark.parametrize("url", ["not-a-url", "ftp://h/x", "https://", "https:///x",
                                 "/api/x", "https://h:99999/", "mailto:a@b"])
def test_bad_url_refused(keys, url):
    rc, out, err = run("proof", "--key", keys["ES256"], "--method", "GET", "--url", url)
    assert rc == 2 and out == "" and "--url must be an absolute http or https URL" in err


@pytest.mark.parametrize("method,hint", [("get", "GET"), ("Post", "POST"), ("patch", "PATCH")])
def test_lowercase_method_refused_with_hint(keys, method, hint):
    rc, out, err = run("proof", "--key", keys["ES256"], "--method", method, "--url", "https://h/")
    assert rc == 2 and out == ""
    assert "methods are case-sensitive: did you mean %s?" % hint in err


@pytest.mark.parametrize("method", ["GE T", "GET\n", "(GET)", "G/T"])
def test_non_token_method_refused(keys, method):
    rc, out, err = run("proof", "--key", keys["ES256"], "--method", method, "--url", "https://h/")
    assert rc == 2 and out == "" and "not an HTTP method" in err


@pytest.mark.parametrize("method", ["GET", "PROPFIND", "M-SEARCH", "FOOBAR"])
def test_extension_methods_accepted(keys, method):
    rc, out, _ = run("proof", "--key", keys["ES256"], "--method", method, "--url", "https://h/")
    assert rc == 0 and claims(out.strip())["htm"] == method


def test_header_output_is_ready_for_curl(keys):
    line = proof(keys, "--header")
    assert line.startswith("DPoP: ") and line.count(" ") == 1
    rc, out, err = run("verify", "--method", "GET", "--url", "https://api.example.com/a",
                       "--proof", line[len("DPoP: "):])
    assert rc == 0, (out, err)


def test_header_with_count(keys):
    rc, out, _ = run("proof", "--key", keys["ES256"], "--method", "GET", "--url", "https://h/",
                     "--count", "3", "--header")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3 and all(l.startswith("DPoP: ey") for l in lines)


# ---- jwks

def test_jwks_of_private_keys_is_public(keys):
    rc, out, err = run("jwks", keys["ES256"], keys["PS256"], keys["EdDSA"])
    assert rc == 0, err
    assert out.count("\n") == 1
    s = json.loads(out)
    assert list(s) == ["keys"] and len(s["keys"]) == 3
    for k, path in zip(s["keys"], (keys["ES256"], keys["PS256"], keys["EdDSA"])):
        assert not set(k) & set(PRIVATE), k
        assert k["kid"] == run("thumbprint", path)[1].strip()
    with open(keys["ES256"]) as f:
        d = json.load(f)["d"]
    assert d not in out and d not in err


def test_jwks_keeps_kid_and_reads_sets_and_stdin(keys):
    with open(keys["ES256"]) as f:
        jwk = json.load(f)
    jwk["kid"] = "as-2026"
    jwk["key_ops"] = ["sign"]
    jwk["x-private-extension"] = "secret"
    rc, out, err = run("jwks", "-", stdin=json.dumps({"keys": [jwk]}))
    assert rc == 0, err
    (k,) = json.loads(out)["keys"]
    assert k["kid"] == "as-2026" and "key_ops" not in k and "x-private-extension" not in k
    # the output is itself accepted again, and by the module's JWKS loader
    rc2, out2, _ = run("jwks", "-", stdin=out)
    assert rc2 == 0 and json.loads(out2) == json.loads(out)


def test_jwks_output_verifies_tokens(keys):
    jwks = os.path.join(keys["dir"], "set.json")
    with open(jwks, "w") as f:
        f.write(run("jwks", keys["PS256"])[1])
    tok = subprocess.run([TESTTOKEN, "--key", keys["PS256"], "--jkt", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"],
                         capture_output=True, text=True, check=True).stdout.strip()
    rc, out, err = run("token", "--jwks", jwks, tok)
    assert rc == 0, (out, err)


@pytest.mark.parametrize("doc,needle", [
    ({"kty": "oct", "k": "c2VjcmV0"}, "symmetric key"),
    ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "not a usable key"),
    ({"keys": []}, "non-empty array"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "symmetric key"),
])
def test_jwks_refuses_unusable_keys(doc, needle):
    rc, out, err = run("jwks", "-", stdin=json.dumps(doc))
    assert rc == 1 and out == "" and needle in err
    assert "c2VjcmV0" not in err


def test_jwks_duplicate_kid_refused(keys):
    rc, out, err = run("jwks", keys["ES256"], keys["ES256"])
    assert rc == 1 and out == "" and "two keys have the kid" in err


def test_jwks_usage(keys):
    assert run("jwks")[0] == 2
    rc, out, _ = run("jwks", "--help")
    assert rc == 0 and "usage: dpopctl jwks FILE..." in out and "Examples:" in out


# ---- hash-token

@pytest.mark.parametrize("how", ["arg", "stdin", "file"])
def test_hash_token(keys, how):
    if how == "arg":
        rc, out, err = run("hash-token", TOKEN)
    elif how == "stdin":
        rc, out, err = run("hash-token", "-", stdin=TOKEN + "\n")
    else:
        rc, out, err = run("hash-token", "--access-token-file", keys["token_file"])
    assert rc == 0 and out == sha256_b64u(TOKEN) + "\n", err


def test_hash_token_equals_proof_ath(keys):
    p = proof(keys, "--access-token", TOKEN)
    assert run("hash-token", TOKEN)[1].strip() == claims(p)["ath"]


@pytest.mark.parametrize("args,stdin", [([], None), (["-"], ""), (["a", "b"], None),
                                        (["--access-token-file", "/nonexistent/t"], None)])
def test_hash_token_usage(args, stdin):
    rc, out, _ = run("hash-token", *args, stdin=stdin)
    assert rc == 2 and out == ""


# ---- conventions (issue 20 item 2)

def test_version():
    rc, out, _ = run("--version")
    ver = open(os.path.join(BUILD, "config.h")).read().split('PACKAGE_VERSION "')[1].split('"')[0]
    assert rc == 0 and out == "dpopctl %s\n" % ver


@pytest.mark.parametrize("cmd", ["verify", "thumbprint", "keygen", "proof", "token",
                                 "jws-verify", "jwks", "hash-token"])
def test_command_help_has_examples(cmd):
    rc, out, err = run(cmd, "--help")
    assert rc == 0 and out.startswith("usage: dpopctl %s" % cmd) and err == ""
    ex = out.split("Examples:\n", 1)[1]
    assert 2 <= len([l for l in ex.splitlines() if l.startswith("  dpopctl")]) <= 3 or \
        "dpop-audit" in ex


@pytest.mark.parametrize("args", [["thumbprint", "missing.json"],
                                  ["token", "--jwks", "missing.json", "x"],
                                  ["jws-verify", "--jwks", "missing.json", "x"],
                                  ["jwks", "missing.json"],
                                  ["proof", "--key", "missing.json", "--method", "GET",
                                   "--url", "https://h/"]])
def test_missing_file_named_once(args, tmp_path):
    rc, out, err = run(*args, cwd=str(tmp_path))
    assert rc == 2 and out == ""
    assert err == "dpopctl: missing.json: no such file\n"


def test_directory_is_not_a_file(tmp_path):
    rc, _, err = run("thumbprint", str(tmp_path))
    assert rc == 2 and err == "dpopctl: %s: is a directory, not a file\n" % tmp_path
