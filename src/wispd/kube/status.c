/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes Status answers: the one shape every error of the Kubernetes API
 * takes (kubectl prints its message), and the JSON sending every handler
 * shares. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "kube.h"

void kube_send(struct wisp_http_req *req, int code, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    wisp_http_respond(req, code, "application/json", text, strlen(text));
    free(text);
}

static void send_status(struct wisp_http_req *req, int code, const char *reason,
                        const char *message, json_t *details)
{
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
                           "v1", "metadata", "status", "Failure", "message", message, "reason",
                           reason, "code", code);
    if (details)
        json_object_set_new(st, "details", details);
    kube_send(req, code, st);
}

void kube_status(struct wisp_http_req *req, int code, const char *reason, const char *name,
                 const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *details = NULL;
    if (name || kind) {
        details = json_object();
        if (name)
            json_object_set_new(details, "name", json_string(name));
        if (kind)
            json_object_set_new(details, "kind", json_string(kind));
    }
    send_status(req, code, reason, msg, details);
}

void kube_invalid(struct wisp_http_req *req, const char *kind, const char *name,
                  const char *field, const char *cause_reason, const char *fmt, ...)
{
    char cause[512], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof(msg), "%s \"%s\" is invalid: %s: %s", kind, name ? name : "", field,
             cause);
    json_t *details = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", name ? name : "",
                                "kind", kind, "causes", "reason", cause_reason, "message", cause,
                                "field", field);
    send_status(req, 422, "Invalid", msg, details);
}

void kube_store_error(struct wisp_http_req *req, enum wisp_err err)
{
    if (err == WISP_EBUSY)
        kube_status(req, 429, "TooManyRequests", NULL, NULL,
                    "the store is busy; please try again later");
    else
        kube_status(req, 500, "InternalError", NULL, NULL, "Internal error occurred: store: %s",
                    wisp_strerror(err));
}

json_t *kube_public(const json_t *stored)
{
    json_t *o = json_deep_copy(stored);
    json_object_del(o, KUBE_CREATED);
    return o;
}
