#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README demo: build mod_dpop, start Apache httpd on 127.0.0.1:<free port>
# with mod_dpop in front of a tiny legacy "app" (a CGI script that knows
# nothing about OAuth), and play a client with dpopctl + curl:
#   200 for a valid DPoP request, 401 for a replayed proof, a proof for
#   another URL and a bound token sent as Bearer, 403 for a route the policy
#   does not allow, then the audit store with `dpop-audit list`.
# httpd is stopped and the demo directory removed at the end (also on error
# or Ctrl-C).  Credentials are shown shortened: never print them whole.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
short() { printf '%s...(%d chars)' "${1:0:24}" "${#1}"; }

bold "1. dependencies and build (scripts/deps.sh, scripts/build.sh build-release)"
buildlog=$(mktemp /tmp/mod_dpop-demo-build.XXXXXX.log)
if ! { "$top/scripts/deps.sh" && "$top/scripts/build.sh" build-release CFLAGS="-O2 -g"; } \
    >"$buildlog" 2>&1; then
    tail -40 "$buildlog" >&2; echo "build failed; full log: $buildlog" >&2; exit 1
fi
rm -f "$buildlog"
note "built: build-release/mod_dpop/.libs/mod_dpop.so, dpopctl, dpop-policy, dpop-audit"
B="$top/build-release"
DPOPCTL="$B/core/dpopctl"
TOKEN="$B/tests/tools/dpop_testtoken"
AUDIT="$B/logger/dpop-audit"
POLICY="$B/policy/dpop-policy"
MODULE="$B/mod_dpop/.libs/mod_dpop.so"
APACHE=/usr/sbin/apache2
MODS=/usr/lib/apache2/modules
for f in "$DPOPCTL" "$TOKEN" "$MODULE" "$APACHE"; do
    [ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/mod_dpop-demo.XXXXXX)
chmod 755 "$dir"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
user_lines=""
if [ "$(id -u)" = 0 ]; then user_lines=$'User www-data\nGroup www-data'; fi

bold "2. keys: the authorization server's signing key and the client's DPoP key"
"$DPOPCTL" keygen --alg ES256 --out "$dir/as.jwk"
"$TOKEN" --key "$dir/as.jwk" --kid demo-as --jwks-out "$dir/as-jwks.json"
"$DPOPCTL" keygen --alg ES256 --out "$dir/client.jwk"
jkt=$("$DPOPCTL" thumbprint "$dir/client.jwk")
chmod 644 "$dir/as-jwks.json"
note "AS public keys:        $dir/as-jwks.json"
note "client key thumbprint: $jkt (RFC 7638 jkt)"

cat > "$dir/policy.yaml" <<EOF
version: 1
clients:
  - name: demo-client
    jkt: $jkt
    allow:
      - { methods: [GET, POST], paths: ["/api/invoices", "/api/invoices/**"] }
EOF
chmod 644 "$dir/policy.yaml"
if [ -x "$POLICY" ]; then note "policy: $("$POLICY" check "$dir/policy.yaml" | head -1)"; fi

mkdir -p "$dir/cgi" "$dir/run"
[ "$(id -u)" = 0 ] && chown www-data:www-data "$dir/run"
cat > "$dir/cgi/app.cgi" <<'EOF'
#!/bin/sh
# The legacy application: knows nothing about OAuth or DPoP.
printf 'Content-Type: text/plain\r\n\r\n'
echo "legacy app: hello ${REMOTE_USER:-nobody} ($REQUEST_METHOD $REQUEST_URI)"
echo "  verified key  DPOP_JKT=${DPOP_JKT:-}"
echo "  policy client DPOP_CLIENT=${DPOP_CLIENT:-}"
EOF
chmod 755 "$dir/cgi" "$dir/cgi/app.cgi"

cat > "$dir/httpd.conf" <<EOF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir/run"
ErrorLog "$dir/error.log"
LogLevel warn dpop:info
$user_lines
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authn_core_module $MODS/mod_authn_core.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule authz_user_module $MODS/mod_authz_user.so
LoadModule socache_shmcb_module $MODS/mod_socache_shmcb.so
LoadModule alias_module $MODS/mod_alias.so
LoadModule cgid_module $MODS/mod_cgid.so
LoadModule mime_module $MODS/mod_mime.so
$( [ -e $MODS/mod_unixd.so ] && echo "LoadModule unixd_module $MODS/mod_unixd.so" )
LoadModule dpop_module $MODULE
StartServers 2
ScriptSock "$dir/run/cgid.sock"
TypesConfig /dev/null

DPoPTokenJWKS     "$dir/as-jwks.json"
DPoPTokenIssuer   https://as.example.test
DPoPTokenAudience https://api.example.test
DPoPPolicyFile    "$dir/policy.yaml"
DPoPAuditLog      "$dir/audit"

