/* SPDX-License-Identifier: Apache-2.0 */
/* PATCH semantics for the Kubernetes API: JSON merge patch (RFC 7386),
 * strategic merge patch (Kubernetes' own, for core/v1 objects) and JSON
 * patch (RFC 6902). Each works on a deep copy of the document, so a failed
 * patch changes nothing and the result shares nothing with its inputs. The
 * strategic patch knows merge keys from a small path table, not from the
 * OpenAPI schema; docs/internals/KUBE_PATCH.md says what that leaves out. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/kube_patch.h"

/* ---- shared helpers ---- */

/* Writes a one-line reason: control characters (a path may hold "\n")
 * become spaces so the message stays one line in a Status body and a log. */
static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* Nonzero when v nests objects and arrays more than max levels deep. The
 * recursion stops at max, so it is bounded whatever v is. */
static int too_deep(const json_t *v, int max)
{
    json_t *o = (json_t *)v; /* jansson's iteration API is not const */
    if (!json_is_object(o) && !json_is_array(o))
        return 0;
    if (max <= 0)
        return 1;
    if (json_is_object(o)) {
        const char *k;
        json_t *c;
        json_object_foreach(o, k, c)
            if (too_deep(c, max - 1))
                return 1;
        return 0;
    }
    for (size_t i = 0; i < json_array_size(o); i++)
        if (too_deep(json_array_get(o, i), max - 1))
            return 1;
    return 0;
}

/* JSON equality as RFC 6902 "test" defines it and as Go compares decoded
 * values: numbers by value (1 equals 1.0), strings by bytes, objects
 * regardless of member order. */
static int value_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (!a || !b || json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!value_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach((json_t *)a, k, klen, v)
            if (!value_equal(v, json_object_getn(b, k, klen)))
                return 0;
        return 1;
    }
    default:
        return 1; /* true, false, null: equal types are equal values */
    }
}

static int has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && !memcmp(s, prefix, n);
}

/* Nonzero when key k is the directive prefix followed by a field name,
 * which *f (*flen bytes) then points at. */
static int directive_field(const char *k, size_t klen, const char *prefix, const char **f,
                           size_t *flen)
{
    if (!has_prefix(k, klen, prefix))
        return 0;
    *f = k + strlen(prefix);
    *flen = klen - strlen(prefix);
    return 1;
}

/* Message-length cap for a key quoted in a reason. */
static int clip(size_t klen)
{
    return klen > 64 ? 64 : (int)klen;
}

/* Checks the arguments every entry point shares. */
static int check_args(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    if (!doc || !patch) {
        seterr(err, errlen, "no %s", doc ? "patch" : "document");
        return 0;
    }
    if (too_deep(patch, WISP_KUBE_PATCH_MAX_DEPTH)) {
        seterr(err, errlen, "patch nests deeper than %d levels", WISP_KUBE_PATCH_MAX_DEPTH);
        return 0;
    }
    return 1;
}

/* ---- JSON merge patch (RFC 7386) ---- */

/* RFC 7386 section 2's MergePatch(Target, Patch). target is consumed (it is
 * part of the caller's private copy, so it is changed in place); NULL means
 * absent. Returns the new value, or NULL when out of memory. */
static json_t *merge7386(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        if (!(target = json_object()))
            return NULL;
    }
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)patch, k, klen, v) {
        if (json_is_null(v)) {
            json_object_deln(target, k, klen);
            continue;
        }
        json_t *m = merge7386(json_incref(json_object_getn(target, k, klen)), v);
        if (!m || json_object_setn_new_nocheck(target, k, klen, m)) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

json_t *wisp_kube_merge_patch(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    if (!check_args(doc, patch, err, errlen))
        return NULL;
    json_t *out = merge7386(json_deep_copy(doc), patch);
    if (!out)
        seterr(err, errlen, "out of memory");
    return out;
}

/* ---- strategic merge patch ---- */

#define SMP_PATH_MAX 256

/* Where the merge is, as a dotted path from the object's root with "[]" for
 * a list element ("spec.containers[].ports"); it decides the merge key. */
struct smp {
    char *err;
    size_t errlen;
    char path[SMP_PATH_MAX];
    size_t pathlen;
    int opaque; /* > 0: the path cannot name a table entry (a key with '.'
                 * or '[' in it, or too long), so no rule matches below */
};

struct smp_mark {
    size_t pathlen;
    int opaque;
};

/* A list Kubernetes marks patchStrategy=merge. pattern is a path in which
 * "POD." stands for any place a PodSpec lives and "CTR." for any of its
 * container lists' elements; key is the patchMergeKey, NULL for a list of
 * primitives merged as a set. From k8s.io/api core/v1 and meta/v1. */
struct smp_rule {
    const char *pattern;
    const char *key;
};

static const struct smp_rule smp_rules[] = {
    {"metadata.finalizers", NULL},
    {"metadata.ownerReferences", "uid"},
    {"POD.containers", "name"},
    {"POD.initContainers", "name"},
    {"POD.ephemeralContainers", "name"},
    {"POD.volumes", "name"},
    {"POD.imagePullSecrets", "name"},
    {"POD.hostAliases", "ip"},
    {"POD.topologySpreadConstraints", "topologyKey"},
    {"POD.schedulingGates", "name"},
    {"POD.resourceClaims", "name"},
    {"POD.CTR.ports", "containerPort"},
    {"POD.CTR.env", "name"},
    {"POD.CTR.volumeMounts", "mountPath"},
    {"POD.CTR.volumeDevices", "devicePath"},
    {"status.conditions", "type"}, /* Pod, Node, Namespace, PVC, workloads */
    {"status.podIPs", "ip"},
    {"status.hostIPs", "ip"},
    {"status.addresses", "type"}, /* Node */
    {"spec.podCIDRs", NULL},      /* Node */
    {"spec.ports", "port"},       /* Service */
    {"secrets", "name"},          /* ServiceAccount */
};

static int rule_match(const char *pat, const char *path)
{
    /* Pod (spec), PodTemplate (template.spec), ReplicationController and
     * the apps/batch workloads (spec.template.spec), CronJob. */
    static const char *const pods[] = {"spec.", "template.spec.", "spec.template.spec.",
                                       "spec.jobTemplate.spec.template.spec."};
    static const char *const ctrs[] = {"containers[].", "initContainers[].",
                                       "ephemeralContainers[]."};
    const char *const *alts = NULL;
    size_t n = 0;
    if (!strncmp(pat, "POD.", 4))
        alts = pods, n = sizeof(pods) / sizeof(pods[0]);
    else if (!strncmp(pat, "CTR.", 4))
        alts = ctrs, n = sizeof(ctrs) / sizeof(ctrs[0]);
    else
        return !strcmp(pat, path);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(alts[i]);
        if (!strncmp(path, alts[i], l) && rule_match(pat + 4, path + l))
            return 1;
    }
    return 0;
}

