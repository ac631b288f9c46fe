/* SPDX-License-Identifier: Apache-2.0 */
/* The Google error envelope (google.rpc.Status as JSON) and the one table
 * that maps wisp's result codes to HTTP codes and canonical statuses. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/api.h"

static const struct {
    int code;
    const char *status;
} http_status[] = {
    {400, "INVALID_ARGUMENT"}, {401, "UNAUTHENTICATED"}, {403, "PERMISSION_DENIED"},
    {404, "NOT_FOUND"},        {405, "METHOD_NOT_ALLOWED"}, {409, "ABORTED"},
    {411, "INVALID_ARGUMENT"}, {412, "FAILED_PRECONDITION"}, {413, "INVALID_ARGUMENT"},
    {429, "RESOURCE_EXHAUSTED"}, {499, "CANCELLED"}, {500, "INTERNAL"},
    {501, "UNIMPLEMENTED"},    {503, "UNAVAILABLE"}, {504, "DEADLINE_EXCEEDED"},
};

const char *wisp_api_status_for(int http_code)
{
    for (size_t i = 0; i < sizeof(http_status) / sizeof(http_status[0]); i++) {
        if (http_status[i].code == http_code)
            return http_status[i].status;
    }
    return http_code >= 500 ? "INTERNAL" : "UNKNOWN";
}

static const struct {
    enum wisp_err err;
    int code;
    const char *status;
} err_map[] = {
    {WISP_EINVAL, 400, "INVALID_ARGUMENT"},   {WISP_ENOTFOUND, 404, "NOT_FOUND"},
    {WISP_EEXIST, 409, "ALREADY_EXISTS"},     {WISP_EABORTED, 409, "ABORTED"},
    {WISP_EPRECOND, 400, "FAILED_PRECONDITION"}, {WISP_EDENIED, 403, "PERMISSION_DENIED"},
    {WISP_EUNAUTH, 401, "UNAUTHENTICATED"},   {WISP_ETOOBIG, 400, "INVALID_ARGUMENT"},
    {WISP_ENOMEM, 500, "INTERNAL"},           {WISP_EIO, 500, "INTERNAL"},
    {WISP_EBUSY, 503, "UNAVAILABLE"},         {WISP_ESTORE, 500, "INTERNAL"},
    {WISP_EGONE, 400, "FAILED_PRECONDITION"},
};

int wisp_api_code_for(enum wisp_err err)
{
    for (size_t i = 0; i < sizeof(err_map) / sizeof(err_map[0]); i++) {
        if (err_map[i].err == err)
            return err_map[i].code;
    }
    return 500;
}

const char *wisp_api_status_for_err(enum wisp_err err)
{
    for (size_t i = 0; i < sizeof(err_map) / sizeof(err_map[0]); i++) {
        if (err_map[i].err == err)
            return err_map[i].status;
    }
    return "INTERNAL";
}

/* The "reason" of the legacy errors[] array that older discovery clients
 * (and gcloud storage) read. */
static const char *legacy_reason(int code)
{
    switch (code) {
    case 400: return "badRequest";
    case 401: return "required";
    case 403: return "forbidden";
    case 404: return "notFound";
    case 409: return "conflict";
    case 412: return "conditionNotMet";
    case 429: return "rateLimitExceeded";
    case 503: return "backendError";
    default: return code >= 500 ? "backendError" : "invalid";
    }
}

static void send_error(struct wisp_http_req *req, int code, const char *status, const char *msg,
                       json_t *details)
{
    json_t *err = json_pack("{s:i, s:s, s:s, s:[{s:s, s:s, s:s}]}", "code", code, "message", msg,
                            "status", status ? status : wisp_api_status_for(code), "errors",
                            "message", msg, "domain", "global", "reason", legacy_reason(code));
    if (details)
        json_object_set_new(err, "details", details);
    json_t *root = json_pack("{s:o}", "error", err);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    wisp_http_respond(req, code, "application/json; charset=UTF-8", text, strlen(text));
    free(text);
}

static void send_errorv(struct wisp_http_req *req, int code, const char *status, const char *fmt,
                        va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* A message is one line (curl's failf rule): a newline from some input
     * quoted in it must not reach a client's terminal as a second line. */
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    send_error(req, code, status, msg, NULL);
}

void wisp_api_error(struct wisp_http_req *req, int code, const char *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_errorv(req, code, status, fmt, ap);
    va_end(ap);
}

void wisp_api_error_err(struct wisp_http_req *req, enum wisp_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_errorv(req, wisp_api_code_for(err), wisp_api_status_for_err(err), fmt, ap);
    va_end(ap);
}

void wisp_api_denied(struct wisp_http_req *req, const char *principal, const char *permission,
                     const char *resource)
{
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "Permission '%s' denied on resource '%s' for principal '%s' (or it may not exist).",
             permission, resource, principal);
    json_t *details = json_pack("[{s:s, s:s, s:s, s:{s:s, s:s, s:s}}]", "@type",
                                "type.googleapis.com/google.rpc.ErrorInfo", "reason",
                                "IAM_PERMISSION_DENIED", "domain", "iam.googleapis.com", "metadata",
                                "permission", permission, "resource", resource, "principal",
                                principal);
    send_error(req, 403, "PERMISSION_DENIED", msg, details);
}

void wisp_api_unauthenticated(struct wisp_http_req *req, const char *why)
{
    wisp_http_add_header(req, "WWW-Authenticate",
                         "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"");
    char msg[512];
    snprintf(msg, sizeof(msg),
             "Request had invalid authentication credentials. Expected OAuth 2 access token, "
             "login cookie or other valid authentication credential. (%s)",
             why);
    send_error(req, 401, "UNAUTHENTICATED", msg, NULL);
}
