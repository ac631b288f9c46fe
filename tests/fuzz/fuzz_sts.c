/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes STS request parsing, form and JSON. */
#include <stdint.h>
#include <stdlib.h>
#include "wisp/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wisp_sts_req r;
    const char *code;
    char why[256];
    const char *types[] = {"application/x-www-form-urlencoded", "application/json"};
    for (int i = 0; i < 2; i++) {
        if (wisp_sts_req_parse((const char *)data, size, types[i], &r, &code, why,
                               sizeof(why)) == WISP_OK) {
            if (!r.pool || !r.subject_token)
                abort();
            wisp_sts_req_free(&r);
        }
    }
    return 0;
}
