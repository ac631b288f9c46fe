/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes access-token opening: arbitrary bearer strings must be refused. */
#include <stdint.h>
#include <stdlib.h>
#include "wisp/alloc.h"
#include "wisp/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wisp_token_keyring *kr;
    if (!kr) {
        static const unsigned char k[WISP_TOKEN_KEY_LEN] = {7};
        kr = wisp_token_keyring_new();
        wisp_token_keyring_add(kr, 1, k);
    }
    char *tok = wisp_xstrndup((const char *)data, size);
    struct wisp_token_claims c;
    const char *why;
    if (wisp_token_open(kr, tok, 0, &c, &why) == WISP_OK)
        abort(); /* the seal is authenticated: random input never opens */
    free(tok);
    return 0;
}
