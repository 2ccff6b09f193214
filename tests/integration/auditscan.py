# SPDX-License-Identifier: Apache-2.0
"""Secret scan of the LMDB audit stores an httpd writes (issue 15 item 6).

Httpd.assert_no_secrets calls store_findings() for every `DPoPAuditLog`
directory of the instance's configuration: the store is read the way an
analyst reads it, `dpop-audit list --format json`, and every event's text
is searched for the minted credentials (tokens, proofs, their signature
segments, private key members) and for the values tests sent in a URL
query (env.query_secrets: an `?api_key=...` is a credential too).  The raw
LMDB files are searched for the credentials as well (a value could sit in
a page the listing does not show).

Must never: return or print a secret; findings name it by index only.
"""
import os
import re
import subprocess

AUDIT_DIR_RE = re.compile(r'^\s*DPoPAuditLog\s+"?([^"\s]+)"?', re.MULTILINE)


def audit_dirs(conf_text):
    """The DPoPAuditLog directories named in an httpd configuration."""
    return sorted(set(AUDIT_DIR_RE.findall(conf_text)))


def store_findings(dpop_audit, store, secrets, query_secrets):
    """Messages (empty when clean) for secrets found in one audit store."""
    found = []
    if not os.path.isdir(store) or not os.path.exists(os.path.join(store, "data.mdb")):
        return found
    r = subprocess.run([dpop_audit, "--store", store, "list", "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return ["dpop-audit list failed on %s (exit %d)" % (store, r.returncode)]
    listing = r.stdout
    for i, s in enumerate(secrets):
        if s in listing:
            found.append("secret #%d found in audit store %s" % (i, store))
    for i, q in enumerate(query_secrets):
        if q in listing:
            found.append("query secret #%d found in audit store %s" % (i, store))
    for name in os.listdir(store):
        with open(os.path.join(store, name), "rb") as f:
            data = f.read()
        for i, s in enumerate(list(secrets) + list(query_secrets)):
            if s.encode() in data:
                found.append("secret #%d found in audit store file %s/%s" % (i, store, name))
    return found
