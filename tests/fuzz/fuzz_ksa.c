/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes KSA token verification (the STS subject token path): no input may
 * verify against a key the fuzzer never signed with, or crash, or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wisp/ksa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *pub;
    if (!pub) {
        char *key = wisp_rsa_generate_pem();
        pub = wisp_rsa_public_pem(key);
        wisp_secret_free(key, 0);
    }
    struct wisp_ksa_key k = {"kid-a", "https://container.googleapis.com/v1/projects/p/"
                                      "locations/l/clusters/c", pub};
    char *jwt = wisp_xstrndup((const char *)data, size);
    struct wisp_ksa_claims out;
    char why[256];
    if (wisp_ksa_verify(jwt, &k, 1, "p.svc.id.goog", 1800000000, &out, why, sizeof(why)) ==
        WISP_OK)
        abort();
    wisp_ksa_claims_free(&out);
    free(jwt);
    return 0;
}