/* The rule for the list at the current path, or NULL: the list replaces. */
static const struct smp_rule *find_rule(const struct smp *s)
{
    if (s->opaque)
        return NULL;
    for (size_t i = 0; i < sizeof(smp_rules) / sizeof(smp_rules[0]); i++)
        if (rule_match(smp_rules[i].pattern, s->path))
            return &smp_rules[i];
    return NULL;
}

/* Descends into member key (or a list element when key is "[]"). */
static struct smp_mark smp_push(struct smp *s, const char *key, size_t klen)
{
    struct smp_mark m = {s->pathlen, s->opaque};
    int elem = klen == 2 && !memcmp(key, "[]", 2);
    if (!elem && (memchr(key, '.', klen) || memchr(key, '[', klen) || memchr(key, '\0', klen)))
        s->opaque++;
    else if (s->pathlen + klen + 2 > sizeof(s->path))
        s->opaque++;
    if (s->opaque)
        return m;
    if (s->pathlen && !elem)
        s->path[s->pathlen++] = '.';
    memcpy(s->path + s->pathlen, key, klen);
    s->pathlen += klen;
    s->path[s->pathlen] = '\0';
    return m;
}

static void smp_pop(struct smp *s, struct smp_mark m)
{
    s->pathlen = m.pathlen;
    s->opaque = m.opaque;
    s->path[s->pathlen] = '\0';
}

/* The path for messages: the field being merged, or "the patch". */
static const char *smp_where(const struct smp *s)
{
    return s->pathlen && !s->opaque ? s->path : "the patch";
}

