/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the three PATCH types: the input is a document, a newline, and a
 * patch; all three functions run on it. Beyond not crashing or leaking,
 * it checks what the contract promises: the document is left untouched, a
 * failure comes with a one-line reason, a merge patch is idempotent, and no
 * strategic directive reaches a result whose document had none. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/kube_patch.h"

static int has_directive(const json_t *v)
{
    const char *k;
    json_t *c;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_directive(json_array_get(v, i)))
                return 1;
        return 0;
    }
    json_object_foreach((json_t *)v, k, c)
        if (k[0] == '$' || has_directive(c))
            return 1;
    return 0;
}

/* Runs f and checks its contract; returns the result (or NULL). */
static json_t *run(json_t *(*f)(const json_t *, const json_t *, char *, size_t), const json_t *doc,
                   const json_t *patch)
{
    char err[128] = "";
    char *before = json_dumps(doc, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    json_t *out = f(doc, patch, err, sizeof(err));
    char *after = json_dumps(doc, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!before || !after || strcmp(before, after))
        abort();
    if (!out && (!err[0] || strchr(err, '\n')))
        abort();
    if (out) {
        char *dump = json_dumps(out, JSON_ENCODE_ANY);
        if (!dump)
            abort();
        free(dump);
    }
    free(before);
    free(after);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    json_t *doc, *patch, *out, *again;
    if (!nl)
        return 0;
    size_t dlen = (size_t)(nl - (const char *)data);
    doc = json_loadb((const char *)data, dlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    patch = json_loadb(nl + 1, size - dlen - 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!doc || !patch)
        goto out;

    if ((out = run(wisp_kube_merge_patch, doc, patch))) {
        again = run(wisp_kube_merge_patch, out, patch);
        if (!again || !json_equal(again, out))
            abort();
        json_decref(again);
        json_decref(out);
    }
    if ((out = run(wisp_kube_strategic_patch, doc, patch))) {
        if (!has_directive(doc) && has_directive(out))
            abort();
        json_decref(out);
    }
    json_decref(run(wisp_kube_json_patch, doc, patch));
out:
    json_decref(doc);
    json_decref(patch);
    return 0;
}
