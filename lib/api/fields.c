/* SPDX-License-Identifier: Apache-2.0 */
/* Partial responses: the `fields` query parameter. Grammar (Google's):
 *   list  := item (',' item)*
 *   item  := name ('/' name)* ['(' list ')']
 * A selected object member is kept with all its content unless a nested
 * selection follows; arrays apply the nested selection to each element.
 * "*" selects everything at its level. */
#include <ctype.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"

#define FIELDS_MAX_DEPTH 8

/* A selection is a JSON object of name -> sub-selection (or null = all). */
static json_t *parse_list(const char **s, int depth);

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '*' || c == '@' || c == '.' || c == '-';
}

static json_t *parse_item(const char **s, int depth, json_t *into)
{
    const char *p = *s;
    const char *start = p;
    while (name_char(*p))
        p++;
    if (p == start)
        return NULL;
    char *name = wisp_xstrndup(start, (size_t)(p - start));
    json_t *sub = json_object_get(into, name);
    if (!sub || json_is_null(sub)) {
        sub = json_object();
        json_object_set_new(into, name, sub);
    }
    free(name);
    if (*p == '/') {
        p++;
        *s = p;
        return parse_item(s, depth + 1, sub) ? into : NULL;
    }
    if (*p == '(') {
        p++;
        *s = p;
        json_t *inner = parse_list(s, depth + 1);
        if (!inner || **s != ')') {
            json_decref(inner);
            return NULL;
        }
        json_object_update(sub, inner);
        json_decref(inner);
        (*s)++;
        return into;
    }
    /* A bare name keeps the whole member: mark it with an empty selection
     * that means "everything" by adding "*". */
    json_object_set_new(sub, "*", json_object());
    *s = p;
    return into;
}

static json_t *parse_list(const char **s, int depth)
{
    if (depth > FIELDS_MAX_DEPTH)
        return NULL;
    json_t *sel = json_object();
    for (;;) {
        while (**s == ' ')
            (*s)++;
        if (!parse_item(s, depth, sel)) {
            json_decref(sel);
            return NULL;
        }
        while (**s == ' ')
            (*s)++;
        if (**s != ',')
            break;
        (*s)++;
    }
    return sel;
}

static void apply(json_t *v, const json_t *sel)
{
    if (json_object_get(sel, "*"))
        return; /* whole subtree */
    if (json_is_array(v)) {
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el) apply(el, sel);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *key;
    json_t *val, *tmp;
    json_object_foreach_safe(v, tmp, key, val) {
        json_t *sub = json_object_get(sel, key);
        if (!sub)
            json_object_del(v, key);
        else
            apply(val, sub);
    }
}

enum wisp_err wisp_api_fields_apply(json_t *obj, const char *selector)
{
    const char *s = selector;
    json_t *sel = parse_list(&s, 0);
    if (!sel || *s != '\0') {
        json_decref(sel);
        return WISP_EINVAL;
    }
    apply(obj, sel);
    json_decref(sel);
    return WISP_OK;
}