static json_t *smp_fail(struct smp *s, json_t *drop, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *smp_fail(struct smp *s, json_t *drop, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    seterr(s->err, s->errlen, "%s", msg);
    json_decref(drop);
    return NULL;
}

static json_t *smp_map(struct smp *s, json_t *orig, const json_t *patch);
static json_t *smp_list(struct smp *s, json_t *orig, const json_t *patch, const json_t *order,
                        const struct smp_rule *r);

/* The merge key's value in a list element (the element itself for a list
 * of primitives), or NULL when it has none. */
static const json_t *elem_key(const json_t *el, const struct smp_rule *r)
{
    if (!r->key)
        return el;
    return json_object_get(el, r->key);
}

/* A list element that is a directive ($patch: delete or replace), not a
 * value to merge. */
static int is_special(const json_t *el)
{
    const char *d = json_string_value(json_object_get(el, "$patch"));
    return d && (!strcmp(d, "delete") || !strcmp(d, "replace"));
}

/* A list that replaces: its elements are taken as they are, except that
 * maps are merged into nothing, which drops nulls and applies directives. */
static json_t *smp_plain_list(struct smp *s, const json_t *patch)
{
    json_t *out = json_array();
    if (!out)
        return smp_fail(s, NULL, "out of memory");
    for (size_t i = 0; i < json_array_size(patch); i++) {
        const json_t *el = json_array_get(patch, i);
        const char *d = json_string_value(json_object_get(el, "$patch"));
        if (d && !strcmp(d, "replace"))
            continue; /* the list replaces anyway */
        if (d && !strcmp(d, "delete"))
            return smp_fail(s, out, "$patch: delete in %s, which has no merge key", smp_where(s));
        struct smp_mark m = smp_push(s, "[]", 2);
        json_t *v = json_is_object(el)  ? smp_map(s, NULL, el)
                    : json_is_array(el) ? smp_plain_list(s, el)
                                        : json_deep_copy(el);
        smp_pop(s, m);
        if (!v && !json_is_object(el) && !json_is_array(el))
            smp_fail(s, NULL, "out of memory");
        if (!v) {
            json_decref(out);
            return NULL; /* the reason is set */
        }
        if (json_array_append_new(out, v))
            return smp_fail(s, out, "out of memory");
    }
    return out;
}

/* Merges patch value pv into ov, the current value at s->path (consumed;
 * NULL when absent). pv is not null. */
static json_t *smp_value(struct smp *s, json_t *ov, const json_t *pv)
{
    if (json_is_object(pv)) {
        if (!json_is_object(ov)) {
            json_decref(ov);
            ov = NULL;
        }
        return smp_map(s, ov, pv);
    }
    if (json_is_array(pv)) {
        const struct smp_rule *r = find_rule(s);
        if (!r) {
            json_decref(ov);
            return smp_plain_list(s, pv);
        }
        if (!json_is_array(ov)) {
            json_decref(ov);
            if (!(ov = json_array()))
                return smp_fail(s, NULL, "out of memory");
        }
        return smp_list(s, ov, pv, NULL, r);
    }
    json_decref(ov);
    json_t *v = json_deep_copy(pv);
    return v ? v : smp_fail(s, NULL, "out of memory");
}

/* One element of a list being merged. */
struct smp_item {
    json_t *v;  /* owned */
    long orig;  /* index in the document's list, -1 if from the patch */
    long pos;   /* index in the order list, -1 if not in it */
    size_t seq; /* position before sorting, for a stable qsort */
};

static void items_drop(struct smp_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(items[i].v);
}

static int by_pos(const void *a, const void *b)
{
    const struct smp_item *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_orig(const void *a, const void *b)
{
    const struct smp_item *x = a, *y = b;
    unsigned long xo = (unsigned long)x->orig, yo = (unsigned long)y->orig; /* -1 sorts last */
    if (xo != yo)
        return xo < yo ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The text a merge key (or a primitive list value) is looked up by: its
 * JSON, with whole numbers written as integers, since Go compares decoded
 * 80 and 80.0 equal. NULL for a missing key or one that cannot be compared
 * (an object or array). Caller frees. Lookups go through jansson objects
 * used as hash tables, so merging two lists is linear, not quadratic. */
static char *key_text(const json_t *k)
{
    if (!k || json_is_object(k) || json_is_array(k))
        return NULL;
    if (json_is_real(k)) {
        double d = json_real_value(k);
        if (d >= -9e15 && d <= 9e15 && d == (double)(long long)d) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%lld", (long long)d);
            return strdup(buf);
        }
    }
    return json_dumps(k, JSON_ENCODE_ANY);
}

/* Looks up k's text in table: its recorded index, or -1. *missing is set
 * when k has no text. */
static long key_find(const json_t *table, const json_t *k, int *missing)
{
    char *t = key_text(k);
    long ix = -1;
    if (!t) {
        *missing = 1;
        return -1;
    }
    json_t *v = json_object_get(table, t);
    if (v)
        ix = (long)json_integer_value(v);
    free(t);
    return ix;
}

/* Records k's text in table with index ix, unless already there (the first
 * occurrence wins, as in Kubernetes' lookups). 0 when out of memory. */
static int key_add(json_t *table, const json_t *k, long ix)
{
    char *t = key_text(k);
    int ok = 1;
    if (t && !json_object_get(table, t))
        ok = !json_object_set_new_nocheck(table, t, json_integer(ix));
    free(t);
    return ok;
}

/* Checks the element types of a merge list: all maps or all primitives of
 * one JSON type (as Go's reflect.TypeOf compares them), never lists. */
static int list_kind_ok(const json_t *a, const json_t *b, int *maps)
{
    int kind = -1;
    const json_t *lists[2] = {a, b};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < json_array_size(lists[l]); i++) {
            const json_t *el = json_array_get(lists[l], i);
            int k = json_is_boolean(el)  ? JSON_TRUE
                    : json_is_number(el) ? JSON_REAL
                                         : json_typeof(el);
            if (k == JSON_ARRAY || (kind >= 0 && k != kind))
                return 0;
            kind = k;
        }
    *maps = kind == JSON_OBJECT;
    return 1;
}

/* Checks that the patch list's elements (bar directives) appear in the
 * $setElementOrder list, in the same relative order. */
static int order_matches(const json_t *patch, const json_t *order, const struct smp_rule *r)
{
    size_t pi = 0, oi = 0, np = json_array_size(patch), no = json_array_size(order);
    while (pi < np && oi < no) {
        const json_t *el = json_array_get(patch, pi);
        if (is_special(el)) {
            pi++;
            continue;
        }
        if (value_equal(elem_key(el, r), elem_key(json_array_get(order, oi), r)))
            pi++;
        oi++;
    }
    while (pi < np && is_special(json_array_get(patch, pi)))
        pi++;
    return pi == np;
}

/* Orders merged items as Kubernetes does: the items named in the order
 * list (the patch list, or $setElementOrder) in that order, the others in
 * the document's order, interleaved so that two items both from the
 * document keep their relative place, and an item only the patch has goes
 * before the document's items that are not named. Consumes the items'
 * values. */
static json_t *smp_order(struct smp *s, struct smp_item *items, size_t n, const json_t *order,
                         const struct smp_rule *r)
{
    struct smp_item *named = calloc(n + 1, sizeof(*named)), *rest = calloc(n + 1, sizeof(*rest));
    json_t *out = json_array(), *pos = json_object();
    size_t nn = 0, nr = 0;
    int missing = 0;
    if (!named || !rest || !out || !pos)
        goto oom;
    for (size_t j = 0; j < json_array_size(order); j++)
        if (!is_special(json_array_get(order, j)) &&
            !key_add(pos, elem_key(json_array_get(order, j), r), (long)j))
            goto oom;
    for (size_t i = 0; i < n; i++) {
        items[i].pos = key_find(pos, elem_key(items[i].v, r), &missing);
        items[i].seq = i;
        if (items[i].pos >= 0)
            named[nn++] = items[i];
        else
            rest[nr++] = items[i];
    }
    qsort(named, nn, sizeof(*named), by_pos);
    qsort(rest, nr, sizeof(*rest), by_orig);
    for (size_t a = 0, b = 0; a < nr || b < nn;) {
        struct smp_item *take;
        if (a < nr && b < nn)
            take = rest[a].orig >= 0 && named[b].orig >= 0 && rest[a].orig < named[b].orig
                       ? &rest[a++]
                       : &named[b++];
        else
            take = a < nr ? &rest[a++] : &named[b++];
        if (json_array_append(out, take->v))
            goto oom;
    }
    goto out;
oom:
    smp_fail(s, out, "out of memory");
    out = NULL;
out:
    items_drop(items, n);
    json_decref(pos);
    free(named);
    free(rest);
    return out;
}

/* Merges a patch list into orig (consumed) by the rule's merge key, or as a
 * set of primitives. patch may be NULL (only reordering). order is the
 * $setElementOrder list, or NULL to order by the patch list. */
static json_t *smp_list(struct smp *s, json_t *orig, const json_t *patch, const json_t *order,
                        const struct smp_rule *r)
{
    const char *where = smp_where(s);
    size_t no = json_array_size(orig), np = json_array_size(patch), n = 0;
    struct smp_item *items = NULL;
    json_t *out = NULL, *index = NULL, *gone = NULL;
    int maps, replace = 0, missing = 0;

    if (no > WISP_KUBE_PATCH_MAX_LIST || np > WISP_KUBE_PATCH_MAX_LIST)
        return smp_fail(s, orig, "list %s has more than %d elements", where,
                        WISP_KUBE_PATCH_MAX_LIST);
    if (!list_kind_ok(orig, patch, &maps))
        return smp_fail(s, orig, "list %s mixes element types or holds lists", where);
    if (maps && !r->key)
        return smp_fail(s, orig, "list %s has maps but no merge key", where);
    if (!maps && r->key && (no || np))
        return smp_fail(s, orig, "list %s needs maps with merge key %s", where, r->key);
    items = calloc(no + np + 1, sizeof(*items));
    index = json_object(); /* key text -> index in items */
    gone = json_object();  /* key texts that $patch: delete names */
    if (!items || !index || !gone) {
        smp_fail(s, NULL, "out of memory");
        goto out;
    }

    /* Directives in elements: delete by key, replace the whole list. */
    for (size_t i = 0; maps && i < np; i++) {
        const json_t *el = json_array_get(patch, i), *d = json_object_get(el, "$patch");
        const char *ds = json_string_value(d);
        if (!d || (ds && !strcmp(ds, "merge")))
            continue;
        if (ds && !strcmp(ds, "replace")) {
            replace = 1;
        } else if (ds && !strcmp(ds, "delete")) {
            if (!elem_key(el, r)) {
                smp_fail(s, NULL, "$patch: delete in %s lacks merge key %s", where, r->key);
                goto out;
            }
            if (!key_add(gone, elem_key(el, r), 0)) {
                smp_fail(s, NULL, "out of memory");
                goto out;
            }
        } else {
            smp_fail(s, NULL, "unknown $patch directive in %s", where);
            goto out;
        }
    }

    /* The document's items: less the deleted ones (all that match), and,
     * in a list of primitives, duplicates. */
    for (size_t i = 0; i < no && !replace; i++) {
        json_t *v = json_array_get(orig, i);
        const json_t *k = elem_key(v, r);
        if (key_find(maps ? gone : index, k, &missing) >= 0)
            continue;
        if (!key_add(index, k, (long)n)) {
            smp_fail(s, NULL, "out of memory");
            goto out;
        }
        items[n++] = (struct smp_item){json_incref(v), (long)i, -1, 0};
    }

    /* The patch's items: merged into the document's item with the same key,
     * else added. */
    for (size_t i = 0; i < np; i++) {
        const json_t *el = json_array_get(patch, i), *k = elem_key(el, r);
        if (is_special(el))
            continue;
        if (maps && !k) {
            smp_fail(s, NULL, "an element of %s lacks merge key %s", where, r->key);
            goto out;
        }
        missing = 0;
        long j = key_find(index, k, &missing);
        if (missing) {
            smp_fail(s, NULL, "merge key %s in %s is a map or list", r->key, where);
            goto out;
        }
        if (!maps && j >= 0)
            continue;
        if (j < 0 && !key_add(index, k, (long)n)) {
            smp_fail(s, NULL, "out of memory");
            goto out;
        }
        json_t *v;
        if (maps) {
            struct smp_mark m = smp_push(s, "[]", 2);
            v = smp_map(s, j >= 0 ? items[j].v : NULL, el); /* consumes items[j].v */
            smp_pop(s, m);
        } else if (!(v = json_deep_copy(el))) {
            smp_fail(s, NULL, "out of memory");
        }
        if (j >= 0)
            items[j].v = v;
        else if (v)
            items[n++] = (struct smp_item){v, -1, -1, 0};
        if (!v)
            goto out;
    }
    /* After $patch: replace every item comes from the patch, so ordering
     * by the patch list keeps the patch's order. */
    out = smp_order(s, items, n, order ? order : patch, r);
    n = 0; /* smp_order consumed the items */
out:
    items_drop(items, n);
    free(items);
    json_decref(index);
    json_decref(gone);
    json_decref(orig);
    return out;
}

/* $retainKeys: the patch names every field the map keeps; the others go.
 * Every field the patch sets must be named. */
static int smp_retain(struct smp *s, json_t *orig, const json_t *patch)
{
    const json_t *rk = json_object_get(patch, "$retainKeys");
    json_t *keep = NULL, *v, *tmp;
    const char *k;
    size_t klen;
    int ok = 0;
    if (!rk)
        return 1;
    if (!json_is_array(rk)) {
        smp_fail(s, NULL, "$retainKeys in %s must be a list", smp_where(s));
        return 0;
    }
    if (!(keep = json_object()))
        goto oom;
    for (size_t i = 0; i < json_array_size(rk); i++) {
        const json_t *e = json_array_get(rk, i);
        if (json_is_string(e) && json_object_setn_new_nocheck(keep, json_string_value(e),
                                                              json_string_length(e), json_true()))
            goto oom;
    }
    json_object_keylen_foreach((json_t *)patch, k, klen, v) {
        if (!json_is_null(v) && k[0] != '$' && !json_object_getn(keep, k, klen)) {
            smp_fail(s, NULL, "%s sets %.*s, which its $retainKeys does not list", smp_where(s),
                     clip(klen), k);
            goto out;
        }
    }
    json_object_keylen_foreach_safe(orig, tmp, k, klen, v)
        if (!json_object_getn(keep, k, klen))
            json_object_deln(orig, k, klen);
    ok = 1;
    goto out;
oom:
    smp_fail(s, NULL, "out of memory");
out:
    json_decref(keep);
    return ok;
}

#define SEO "$setElementOrder/"
#define DFPL "$deleteFromPrimitiveList/"

/* $setElementOrder/FIELD: merges FIELD (if the patch has it) and orders the
 * result. Records each list it merged in done, so the main pass skips it. */
static int smp_set_order(struct smp *s, json_t *orig, const json_t *patch, json_t *done)
{
    const char *k;
    const char *f;
    size_t klen, flen;
    json_t *order;
    json_object_keylen_foreach((json_t *)patch, k, klen, order) {
        if (!directive_field(k, klen, SEO, &f, &flen))
            continue;
        if (!flen || !json_is_array(order)) {
            smp_fail(s, NULL, "bad %.*s in %s", clip(klen), k, smp_where(s));
            return 0;
        }
        struct smp_mark m = smp_push(s, f, flen);
        const struct smp_rule *r = find_rule(s);
        json_t *ol = json_object_getn(orig, f, flen);
        const json_t *pl = json_object_getn(patch, f, flen);
        int ok = 1;
        if (!r || (!ol && !pl)) {
            /* Not a merge list: the list in the patch replaces, in its own
             * order, and the directive has nothing to order. */
        } else if ((ol && !json_is_array(ol)) || (pl && !json_is_array(pl))) {
            ok = !!smp_fail(s, NULL, "%s is not a list", smp_where(s));
        } else if (json_array_size(order) > WISP_KUBE_PATCH_MAX_LIST) {
            ok = !!smp_fail(s, NULL, "%s in %s has more than %d elements", SEO, smp_where(s),
                            WISP_KUBE_PATCH_MAX_LIST);
        } else {
            for (size_t i = 0; i < json_array_size(order) && ok; i++)
                if (!elem_key(json_array_get(order, i), r) ||
                    json_is_object(json_array_get(order, i)) != !!r->key)
                    ok = !!smp_fail(s, NULL, "an element of %s%s lacks merge key %s", SEO,
                                    smp_where(s), r->key ? r->key : "(value)");
            if (ok && pl && !order_matches(pl, order, r))
                ok = !!smp_fail(s, NULL, "the order of %s does not match its %s list", smp_where(s),
                                SEO);
            if (ok) {
                json_t *base = ol ? json_incref(ol) : json_array();
                json_t *v =
                    base ? smp_list(s, base, pl, order, r) : smp_fail(s, NULL, "out of memory");
                ok = v && !json_object_setn_new_nocheck(orig, f, flen, v) &&
                     !json_object_setn_new_nocheck(done, f, flen, json_true());
                if (v && !ok)
                    smp_fail(s, NULL, "out of memory");
            }
        }
        smp_pop(s, m);
        if (!ok)
            return 0;
    }
    return 1;
}

/* $deleteFromPrimitiveList/FIELD: removes those values from FIELD. */
static int smp_delete_from(struct smp *s, json_t *orig, const json_t *patch)
{
    const char *k, *f;
    size_t klen, flen;
    json_t *dl;
    json_object_keylen_foreach((json_t *)patch, k, klen, dl) {
        if (!directive_field(k, klen, DFPL, &f, &flen))
            continue;
        json_t *ol = json_object_getn(orig, f, flen), *gone = NULL, *kept = NULL;
        int missing = 0, ok = 1;
        if (!flen || !json_is_array(dl) || (ol && !json_is_array(ol))) {
            smp_fail(s, NULL, "bad %.*s in %s", clip(klen), k, smp_where(s));
            return 0;
        }
        if (json_array_size(ol) > WISP_KUBE_PATCH_MAX_LIST ||
            json_array_size(dl) > WISP_KUBE_PATCH_MAX_LIST) {
            smp_fail(s, NULL, "list in %s has more than %d elements", smp_where(s),
                     WISP_KUBE_PATCH_MAX_LIST);
            return 0;
        }
        if (!ol)
            continue;
        ok = (gone = json_object()) && (kept = json_array());
        for (size_t i = 0; ok && i < json_array_size(dl); i++)
            ok = key_add(gone, json_array_get(dl, i), 0);
        for (size_t i = 0; ok && i < json_array_size(ol); i++)
            if (key_find(gone, json_array_get(ol, i), &missing) < 0)
                ok = !json_array_append(kept, json_array_get(ol, i));
        ok = ok && !json_object_setn_nocheck(orig, f, flen, kept);
        json_decref(gone);
        json_decref(kept);
        if (!ok) {
            smp_fail(s, NULL, "out of memory");
            return 0;
        }
    }
    return 1;
}

/* Merges map patch into orig (consumed; NULL when there is none). Returns
 * the merged map, or NULL with s->err set. */
static json_t *smp_map(struct smp *s, json_t *orig, const json_t *patch)
{
    const json_t *d = json_object_get(patch, "$patch");
    json_t *done = NULL, *v;
    const char *k;
    size_t klen;
    if (d) {
        const char *ds = json_string_value(d);
        if (ds && !strcmp(ds, "delete")) {
            /* Kubernetes leaves an empty map, not an absent field. */
            json_decref(orig);
            v = json_object();
            return v ? v : smp_fail(s, NULL, "out of memory");
        }
        if (ds && !strcmp(ds, "replace")) {
            json_decref(orig);
            orig = NULL;
        } else if (!ds || strcmp(ds, "merge")) {
            return smp_fail(s, orig, "unknown $patch directive in %s", smp_where(s));
        }
    }
    if (!orig && !(orig = json_object()))
        return smp_fail(s, NULL, "out of memory");
    if (!(done = json_object()))
        return smp_fail(s, orig, "out of memory");
    if (!smp_retain(s, orig, patch) || !smp_set_order(s, orig, patch, done) ||
        !smp_delete_from(s, orig, patch))
        goto fail;
    json_object_keylen_foreach((json_t *)patch, k, klen, v) {
        if (k[0] == '$') {
            /* The directives handled above, or by the caller ($patch). */
            if ((klen == 6 && !memcmp(k, "$patch", 6)) ||
                (klen == 11 && !memcmp(k, "$retainKeys", 11)) || has_prefix(k, klen, SEO) ||
                has_prefix(k, klen, DFPL))
                continue;
            smp_fail(s, NULL, "unknown directive %.*s in %s", clip(klen), k, smp_where(s));
            goto fail;
        }
        if (json_object_getn(done, k, klen))
            continue;
        if (json_is_null(v)) {
            json_object_deln(orig, k, klen);
            continue;
        }
        struct smp_mark m = smp_push(s, k, klen);
        json_t *nv = smp_value(s, json_incref(json_object_getn(orig, k, klen)), v);
        smp_pop(s, m);
        if (!nv)
            goto fail;
        if (json_object_setn_new_nocheck(orig, k, klen, nv)) {
            smp_fail(s, NULL, "out of memory");
            goto fail;
        }
    }
    json_decref(done);
    return orig;
fail:
    json_decref(done);
    json_decref(orig);
    return NULL;
}

json_t *wisp_kube_strategic_patch(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    if (!check_args(doc, patch, err, errlen))
        return NULL;
    if (!json_is_object(doc) || !json_is_object(patch)) {
        seterr(err, errlen, "a strategic merge patch and its document must be JSON objects");
        return NULL;
    }
    struct smp s = {.err = err, .errlen = errlen};
    json_t *root = json_deep_copy(doc);
    if (!root) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    return smp_map(&s, root, patch);
}

/* ---- JSON patch (RFC 6902) ---- */

/* A parsed RFC 6901 pointer: n tokens, unescaped, pointing into buf. */
struct jptr {
    char *buf;
    char **tok;
    size_t n;
};

static void jptr_free(struct jptr *p)
{
    free(p->buf);
    free(p->tok);
    *p = (struct jptr){0};
}

/* Parses str (a JSON string value) into p. Returns NULL, or a reason. */
static const char *jptr_parse(const json_t *str, struct jptr *p)
{
    const char *s = json_string_value(str);
    size_t len = json_string_length(str), n = 0;
    *p = (struct jptr){0};
    if (!s)
        return "is not a string";
    if (strlen(s) != len)
        return "holds a NUL character";
    if (len && s[0] != '/')
        return "does not start with /";
    for (size_t i = 0; i < len; i++)
        n += s[i] == '/';
    if (!(p->buf = malloc(len + 1)) || !(p->tok = calloc(n + 1, sizeof(*p->tok)))) {
        jptr_free(p);
        return "out of memory";
    }
    char *w = p->buf;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/') {
            *w++ = '\0';
            p->tok[p->n++] = w;
        } else if (s[i] == '~') {
            if (i + 1 == len || (s[i + 1] != '0' && s[i + 1] != '1')) {
                jptr_free(p);
                return "has a ~ not followed by 0 or 1";
            }
            *w++ = s[++i] == '0' ? '~' : '/';
        } else {
            *w++ = s[i];
        }
    }
    *w = '\0';
    return NULL;
}

