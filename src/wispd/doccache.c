/* SPDX-License-Identifier: Apache-2.0 */
/* A per-process memo of parsed store documents that hot paths read on
 * every request but that rarely change (a cluster, its OIDC issuer): the
 * store is still read each time, and a parsed tree is reused only while
 * the stored text is byte-for-byte the one it was parsed from, so no
 * answer can be staler than an uncached read. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/hash.h"
#include "wispd.h"

#define DOCCACHE_SLOTS 64
/* Larger documents are parsed per call: the memo is for small, hot ones. */
#define DOCCACHE_MAX_BODY (64 * 1024)

struct doccache_slot {
    char *kind, *name; /* NULL when free */
    char *body;        /* the text the tree was parsed from */
    size_t body_len;
    json_t *tree;      /* one reference held by the slot */
};

static struct {
    pthread_mutex_t mu;
    struct doccache_slot slots[DOCCACHE_SLOTS];
} doccache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* FNV-1a over kind NUL name: which slot a document may occupy. */
static size_t slot_of(const char *kind, const char *name)
{
    uint64_t h = wisp_fnv1a(WISP_FNV1A_BASIS, kind, strlen(kind) + 1);
    return (size_t)(wisp_fnv1a(h, name, strlen(name)) % DOCCACHE_SLOTS);
}

static int slot_holds(const struct doccache_slot *s, const struct wisp_doc *d)
{
    return s->tree && s->body_len == d->body_len && strcmp(s->kind, d->kind) == 0 &&
           strcmp(s->name, d->name) == 0 && memcmp(s->body, d->body, d->body_len) == 0;
}

static void slot_clear(struct doccache_slot *s)
{
    free(s->kind);
    free(s->name);
    free(s->body);
    json_decref(s->tree);
    memset(s, 0, sizeof(*s));
}

enum wisp_err wispd_get_json_shared(struct wisp_txn *txn, const char *kind, const char *name,
                                    json_t **out, int64_t *rev_out)
{
    struct wisp_doc doc;
    enum wisp_err err = wisp_store_get(txn, kind, name, &doc);
    if (err)
        return err;
    struct doccache_slot *s = &doccache.slots[slot_of(kind, name)];
    json_t *tree = NULL;
    pthread_mutex_lock(&doccache.mu);
    if (slot_holds(s, &doc))
        tree = json_incref(s->tree);
    pthread_mutex_unlock(&doccache.mu);
    if (!tree) {
        /* Parsed outside the lock; another thread may store the same text
         * meanwhile, and either tree is right. */
        tree = json_loadb(doc.body, doc.body_len, 0, NULL);
        if (tree && doc.body_len <= DOCCACHE_MAX_BODY) {
            pthread_mutex_lock(&doccache.mu);
            slot_clear(s);
            s->kind = doc.kind;
            s->name = doc.name;
            s->body = doc.body;
            s->body_len = doc.body_len;
            s->tree = json_incref(tree);
            /* The slot owns the text now. */
            doc.kind = doc.name = doc.body = NULL;
            pthread_mutex_unlock(&doccache.mu);
        }
    }
    if (rev_out)
        *rev_out = doc.rev;
    wisp_store_doc_free(&doc);
    *out = tree;
    return tree ? WISP_OK : WISP_ESTORE;
}
