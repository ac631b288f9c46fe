/* SPDX-License-Identifier: Apache-2.0 */
/* Google-style ID tokens for a service account, in one place for the two
 * ways to ask for one: IAM Credentials' generateIdToken and the OAuth2
 * token endpoint's JWT-bearer grant with a target_audience claim (what
 * Google's libraries send for a key file's ID token, and what a
 * GCE_METADATA node's metadata server sends for its pods). */
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wispd.h"

char *wispd_sa_id_token(struct wisp_store *st, const json_t *sa, const char *aud,
                        int include_email, const json_t *google, enum wisp_err *err)
{
    char *kid = NULL, *pem = NULL;
    if ((*err = wispd_google_key_load(st, &kid, &pem)) != WISP_OK)
        return NULL;
    int64_t now = (int64_t)time(NULL);
    const char *uid = json_string_value(json_object_get(sa, "uniqueId"));
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss",
                               "https://accounts.google.com", "aud", aud, "azp", uid, "sub", uid,
                               "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    if (include_email) {
        json_object_set(claims, "email", json_object_get(sa, "email"));
        json_object_set_new(claims, "email_verified", json_true());
    }
    if (json_is_object(google))
        json_object_set(claims, "google", (json_t *)google);
    char *jwt = wisp_jwt_sign_rs256(claims, kid, pem);
    json_decref(claims);
    free(kid);
    wisp_secret_free(pem, 0);
    *err = jwt ? WISP_OK : WISP_EIO;
    return jwt;
}