static int jptr_equal(const struct jptr *p, const struct jptr *q)
{
    if (p->n != q->n)
        return 0;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->tok[i], q->tok[i]))
            return 0;
    return 1;
}

/* Nonzero when p is a proper prefix of q. */
static int jptr_proper_prefix(const struct jptr *p, const struct jptr *q)
{
    if (p->n >= q->n)
        return 0;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->tok[i], q->tok[i]))
            return 0;
    return 1;
}

/* An array index token: digits with no leading zero, below size (or equal
 * to it, and "-" meaning size, where end is set: add's insert position). */
static const char *array_index(const char *t, size_t size, int end, size_t *out)
{
    if (end && !strcmp(t, "-")) {
        *out = size;
        return NULL;
    }
    size_t len = strlen(t), v = 0;
    if (!len || len > 18 || (len > 1 && t[0] == '0'))
        return "is not an array index";
    for (size_t i = 0; i < len; i++) {
        if (t[i] < '0' || t[i] > '9')
            return "is not an array index";
        v = v * 10 + (size_t)(t[i] - '0');
    }
    if (v > size || (v == size && !end))
        return "is past the end of the array";
    *out = v;
    return NULL;
}

/* Resolves the first upto tokens of p from root. Returns the value, or NULL
 * with a reason in *why. */
