/* SPDX-License-Identifier: Apache-2.0 */
/* Names for enum wisp_err, for logs and tests. */
#include "wisp/err.h"

const char *wisp_strerror(enum wisp_err err)
{
    switch (err) {
    case WISP_OK: return "ok";
    case WISP_EINVAL: return "einval";
    case WISP_ENOTFOUND: return "enotfound";
    case WISP_EEXIST: return "eexist";
    case WISP_EABORTED: return "eaborted";
    case WISP_EPRECOND: return "eprecond";
    case WISP_EDENIED: return "edenied";
    case WISP_EUNAUTH: return "eunauth";
    case WISP_ETOOBIG: return "etoobig";
    case WISP_ENOMEM: return "enomem";
    case WISP_EIO: return "eio";
    case WISP_EBUSY: return "ebusy";
    case WISP_ESTORE: return "estore";
    case WISP_EGONE: return "egone";
    }
    return "eunknown";
}
