/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_core_util.h: what the core's Check programs share.
 *
 * Test code only; included by tests/unit/test_proof_verify.c,
 * test_proof_token.c and test_core_cache.c.
 */
#ifndef TEST_CORE_UTIL_H
#define TEST_CORE_UTIL_H

#include <check.h>
#include <jansson.h>

/* Apply a patch object (JSON text, NULL for none) to obj: its members are
 * set, a JSON null deletes the member. */
static inline void apply_patch(json_t *obj, const char *patch)
{
    json_t *pt, *v;
    const char *k;
    json_error_t e;
    if (!patch)
        return;
    pt = json_loads(patch, JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(pt != NULL, "bad patch %s: %s", patch, e.text);
    json_object_foreach(pt, k, v)
    {
        if (json_is_null(v))
            json_object_del(obj, k);
        else
            json_object_set(obj, k, v);
    }
    json_decref(pt);
}

#endif /* TEST_CORE_UTIL_H */