static json_t *jptr_get(json_t *root, const struct jptr *p, size_t upto, const char **why)
{
    json_t *cur = root;
    size_t ix;
    for (size_t i = 0; i < upto; i++) {
        if (json_is_object(cur)) {
            if (!(cur = json_object_get(cur, p->tok[i])))
                *why = "no such member";
        } else if (json_is_array(cur)) {
            if ((*why = array_index(p->tok[i], json_array_size(cur), 0, &ix)))
                return NULL;
            cur = json_array_get(cur, ix);
        } else {
            cur = NULL;
            *why = "goes through a value that is not an object or array";
        }
        if (!cur)
            return NULL;
    }
    return cur;
}

/* The container that holds p's last token, or NULL with a reason. */
static json_t *jptr_parent(json_t *root, const struct jptr *p, const char **why)
{
    json_t *parent = jptr_get(root, p, p->n - 1, why);
    if (parent && !json_is_object(parent) && !json_is_array(parent)) {
        *why = "parent is not an object or array";
        return NULL;
    }
    return parent;
}

/* add: v (consumed) goes to p in *root, inserted if p ends in an array. */
static const char *jp_add(json_t **root, const struct jptr *p, json_t *v)
{
    const char *why = NULL;
    json_t *parent;
    size_t ix;
    if (!p->n) {
        json_decref(*root);
        *root = v;
        return NULL;
    }
    if (!(parent = jptr_parent(*root, p, &why))) {
        json_decref(v);
        return why;
    }
    if (json_is_object(parent))
        return json_object_set_new_nocheck(parent, p->tok[p->n - 1], v) ? "out of memory" : NULL;
    if ((why = array_index(p->tok[p->n - 1], json_array_size(parent), 1, &ix))) {
        json_decref(v);
        return why;
    }
    return json_array_insert_new(parent, ix, v) ? "out of memory" : NULL;
}

