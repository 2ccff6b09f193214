# SPDX-License-Identifier: Apache-2.0
"""mod_dpop as a reverse proxy in front of a header-only backend, the
pattern of conf.d/dpop-reverse-proxy.conf (issue 3 items 2 and 7).

What this proves: behind a TLS-terminating proxy, DPoPExternalURL makes
htu the public https URL; the verified identity reaches the backend as
request headers set by mod_headers from mod_dpop's environment; a client
cannot inject those headers (they are removed, then set), and neither the
DPoP proof nor the Authorization header is forwarded.
"""
from harness import Client, expect_backend

PUBLIC = "https://api.example.test"


def test_reverse_proxy_forwards_verified_identity(env, httpd):
    backend = httpd(location_conf="Require all granted")
    front = httpd(
        extra_modules="LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n"
                      "LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so",
        extra_conf="""
<Location /papi>
    AuthType DPoP
    Require valid-user
    DPoPExternalURL %s
    RequestHeader set X-DPoP-JKT        "%%{DPOP_JKT}e"
    RequestHeader set X-DPoP-Sub        "%%{DPOP_TOKEN_SUB}e"
    RequestHeader set X-DPoP-Client-ID  "%%{DPOP_TOKEN_CLIENT_ID}e"
    RequestHeader unset Authorization
    ProxyPass http://127.0.0.1:%d/open
</Location>
""" % (PUBLIC, backend.port))
    c = Client(env, sub="svc-7", client_id="ledger")
    r = c.call(front, "GET", "/papi/x?q=1", htu=PUBLIC + "/papi/x",
               headers={"X-DPoP-JKT": "forged", "X-DPoP-Sub": "root"})
    expect_backend(r, HTTP_X_DPOP_JKT=c.key.jkt, HTTP_X_DPOP_SUB="svc-7",
                   HTTP_X_DPOP_CLIENT_ID="ledger", HTTP_DPOP="<unset>")
    # the backend's URL or the front's own URL are not what the client signed
    r = c.call(front, "GET", "/papi/x")
    assert r.status == 401
    assert front.wait_log("reason=htu_mismatch ")
    # forged identity headers without valid credentials never pass
    r = front.request("GET", "/papi/x", headers={"X-DPoP-JKT": c.key.jkt})
    assert r.status == 401
