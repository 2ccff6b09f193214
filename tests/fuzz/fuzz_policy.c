/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_policy.c: libFuzzer target for the policy YAML loader, and for the
 * decisions and path normalization a loaded policy is then asked for.
 *
 * Any input must end in either a policy or a list of positioned errors,
 * without a crash, leak, or undefined behaviour (build with ASan+UBSan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpop_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const jkts[] = {
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    static const char *const methods[] = {"GET", "HEAD", "POST", "PURGE", ""};
    static const char *const paths[] = {"/",  "/api/invoices", "/api/invoices/1/2", "/a/b/",
                                        "/x", "/api/../admin"};
    policy_t *p = NULL;
    policy_errors_t errs;
    policy_decision_t d;
    char line[1024];
    size_t i, j, k;

    policy_errors_init(&errs);
    if (policy_load_buffer("fuzz.yaml", (const char *)data, size, &p, &errs) == DPOP_OK) {
        if (!p || errs.count)
            abort(); /* success means a policy and no errors */
        for (i = 0; i < 3; i++)
            for (j = 0; j < 5; j++)
                for (k = 0; k < 6; k++)
                    policy_decide(p, jkts[i], methods[j], paths[k], 1800000000, &d);
        policy_free(p);
    }
    else {
        if (p || errs.count == 0)
            abort(); /* failure means at least one error */
        for (i = 0; i < errs.count; i++)
            policy_error_format(&errs.items[i], line, sizeof line);
    }
    policy_errors_clear(&errs);

    /* the same bytes as a request path */
    if (size < 4096) {
        char *raw = malloc(size + 1), *out = malloc(size + 2);
        if (raw && out) {
            memcpy(raw, data, size);
            raw[size] = '\0';
            if (policy_path_normalize(raw, out, size + 2) == DPOP_OK && out[0] != '/')
                abort();
        }
        free(raw);
        free(out);
    }
    return 0;
}