/* replace: v (consumed) takes the place of the value at p, which exists. */
static const char *jp_replace(json_t **root, const struct jptr *p, json_t *v)
{
    const char *why = NULL;
    json_t *parent;
    size_t ix;
    if (!p->n)
        return jp_add(root, p, v);
    parent = jptr_parent(*root, p, &why);
    if (json_is_object(parent)) {
        if (json_object_get(parent, p->tok[p->n - 1]))
            return json_object_set_new_nocheck(parent, p->tok[p->n - 1], v) ? "out of memory"
                                                                            : NULL;
        why = "no such member";
    } else if (parent && !(why = array_index(p->tok[p->n - 1], json_array_size(parent), 0, &ix))) {
        return json_array_set_new(parent, ix, v) ? "out of memory" : NULL;
    }
    json_decref(v);
    return why;
}

/* remove: takes the value at p out of root; *taken gets a reference to it
 * when taken is not NULL. */
static const char *jp_remove(json_t *root, const struct jptr *p, json_t **taken)
{
    const char *why = NULL;
    json_t *parent, *v;
    size_t ix;
    if (!p->n)
        return "cannot remove the whole document";
    if (!(parent = jptr_parent(root, p, &why)))
        return why;
    if (json_is_object(parent)) {
        if (!(v = json_object_get(parent, p->tok[p->n - 1])))
            return "no such member";
        if (taken)
            *taken = json_incref(v);
        json_object_del(parent, p->tok[p->n - 1]);
        return NULL;
    }
    if ((why = array_index(p->tok[p->n - 1], json_array_size(parent), 0, &ix)))
        return why;
    if (taken)
        *taken = json_incref(json_array_get(parent, ix));
    json_array_remove(parent, ix);
    return NULL;
}

