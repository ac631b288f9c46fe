/* SPDX-License-Identifier: Apache-2.0 */
/* objects.list as range scans: the objects of a bucket under a prefix are
 * the store documents named "BUCKET/PREFIX…", in byte order. A delimiter
 * folds every name under one common prefix into a single entry; instead of
 * reading those names, the walk restarts just past all of them, so a page
 * costs O(entries returned) scans and rows whatever the bucket holds.
 * Depends on the store and jansson only (bench/objects links it alone). */
#include <string.h>
#include "wisp/alloc.h"
#include "storage_int.h"

struct walk {
    struct stg_list *l;
    size_t blen;          /* strlen(bucket) + 1: where object names start */
    size_t plen;          /* strlen(prefix) */
    size_t dlen;          /* strlen(delimiter), 0 for none */
    size_t count;         /* entries on the page so far */
    char *cursor;         /* full store name to continue after; owned */
    char *last;           /* object name the next page continues after; owned */
    int restart;          /* the scan stopped at a common prefix: scan again */
    int done;             /* page full or past end_offset */
    int failed;
};

static void set_str(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

static int visit(const struct wisp_doc *doc, void *ctx)
{
    struct walk *w = ctx;
    struct stg_list *l = w->l;
    const char *name = doc->name + w->blen;
    if (l->end_offset && *l->end_offset && strcmp(name, l->end_offset) >= 0) {
        w->done = 1;
        return 1;
    }
    if (w->count == l->max) {
        /* One more entry exists: the page ends here, with a token. */
        l->next_after = w->last;
        w->last = NULL;
        w->done = 1;
        return 1;
    }
    const char *d = w->dlen ? strstr(name + w->plen, l->delimiter) : NULL;
    if (!d) {
        if (l->on_item(name, doc, l->ctx)) {
            w->failed = 1;
            return 1;
        }
        w->count++;
        set_str(&w->last, wisp_xstrdup(name));
        set_str(&w->cursor, wisp_xstrdup(doc->name));
        return 0;
    }
    /* A common prefix: name up to and including the delimiter. Valid object
     * names are UTF-8, which never holds 0xff, so "PREFIX\xff" sorts after
     * every name under PREFIX and before every name after them. */
    size_t cplen = (size_t)(d - name) + w->dlen;
    if (l->include_trailing && name[cplen] == '\0' && l->on_item(name, doc, l->ctx)) {
        w->failed = 1;
        return 1;
    }
    char *cp = wisp_xstrndup(name, cplen);
    json_array_append_new(l->prefixes, json_string(cp));
    w->count++;
    set_str(&w->last, wisp_xasprintf("%s\xff", cp));
    set_str(&w->cursor, wisp_xasprintf("%.*s\xff", (int)(w->blen + cplen), doc->name));
    free(cp);
    w->restart = 1;
    return 1;
}

/* The bound just below an inclusive lower bound s, for a store that only
 * knows "strictly after": s with its last byte lowered by one and 0xff
 * appended sorts before s and after every valid UTF-8 name below s. A last
 * byte of 0x01 is dropped instead (names hold no NUL). */
static char *just_below(const char *bucket, const char *s)
{
    size_t n = strlen(s);
    if ((unsigned char)s[n - 1] == 0x01)
        return wisp_xasprintf("%s/%.*s", bucket, (int)(n - 1), s);
    char *out = wisp_xasprintf("%s/%s\xff", bucket, s);
    size_t b = strlen(bucket) + 1;
    out[b + n - 1] = (char)((unsigned char)out[b + n - 1] - 1);
    return out;
}

enum wisp_err stg_list_run(struct wisp_txn *txn, struct stg_list *l)
{
    struct walk w = {.l = l};
    enum wisp_err err = WISP_OK;
    const char *prefix = l->prefix ? l->prefix : "";
    char *full_prefix = wisp_xasprintf("%s/%s", l->bucket, prefix);
    l->prefixes = json_array();
    l->next_after = NULL;
    w.blen = strlen(l->bucket) + 1;
    w.plen = strlen(prefix);
    w.dlen = l->delimiter ? strlen(l->delimiter) : 0;
    if (l->start_after && *l->start_after)
        w.cursor = wisp_xasprintf("%s/%s", l->bucket, l->start_after);
    if (l->start_offset && *l->start_offset) {
        char *below = just_below(l->bucket, l->start_offset);
        if (!w.cursor || strcmp(below, w.cursor) > 0)
            set_str(&w.cursor, below);
        else
            free(below);
    }
    do {
        w.restart = 0;
        /* +1: one row past a full page says whether there is another. */
        err = wisp_store_list(txn, STG_KIND_OBJECT, full_prefix, w.cursor, l->max - w.count + 1,
                              visit, &w, NULL);
        if (!err && w.failed)
            err = WISP_EIO;
    } while (!err && w.restart && !w.done);
    free(w.cursor);
    free(w.last);
    free(full_prefix);
    if (err) {
        free(l->next_after);
        l->next_after = NULL;
    }
    return err;
}