ScriptAlias /api "$dir/cgi/app.cgi"
<Location /api>
    AuthType DPoP
    Require dpop-policy
</Location>
EOF

bold "3. httpd with mod_dpop on $base (config: $dir/httpd.conf)"
"$APACHE" -t -f "$dir/httpd.conf"
"$APACHE" -f "$dir/httpd.conf" -DFOREGROUND &
pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "$base/" 2>/dev/null && break
    sleep 0.1
done

# curl wrapper: send, print the status line and the headers that matter,
# the app's answer on success, and whether it is what the step expects.
results=()
call() { # EXPECTED_STATUS WHAT METHOD PATH [curl args...]
    local want=$1 what=$2 m=$3 p=$4 got; shift 4
    curl -s -o "$dir/body" -D "$dir/headers" -X "$m" "$@" "$base$p" || true
    got=$(head -1 "$dir/headers" | awk '{print $2}')
    printf '   -> %s\n' "$(head -1 "$dir/headers" | tr -d '\r')"
    grep -i -E '^(www-authenticate|dpop-nonce):' "$dir/headers" | tr -d '\r' | sed 's/^/      /' || true
    if [ "$got" = 200 ]; then sed 's/^/      /' "$dir/body"; fi
    if [ "$got" = "$want" ]; then
        note "as expected ($want)"
        results+=("$(printf '%-4s %-52s %s' "$got" "$what" "ok")")
    else
        note "UNEXPECTED: got $got, expected $want"
        results+=("$(printf '%-4s %-52s %s' "$got" "$what" "UNEXPECTED (expected $want)")")
    fi
}

bold "4. the client gets an access token bound to its key (cnf.jkt) and signs a proof"
tok=$("$TOKEN" --key "$dir/as.jwk" --kid demo-as --iss https://as.example.test \
      --aud https://api.example.test --sub alice --client-id demo-client --jkt "$jkt")
note "access token: $(short "$tok")"
proof=$("$DPOPCTL" proof --key "$dir/client.jwk" --method GET --url "$base/api/invoices/42" \
        --access-token "$tok")
note "DPoP proof:   $(short "$proof")"
note "GET /api/invoices/42 with Authorization: DPoP <token> and DPoP: <proof>"
note "mod_dpop checks: token signature/iss/aud/exp, cnf.jkt == proof key, proof"
note "signature, htm, htu, iat, ath, jti never seen; then the policy allows the route"
call 200 "valid token + proof" GET /api/invoices/42 -H "Authorization: DPoP $tok" -H "DPoP: $proof"

bold "5. an attacker replays the captured request (same proof): rejected (replay)"
call 401 "replayed proof (replay)" GET /api/invoices/42 -H "Authorization: DPoP $tok" -H "DPoP: $proof"

bold "6. a fresh proof made for another URL: rejected (htu_mismatch)"
other=$("$DPOPCTL" proof --key "$dir/client.jwk" --method GET --url "$base/api/invoices/7" \
        --access-token "$tok")
call 401 "proof for another URL (htu_mismatch)" GET /api/invoices/42 \
    -H "Authorization: DPoP $tok" -H "DPoP: $other"

bold "7. the bound token stolen and sent as a plain Bearer token: rejected (bearer_downgrade)"
call 401 "bound token as Bearer (bearer_downgrade)" GET /api/invoices/42 \
    -H "Authorization: Bearer $tok"

bold "8. a valid proof for a route the policy does not allow: 403 (policy_denied)"
del=$("$DPOPCTL" proof --key "$dir/client.jwk" --method DELETE --url "$base/api/invoices/42" \
      --access-token "$tok")
call 403 "DELETE not in the policy (policy_denied)" DELETE /api/invoices/42 \
    -H "Authorization: DPoP $tok" -H "DPoP: $del"

bold "9. what the error log says: one line per rejection, reason codes, never credentials"
sleep 0.3
grep -E -o 'mod_dpop: (rejected|policy denied): .*' "$dir/error.log" |
    sed -E 's/ (error|jkt|jti)=[^ ]*//g; s/^mod_dpop: /   /'
note "(the full lines also carry error=, jkt= and jti=)"

bold "10. stop httpd (its children commit queued audit events); the audit store"
note "dpop-audit list: every rejection, searchable by key, jti, token hash, IP, time"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
if [ -x "$AUDIT" ]; then
    "$AUDIT" --store "$dir/audit" list | sed 's/^/   /'
    "$AUDIT" --store "$dir/audit" verify | sed 's/^/   /' || true
fi
if grep -q -F -e "$tok" -e "$proof" "$dir/error.log"; then
    echo "ERROR: a credential reached the error log" >&2; exit 1
fi
bold "summary"
printf '   %s\n' "${results[@]}"
bold "done: the error log holds no token or proof; demo directory removed"
for line in "${results[@]}"; do
    case "$line" in *UNEXPECTED*) exit 1 ;; esac
done