/* Counts the values in v, stopping soon after max. */
static size_t count_values(const json_t *v, size_t max)
{
    json_t *o = (json_t *)v;
    size_t n = 1;
    if (json_is_object(o)) {
        const char *k;
        json_t *c;
        json_object_foreach(o, k, c) {
            if (n > max)
                break;
            n += count_values(c, max - n);
        }
    } else if (json_is_array(o)) {
        for (size_t i = 0; i < json_array_size(o) && n <= max; i++)
            n += count_values(json_array_get(o, i), max - n);
    }
    return n;
}

/* One operation on *root. Returns NULL, or a reason (static text). */
static const char *jp_op(json_t **root, const char *op, const json_t *o, const struct jptr *path,
                         size_t *copied)
{
    const json_t *value = json_object_get(o, "value");
    const char *why = NULL;
    struct jptr from = {0};
    json_t *v = NULL, *src = NULL;
    int with_value = !strcmp(op, "add") || !strcmp(op, "replace") || !strcmp(op, "test");
    int with_from = !strcmp(op, "move") || !strcmp(op, "copy");

    if (!with_value && !with_from && strcmp(op, "remove"))
        return "unknown op";
    if (with_value && !value)
        return "missing \"value\"";
    if (with_from) {
        if (!json_object_get(o, "from"))
            return "missing \"from\"";
        if ((why = jptr_parse(json_object_get(o, "from"), &from)))
            return !strcmp(why, "out of memory") ? why : "bad \"from\" pointer";
        if (!(src = jptr_get(*root, &from, from.n, &why))) {
            why = "\"from\" does not exist";
            goto out;
        }
    }
    /* Nothing may land deeper than the limit, or a patch could nest the
     * document without bound (and jansson recurses over depth). */
    if (strcmp(op, "remove") && strcmp(op, "test") &&
        (path->n > WISP_KUBE_PATCH_MAX_DEPTH ||
         too_deep(src ? src : value, WISP_KUBE_PATCH_MAX_DEPTH - (int)path->n))) {
        why = "would nest the document deeper than the limit";
        goto out;
    }
    if (!strcmp(op, "add")) {
        why = (v = json_deep_copy(value)) ? jp_add(root, path, v) : "out of memory";
    } else if (!strcmp(op, "replace")) {
        why = (v = json_deep_copy(value)) ? jp_replace(root, path, v) : "out of memory";
    } else if (!strcmp(op, "remove")) {
        why = jp_remove(*root, path, NULL);
    } else if (!strcmp(op, "move")) {
        if (jptr_proper_prefix(&from, path))
            why = "cannot move a value into itself";
        else if (!jptr_equal(&from, path) && !(why = jp_remove(*root, &from, &v)))
            why = jp_add(root, path, v);
    } else if (!strcmp(op, "copy")) {
        *copied += count_values(src, WISP_KUBE_PATCH_MAX_COPY);
        if (*copied > WISP_KUBE_PATCH_MAX_COPY)
            why = "copies more values than the limit";
        else
            why = (v = json_deep_copy(src)) ? jp_add(root, path, v) : "out of memory";
    } else {
        json_t *cur = jptr_get(*root, path, path->n, &why);
        if (cur && !value_equal(cur, value))
            why = "test failed: the value differs";
    }
out:
    jptr_free(&from);
    return why;
}

