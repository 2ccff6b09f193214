/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_path.c: policy_path_normalize(), a request path as httpd turns it
 * into r->uri, for the CLI and tests (the module gets r->uri ready-made).
 *
 * Steps, in httpd's order: drop the query and fragment, percent-decode
 * (RFC 3986 §2.1; %00 and %2F refused as httpd refuses them by default with
 * AllowEncodedSlashes Off), merge repeated slashes (httpd's MergeSlashes On
 * default), remove dot-segments (RFC 3986 §5.2.4).  A ".." that would climb
 * above the root is an error, as httpd answers 400: without that rule
 * "/../admin" could be judged as a different path than the one served.
 */
#include "policy_internal.h"
#include "dpop_pct.h"

#include <string.h>

int policy_path_normalize(const char *raw, char *out, size_t outsz)
{
    size_t n, i, o = 0, seg;
    const char *end = NULL;

    if (!raw || !out || outsz == 0)
        return DPOP_ERR;
    n = strcspn(raw, "?#");
    end = raw + n;
    if (n == 0 || raw[0] != '/' || outsz < n + 2)
        return DPOP_ERR;

    /* pass 1: decode into out, merging slashes as we go */
    for (i = 0; raw + i < end; i++) {
        char c = raw[i];
        if (c == '%') {
            unsigned char d;
            /* truncated or non-hex escape: httpd answers 400 */
            if (dpop_pct_decode(raw + i, n - i, &d) != 0)
                return DPOP_ERR;
            c = (char)d;
            if (c == '\0' || c == '/')
                return DPOP_ERR;
            i += 2;
        }
        if (c == '/' && o > 0 && out[o - 1] == '/')
            continue;
        out[o++] = c;
    }
    out[o] = '\0';

    /* pass 2: RFC 3986 §5.2.4 in place; "." and ".." are whole segments */
    {
        size_t r = 0, w = 0, len = o;
        while (r < len) {
            /* out[r] == '/' here: at a segment start */
            size_t s = r + 1, e = s;
            while (e < len && out[e] != '/')
                e++;
            seg = e - s;
            if (seg == 1 && out[s] == '.') {
                /* "/." -> drop; a trailing "/." leaves the directory "/" */
                if (e == len)
                    out[w++] = '/';
            }
            else if (seg == 2 && out[s] == '.' && out[s + 1] == '.') {
                if (w == 0)
                    return DPOP_ERR; /* climbs above the root */
                while (w > 0 && out[w - 1] != '/')
                    w--;
                /* w now sits after the parent's '/': drop that slash too
                 * unless this was the last segment (then keep "/") */
                if (w > 0)
                    w--;
                if (e == len)
                    out[w++] = '/';
            }
            else {
                memmove(out + w, out + r, e - r);
                w += e - r;
            }
            r = e;
        }
        if (w == 0)
            out[w++] = '/';
        out[w] = '\0';
    }
    return DPOP_OK;
}
