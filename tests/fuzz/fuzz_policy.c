/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes setIamPolicy bodies end to end: JSON parse, then normalisation;
 * whatever normalises must normalise again to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include "wisp/iam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!in)
        return 0;
    char msg[512];
    json_t *out = json_is_object(in) ? wisp_iam_policy_normalize(in, msg, sizeof(msg)) : NULL;
    if (out) {
        json_object_set_new(out, "version", json_integer(3));
        json_t *again = wisp_iam_policy_normalize(out, msg, sizeof(msg));
        json_object_del(out, "version");
        if (!again || !json_equal(again, out))
            abort();
        json_decref(again);
        json_decref(out);
    }
    json_decref(in);
    return 0;
}
