/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes form/query decoding (token endpoint bodies, STS requests). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"grant_type", "assertion", "a", "", "subject_token"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *v = wisp_form_get((const char *)data, size, keys[i]);
        if (v && strlen(v) > size)
            abort(); /* decoding never grows */
        free(v);
    }
    return 0;
}
