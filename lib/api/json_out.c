/* SPDX-License-Identifier: Apache-2.0 */
/* Writing a JSON answer: `alt` must be json, `fields` trims the object. */
#include <stdlib.h>
#include <string.h>
#include "wisp/api.h"

void wisp_api_json(struct wisp_http_req *req, int code, json_t *obj)
{
    const char *alt = wisp_http_query(req, "alt");
    if (alt && strcmp(alt, "json") != 0) {
        json_decref(obj);
        wisp_api_error(req, 400, NULL, "Invalid value at 'alt' (type.googleapis.com/"
                                       "system_parameters.Alt), \"%.64s\"", alt);
        return;
    }
    const char *fields = wisp_http_query(req, "fields");
    if (fields && *fields && wisp_api_fields_apply(obj, fields) != WISP_OK) {
        json_decref(obj);
        wisp_api_error(req, 400, NULL, "Invalid field selector: '%.128s'", fields);
        return;
    }
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    wisp_http_respond(req, code, "application/json; charset=UTF-8", text, strlen(text));
    free(text);
}

const char *wisp_api_quota_project(struct wisp_http_req *req)
{
    const char *q = wisp_http_header(req, "x-goog-user-project");
    return (q && *q) ? q : NULL;
}
