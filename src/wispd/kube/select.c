/* SPDX-License-Identifier: Apache-2.0 */
/* Label and field selectors (labelSelector=, fieldSelector=): parsed once
 * per request into a list of requirements, all of which an object must
 * meet. Field selectors support the fields the clients here use. */
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "kube.h"

#define MAX_REQS 32
#define MAX_VALUES 32

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct req {
    int field; /* 1: a field path, 0: a label key */
    char *key;
    enum op op;
    char *values[MAX_VALUES];
    size_t n_values;
};

struct kube_selector {
    struct req reqs[MAX_REQS];
    size_t n;
};

static const char *const fields[] = {"metadata.name", "metadata.namespace", "spec.nodeName",
                                     "spec.serviceAccountName", "status.phase", "status.podIP",
                                     NULL};

void kube_selector_free(struct kube_selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->reqs[i].key);
        for (size_t j = 0; j < s->reqs[i].n_values; j++)
            free(s->reqs[i].values[j]);
    }
    free(s);
}

static char *trim(const char *p, size_t n)
{
    while (n && *p == ' ') {
        p++;
        n--;
    }
    while (n && p[n - 1] == ' ')
        n--;
    return wisp_xstrndup(p, n);
}

/* One requirement from text[0..n). 0 on a syntax error. */
static int parse_one(struct kube_selector *s, const char *t, size_t n, int field)
{
    struct req *r = &s->reqs[s->n];
    char *text = trim(t, n);
    char *p;
    int ok = 1;
    memset(r, 0, sizeof(*r));
    r->field = field;
    if ((p = strstr(text, "!=")) != NULL) {
        r->op = OP_NE;
        r->key = trim(text, (size_t)(p - text));
        r->values[r->n_values++] = trim(p + 2, strlen(p + 2));
    } else if ((p = strstr(text, "==")) != NULL || (p = strchr(text, '=')) != NULL) {
        size_t skip = p[1] == '=' ? 2 : 1;
        r->op = OP_EQ;
        r->key = trim(text, (size_t)(p - text));
        r->values[r->n_values++] = trim(p + skip, strlen(p + skip));
    } else if (!field && ((p = strstr(text, " notin ")) != NULL || (p = strstr(text, " in ")) != NULL)) {
        int notin = p[1] == 'n';
        r->op = notin ? OP_NOTIN : OP_IN;
        r->key = trim(text, (size_t)(p - text));
        const char *lp = strchr(p, '('), *rp = lp ? strchr(lp, ')') : NULL;
        if (!lp || !rp || rp[1]) {
            ok = 0;
        } else {
            for (const char *v = lp + 1; v < rp && r->n_values < MAX_VALUES;) {
                size_t len = strcspn(v, ",)");
                r->values[r->n_values++] = trim(v, len);
                v += len + 1;
            }
        }
    } else if (!field && text[0] == '!') {
        r->op = OP_NOTEXISTS;
        r->key = trim(text + 1, strlen(text + 1));
    } else if (!field) {
        r->op = OP_EXISTS;
        r->key = wisp_xstrdup(text);
    } else {
        ok = 0;
    }
    free(text);
    s->n++;
    if (ok && (!r->key || !*r->key || strpbrk(r->key, " ()!=,")))
        ok = 0;
    if (ok && field) {
        ok = 0;
        for (const char *const *f = fields; *f; f++)
            ok |= !strcmp(*f, r->key);
    }
    return ok;
}

/* Splits on commas outside parentheses. */
static int parse_list(struct kube_selector *s, const char *text, int field)
{
    int depth = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if ((*p == ',' && depth == 0) || !*p) {
            if (p > start) {
                if (s->n == MAX_REQS || !parse_one(s, start, (size_t)(p - start), field))
                    return 0;
            }
            if (!*p)
                break;
            start = p + 1;
        }
    }
    return depth == 0;
}

struct kube_selector *kube_selector_parse(struct wisp_http_req *req, const char *labels,
                                          const char *fields_text)
{
    struct kube_selector *s = wisp_xcalloc(1, sizeof(*s));
    if (labels && !parse_list(s, labels, 0)) {
        kube_status(req, 400, "BadRequest", NULL, NULL,
                    "unable to parse requirement: invalid label selector \"%.200s\"", labels);
        kube_selector_free(s);
        return NULL;
    }
    if (fields_text && !parse_list(s, fields_text, 1)) {
        kube_status(req, 400, "BadRequest", NULL, NULL,
                    "field label not supported or malformed field selector: \"%.200s\"",
                    fields_text);
        kube_selector_free(s);
        return NULL;
    }
    return s;
}

static const char *field_value(const json_t *o, const char *path)
{
    const char *dot = strchr(path, '.');
    char top[32];
    size_t n = (size_t)(dot - path);
    if (!dot || n >= sizeof(top))
        return NULL;
    memcpy(top, path, n);
    top[n] = '\0';
    return json_string_value(json_object_get(json_object_get(o, top), dot + 1));
}

int kube_selector_match(const struct kube_selector *s, const json_t *o)
{
    const json_t *labels = json_object_get(json_object_get(o, "metadata"), "labels");
    for (size_t i = 0; s && i < s->n; i++) {
        const struct req *r = &s->reqs[i];
        const char *v = r->field ? field_value(o, r->key)
                                 : json_string_value(json_object_get(labels, r->key));
        int found = 0;
        for (size_t j = 0; j < r->n_values; j++)
            found |= v && !strcmp(v, r->values[j]);
        /* An absent field compares as "". */
        if (r->field && !v && r->n_values)
            found = r->values[0][0] == '\0';
        switch (r->op) {
        case OP_EQ:
        case OP_IN:
            if (!found)
                return 0;
            break;
        case OP_NE:
        case OP_NOTIN:
            if (found)
                return 0;
            break;
        case OP_EXISTS:
            if (!v)
                return 0;
            break;
        case OP_NOTEXISTS:
            if (v)
                return 0;
            break;
        }
    }
    return 1;
}