json_t *wisp_kube_json_patch(const json_t *doc, const json_t *ops, char *err, size_t errlen)
{
    json_t *root = NULL;
    size_t copied = 0;
    if (!check_args(doc, ops, err, errlen))
        return NULL;
    if (!json_is_array(ops)) {
        seterr(err, errlen, "a JSON patch must be an array of operations");
        return NULL;
    }
    if (json_array_size(ops) > WISP_KUBE_PATCH_MAX_OPS) {
        seterr(err, errlen, "a JSON patch may hold at most %d operations", WISP_KUBE_PATCH_MAX_OPS);
        return NULL;
    }
    if (!(root = json_deep_copy(doc))) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *o = json_array_get(ops, i), *ps = json_object_get(o, "path");
        const char *op = json_string_value(json_object_get(o, "op")), *why, *what = "";
        struct jptr path;
        if (!json_is_object(o)) {
            why = "is not an object";
        } else if (!op) {
            why = "has no \"op\" string";
        } else if (!ps) {
            why = "missing \"path\"";
        } else if ((why = jptr_parse(ps, &path))) {
            what = "path ";
        } else {
            why = jp_op(&root, op, o, &path, &copied);
            jptr_free(&path);
        }
        if (why) {
            seterr(err, errlen, "op %zu (%.16s %.120s): %s%s", i, op ? op : "?",
                   json_string_value(ps) ? json_string_value(ps) : "", what, why);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}
