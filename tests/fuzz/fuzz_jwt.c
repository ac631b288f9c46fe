/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the compact-JWS path: header peek and RS256 verification against a
 * fixed key (no input may verify, and none may crash or leak). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/jose.h"

static char *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key)
        key = wisp_rsa_generate_pem();
    char *jwt = wisp_xstrndup((const char *)data, size);
    json_t *h = wisp_jwt_peek_header(jwt);
    json_decref(h);
    const char *why;
    json_t *claims = wisp_jwt_verify_rs256(jwt, key, &why);
    if (claims)
        abort(); /* forging a signature is not the fuzzer's job */
    free(jwt);
    return 0;
}
