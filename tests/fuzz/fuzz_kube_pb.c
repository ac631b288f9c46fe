/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes Kubernetes protobuf bodies to JSON: any input either fails with a
 * one-line UTF-8 reason or yields an object with apiVersion and kind that
 * dumps as JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/kube_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *out = NULL;
    char why[256] = "";
    if (wisp_kube_pb_to_json(data, size, &out, why, sizeof(why)) != WISP_OK) {
        /* The reason goes into a JSON Status body as it is. */
        json_t *msg = json_string(why);
        if (out || !why[0] || strchr(why, '\n') || !msg)
            abort();
        json_decref(msg);
        return 0;
    }
    if (!json_is_object(out) || !json_string_value(json_object_get(out, "apiVersion")) ||
        !json_string_value(json_object_get(out, "kind")))
        abort();
    char *s = json_dumps(out, JSON_COMPACT);
    if (!s)
        abort();
    free(s);
    json_decref(out);
    return 0;
}
