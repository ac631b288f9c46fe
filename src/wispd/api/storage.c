/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder while the API is written: answers 501 UNIMPLEMENTED. */
#include "wisp/api.h"
#include "../wispd.h"

void wispd_storage(struct wisp_http_req *req, const char *path)
{
    wisp_api_error(req, 501, NULL, "Method not implemented yet: %.200s", path);
}
