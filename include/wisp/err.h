/* SPDX-License-Identifier: Apache-2.0 */
/* wisp's one result type. Every fallible library function returns an enum
 * wisp_err; detail for humans travels separately (a message slot), never in
 * the code itself. The HTTP boundary maps codes to Google statuses in one
 * table (lib/api/gerr.c). */
#ifndef WISP_ERR_H
#define WISP_ERR_H

enum wisp_err {
    WISP_OK = 0,
    WISP_EINVAL,     /* bad input from a caller: 400 INVALID_ARGUMENT */
    WISP_ENOTFOUND,  /* 404 NOT_FOUND */
    WISP_EEXIST,     /* 409 ALREADY_EXISTS */
    WISP_EABORTED,   /* stale etag / lost a race: 409 ABORTED */
    WISP_EPRECOND,   /* 400 FAILED_PRECONDITION */
    WISP_EDENIED,    /* 403 PERMISSION_DENIED */
    WISP_EUNAUTH,    /* 401 UNAUTHENTICATED */
    WISP_ETOOBIG,    /* input over a hard limit: 400/413 */
    WISP_ENOMEM,     /* allocation failed */
    WISP_EIO,        /* store or system call failed: 500 INTERNAL */
    WISP_EBUSY,      /* store busy past its timeout: 503 UNAVAILABLE */
    WISP_ESTORE,     /* store reported corruption or a bug: 500 */
    WISP_EGONE,      /* asked for history the store no longer keeps */
};

/* Returns a static, lowercase, one-word name for err ("einval"). */
const char *wisp_strerror(enum wisp_err err);

#endif
