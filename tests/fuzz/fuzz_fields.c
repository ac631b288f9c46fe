/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the `fields` selector parser and its application to an object. */
#include <stdint.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sel = wisp_xstrndup((const char *)data, size);
    json_t *o = json_loads("{\"a\":{\"b\":[{\"c\":1,\"d\":2}],\"e\":3},\"f\":[1,2],\"g\":\"h\"}",
                           0, NULL);
    wisp_api_fields_apply(o, sel);
    json_decref(o);
    free(sel);
    return 0;
}
