/* SPDX-License-Identifier: Apache-2.0 */
/* Strict JSON request bodies: parse with jansson (duplicate keys rejected,
 * depth bounded by jansson), then check every field against a schema table,
 * with Google's wording for unknown names and wrong types. */
#include <stdio.h>
#include <string.h>
#include "wisp/api.h"

static const char *type_name(enum wisp_jtype t)
{
    switch (t) {
    case WISP_J_STRING: return "TYPE_STRING";
    case WISP_J_INT: return "TYPE_INT32";
    case WISP_J_BOOL: return "TYPE_BOOL";
    case WISP_J_OBJECT: return "TYPE_MESSAGE";
    case WISP_J_ARRAY: return "TYPE_REPEATED";
    case WISP_J_ANY: return "TYPE_ANY";
    }
    return "TYPE_UNKNOWN";
}

/* proto3 JSON accepts integers as numbers or as decimal strings. */
static int type_ok(const json_t *v, enum wisp_jtype t)
{
    switch (t) {
    case WISP_J_STRING: return json_is_string(v);
    case WISP_J_INT:
        if (json_is_integer(v))
            return 1;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (*s == '-')
                s++;
            if (!*s)
                return 0;
            for (; *s; s++) {
                if (*s < '0' || *s > '9')
                    return 0;
            }
            return 1;
        }
        return 0;
    case WISP_J_BOOL: return json_is_boolean(v);
    case WISP_J_OBJECT: return json_is_object(v);
    case WISP_J_ARRAY: return json_is_array(v);
    case WISP_J_ANY: return 1;
    }
    return 0;
}

static void bad_value(const json_t *v, const char *path, enum wisp_jtype t, char *msg, size_t len)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(msg, len, "Invalid value at '%s' (%s), %.80s", path, type_name(t), text ? text : "?");
    free(text);
}

enum wisp_err wisp_api_check(const json_t *v, const struct wisp_jfield *schema, const char *path,
                             char *msg, size_t msglen)
{
    if (!schema)
        return WISP_OK;
    if (!json_is_object(v)) {
        bad_value(v, path, WISP_J_OBJECT, msg, msglen);
        return WISP_EINVAL;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        const struct wisp_jfield *f = schema;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) {
            if (*path)
                snprintf(msg, msglen,
                         "Invalid JSON payload received. Unknown name \"%.64s\" at '%s': "
                         "Cannot find field.",
                         key, path);
            else
                snprintf(msg, msglen,
                         "Invalid JSON payload received. Unknown name \"%.64s\": Cannot find "
                         "field.",
                         key);
            return WISP_EINVAL;
        }
        char sub[256];
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
        if (json_is_null(val))
            continue; /* proto3 JSON: null means "unset" */
        if (!type_ok(val, f->type)) {
            bad_value(val, sub, f->type, msg, msglen);
            return WISP_EINVAL;
        }
        if (f->type == WISP_J_OBJECT && f->sub) {
            enum wisp_err err = wisp_api_check(val, f->sub, sub, msg, msglen);
            if (err)
                return err;
        } else if (f->type == WISP_J_ARRAY) {
            size_t i;
            json_t *el;
            json_array_foreach(val, i, el) {
                char elpath[300];
                snprintf(elpath, sizeof(elpath), "%s[%zu]", sub, i);
                if (!type_ok(el, f->elem)) {
                    bad_value(el, elpath, f->elem, msg, msglen);
                    return WISP_EINVAL;
                }
                if (f->elem == WISP_J_OBJECT && f->sub) {
                    enum wisp_err err = wisp_api_check(el, f->sub, elpath, msg, msglen);
                    if (err)
                        return err;
                }
            }
        }
    }
    return WISP_OK;
}

json_t *wisp_api_body(struct wisp_http_req *req, const struct wisp_jfield *schema)
{
    json_error_t jerr;
    json_t *root;
    /* An empty body is an empty message (gcloud sends none on some POSTs). */
    size_t i = 0;
    while (i < req->body_len && strchr(" \t\r\n", req->body[i]))
        i++;
    if (i == req->body_len)
        root = json_object();
    else
        root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        wisp_api_error(req, 400, NULL,
                       "Invalid JSON payload received. %s at line %d column %d.", jerr.text,
                       jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        wisp_api_error(req, 400, NULL,
                       "Invalid JSON payload received. Expected an object at the top level.");
        return NULL;
    }
    char msg[512];
    if (wisp_api_check(root, schema, "", msg, sizeof(msg)) != WISP_OK) {
        json_decref(root);
        wisp_api_error(req, 400, NULL, "%s", msg);
        return NULL;
    }
    return root;
}
