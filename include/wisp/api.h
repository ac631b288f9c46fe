/* SPDX-License-Identifier: Apache-2.0 */
/* Google API conventions, in one place: the error envelope, strict JSON
 * bodies, `?alt=json`, `fields` partial responses, page tokens and the
 * quota-project header. Every wisp Google API answers through these, so a
 * client sees the same shapes from every surface. */
#ifndef WISP_API_H
#define WISP_API_H

#include <jansson.h>
#include <stddef.h>
#include "wisp/err.h"
#include "wisp/http.h"

/* The canonical status name for an HTTP code ("INVALID_ARGUMENT" for 400). */
const char *wisp_api_status_for(int http_code);
/* The HTTP code for an enum wisp_err (WISP_EABORTED → 409). */
int wisp_api_code_for(enum wisp_err err);
/* The canonical status for an enum wisp_err (WISP_EABORTED → "ABORTED"). */
const char *wisp_api_status_for_err(enum wisp_err err);

/* Answers with {"error":{"code","message","status","errors":[...]}}.
 * status NULL takes the canonical one for code. The message is formatted
 * and must be one line. */
void wisp_api_error(struct wisp_http_req *req, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same, with code and status taken from err. */
void wisp_api_error_err(struct wisp_http_req *req, enum wisp_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 403 PERMISSION_DENIED naming principal, permission and resource, with a
 * google.rpc.ErrorInfo detail (reason IAM_PERMISSION_DENIED). */
void wisp_api_denied(struct wisp_http_req *req, const char *principal, const char *permission,
                     const char *resource);
/* 401 UNAUTHENTICATED with WWW-Authenticate: Bearer ... error="invalid_token". */
void wisp_api_unauthenticated(struct wisp_http_req *req, const char *why);

/* Answers 200 (or code) with obj serialised, after applying the request's
 * `fields` selector. Steals the reference to obj. `alt` other than json
 * (or absent) gets 400. */
void wisp_api_json(struct wisp_http_req *req, int code, json_t *obj);

/* --- strict request bodies ------------------------------------------------ */

/* A schema for one JSON object: its allowed fields. A message is rejected if
 * it has a field not listed, or a field of the wrong type; so a typo in a
 * client's body is a 400 that names it instead of a silent no-op. */
enum wisp_jtype { WISP_J_STRING, WISP_J_INT, WISP_J_BOOL, WISP_J_OBJECT, WISP_J_ARRAY, WISP_J_ANY };
struct wisp_jfield {
    const char *name;           /* lowerCamel JSON name; NULL ends the table */
    enum wisp_jtype type;       /* for arrays: see elem */
    enum wisp_jtype elem;       /* element type of an array */
    const struct wisp_jfield *sub; /* fields of an object (or of array elements) */
};

/* Parses req's body as a JSON object and checks it against schema (NULL
 * accepts any object). An empty body parses as {}. On error answers 400 with
 * a message naming the field (Google's "Invalid JSON payload received.
 * Unknown name \"x\" at 'policy': Cannot find field.") and returns NULL.
 * Caller owns the result (json_decref). */
json_t *wisp_api_body(struct wisp_http_req *req, const struct wisp_jfield *schema);

/* Checks v against schema; path is the dotted location for messages. On
 * error writes a one-line message into msg and returns WISP_EINVAL. */
enum wisp_err wisp_api_check(const json_t *v, const struct wisp_jfield *schema, const char *path,
                             char *msg, size_t msglen);

/* --- fields, paging, quota project ---------------------------------------- */

/* Applies a `fields` selector ("bindings,etag", "items(name,id),nextPageToken")
 * to obj in place. Returns WISP_EINVAL on a malformed selector. */
enum wisp_err wisp_api_fields_apply(json_t *obj, const char *selector);

/* Page tokens are opaque to clients: base64url of the last name returned. */
char *wisp_api_page_token_make(const char *last_name);  /* caller frees */
/* Decodes a token; NULL or "" gives "". Returns NULL if malformed.
 * Caller frees. */
char *wisp_api_page_token_parse(const char *token);
/* pageSize / maxResults: returns def when absent, max when above max, -1 if
 * malformed or negative. */
long wisp_api_page_size(const char *v, long def, long max);

/* The quota project: x-goog-user-project header, else NULL. */
const char *wisp_api_quota_project(struct wisp_http_req *req);

#endif
