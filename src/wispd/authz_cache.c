/* SPDX-License-Identifier: Apache-2.0 */
/* wispd's decisions against compiled policies: each worker thread keeps the
 * wisp_iam_index of every policy document it has used, keyed by the
 * document's name and checked against its store revision (and the custom
 * roles' revisions) before each use, so no lock is taken and no invalidation
 * hook is needed: a write makes the next decision rebuild. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/hash.h"
#include "wisp/log.h"
#include "authz_cache.h"

/* Entry kinds: the first byte of an entry's key. */
#define KIND_POLICY 'I'  /* an "iampolicy" document, compiled */
#define KIND_PROJECT 'P' /* a "project" document's parent organization */

/* A custom role a policy binds, and the revision it had (0: absent). */
struct dep {
    char *name; /* from malloc() */
    int64_t rev;
};

struct entry {
    char *key;        /* kind byte + document name; from malloc() */
    uint64_t hash;
    int64_t rev;      /* the document's revision when built; 0: absent */
    int64_t checked;  /* store revision at which rev (and deps) were last confirmed */
    uint64_t used;    /* the decision (cache->epoch) that last used it */
    size_t bytes;     /* counted against the cache's bound */
    /* KIND_POLICY */
    struct wisp_iam_index *index; /* NULL when absent or too big to compile */
    json_t *policy;               /* only when it exists but could not be compiled */
    json_t *custom;               /* {role name: stored role}, NULL if it binds none */
    struct dep *deps;             /* every custom role it binds, existing or not */
    size_t n_deps;
    /* KIND_PROJECT */
    char *org; /* parent id, from malloc(); NULL if none */
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* recency list: head is the most recent */
};

struct wispd_authz_cache {
    struct entry **buckets;
    size_t mask;
    struct entry *head, *tail;
    size_t n, bytes, max_entries, max_bytes;
    uint64_t epoch;    /* one per decision; its entries are never evicted */
    int64_t store_rev; /* the store's revision as this decision reads it */
    struct wispd_authz_cache_stats stats;
};

struct wispd_authz_cache *wispd_authz_cache_new(size_t max_entries, size_t max_bytes)
{
    struct wispd_authz_cache *c = wisp_xcalloc(1, sizeof(*c));
    /* A decision holds up to 4 entries at once (3 policies and a project),
     * which eviction must never reach. */
    c->max_entries = max_entries < 8 ? 8 : max_entries;
    c->max_bytes = max_bytes;
    size_t nb = 16;
    while (nb < 2 * c->max_entries)
        nb *= 2;
    c->buckets = wisp_xcalloc(nb, sizeof(*c->buckets));
    c->mask = nb - 1;
    return c;
}

/* Frees what the entry holds, leaving key, hash and links. */
static void entry_clear(struct entry *e)
{
    wisp_iam_index_free(e->index);
    e->index = NULL;
    json_decref(e->policy);
    e->policy = NULL;
    json_decref(e->custom);
    e->custom = NULL;
    for (size_t i = 0; i < e->n_deps; i++)
        free(e->deps[i].name);
    WISP_FREE(e->deps);
    e->n_deps = 0;
    WISP_FREE(e->org);
}

static void entry_free(struct entry *e)
{
    entry_clear(e);
    free(e->key);
    free(e);
}

void wispd_authz_cache_free(struct wispd_authz_cache *c)
{
    if (!c)
        return;
    struct entry *e = c->head;
    while (e) {
        struct entry *next = e->next;
        entry_free(e);
        e = next;
    }
    free(c->buckets);
    free(c);
}

/* ---- the table and the recency list ------------------------------------- */

static void list_unlink(struct wispd_authz_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_head(struct wispd_authz_cache *c, struct entry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static struct entry *find(const struct wispd_authz_cache *c, const char *key, uint64_t hash)
{
    for (struct entry *e = c->buckets[hash & c->mask]; e; e = e->hnext) {
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static void remove_entry(struct wispd_authz_cache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(c, e);
    c->n--;
    c->bytes -= e->bytes;
    entry_free(e);
}

/* Evicts least recently used entries until both bounds hold, sparing those
 * the current decision holds (so a bound may be exceeded by them alone). */
static void shrink(struct wispd_authz_cache *c)
{
    struct entry *e = c->tail;
    while (e && (c->n > c->max_entries || c->bytes > c->max_bytes)) {
        struct entry *prev = e->prev;
        if (e->used != c->epoch) {
            remove_entry(c, e);
            c->stats.evictions++;
        }
        e = prev;
    }
}

/* ---- filling entries from the store ------------------------------------- */

/* The revision of (kind, name), 0 if absent; -1 on a store failure. */
static int64_t doc_rev(struct wisp_txn *txn, const char *kind, const char *name)
{
    int64_t rev = 0;
    enum wisp_err err = wisp_store_get_rev(txn, kind, name, &rev);
    if (err == WISP_ENOTFOUND)
        return 0;
    return err ? -1 : rev;
}

/* Whether e still describes the store as txn sees it: 1 yes, 0 no, -1 on
 * a store failure. Free when nothing was written since the last check. */
static int entry_current(struct wispd_authz_cache *c, struct wisp_txn *txn, struct entry *e)
{
    if (e->checked == c->store_rev)
        return 1;
    int64_t rev = doc_rev(txn, e->key[0] == KIND_POLICY ? "iampolicy" : "project", e->key + 1);
    if (rev != e->rev)
        return rev < 0 ? -1 : 0;
    for (size_t i = 0; i < e->n_deps; i++) {
        rev = doc_rev(txn, "role", e->deps[i].name);
        if (rev != e->deps[i].rev)
            return rev < 0 ? -1 : 0;
    }
    e->checked = c->store_rev;
    return 1;
}

/* Reads (kind, name) as JSON: *out (caller decrefs) and *rev, or NULL and
 * 0 if absent, adding about the memory it takes to *bytes. */
static enum wisp_err load_json(struct wisp_txn *txn, const char *kind, const char *name,
                               json_t **out, int64_t *rev, size_t *bytes)
{
    struct wisp_doc doc;
    *out = NULL;
    *rev = 0;
    enum wisp_err err = wisp_store_get(txn, kind, name, &doc);
    if (err)
        return err == WISP_ENOTFOUND ? WISP_OK : err;
    *out = json_loadb(doc.body, doc.body_len, 0, NULL);
    *rev = doc.rev;
    *bytes += doc.body_len * 4; /* parsed JSON: about 4x its text */
    wisp_store_doc_free(&doc);
    return *out ? WISP_OK : WISP_ESTORE;
}

/* Records every custom role policy binds, with its stored document where
 * there is one: the same roles wispd's JSON path loads, so both grant alike. */
static enum wisp_err load_deps(struct wisp_txn *txn, const json_t *policy, struct entry *e)
{
    size_t i, cap = 0;
    json_t *b;
    json_array_foreach(json_object_get(policy, "bindings"), i, b) {
        const char *role = json_string_value(json_object_get(b, "role"));
        if (!role || strncmp(role, "roles/", 6) == 0)
            continue;
        size_t j;
        for (j = 0; j < e->n_deps && strcmp(e->deps[j].name, role) != 0; j++)
            ;
        if (j < e->n_deps)
            continue;
        json_t *r = NULL;
        int64_t rev = 0;
        if (load_json(txn, "role", role, &r, &rev, &e->bytes) != WISP_OK)
            return WISP_EIO;
        if (r) {
            if (!e->custom)
                e->custom = json_object();
            json_object_set_new(e->custom, role, r);
        }
        if (e->n_deps == cap) {
            cap = cap ? 2 * cap : 4;
            e->deps = wisp_xrealloc(e->deps, cap * sizeof(*e->deps));
        }
        e->deps[e->n_deps++] = (struct dep){wisp_xstrdup(role), rev};
        e->bytes += sizeof(struct dep) + strlen(role) + 1;
    }
    return WISP_OK;
}

/* Reads e's document afresh in txn and compiles it. */
static enum wisp_err entry_fill(struct wispd_authz_cache *c, struct wisp_txn *txn,
                                struct entry *e)
{
    json_t *doc = NULL;
    size_t text_bytes = 0; /* the document itself is not kept */
    int policy = e->key[0] == KIND_POLICY;
    enum wisp_err err = load_json(txn, policy ? "iampolicy" : "project", e->key + 1, &doc,
                                  &e->rev, &text_bytes);
    if (err)
        goto out;
    e->bytes = sizeof(*e) + strlen(e->key) + 1;
    if (!policy) {
        const char *org =
            json_string_value(json_object_get(json_object_get(doc, "parent"), "id"));
        e->org = org ? wisp_xstrdup(org) : NULL;
    } else if (doc) {
        e->index = wisp_iam_index_build(doc);
        if (e->index) {
            struct wisp_iam_index_stats st;
            wisp_iam_index_stats(e->index, &st);
            e->bytes += st.bytes;
        } else {
            /* Beyond 32-bit offsets: decide by walking it, as before. */
            e->policy = json_incref(doc);
            e->bytes += text_bytes;
        }
        err = load_deps(txn, doc, e);
    }
    e->checked = c->store_rev;
    c->stats.builds++;
out:
    json_decref(doc);
    return err;
}

/* The entry for (kind, name), current as txn sees it, held for this
 * decision; NULL on a store failure. */
static struct entry *get(struct wispd_authz_cache *c, struct wisp_txn *txn, char kind,
                         const char *name)
{
    char key[WISPD_POLICY_NAME_MAX + 2];
    snprintf(key, sizeof(key), "%c%s", kind, name);
    uint64_t hash = wisp_fnv1a_str(key);
    struct entry *e = find(c, key, hash);
    if (e) {
        int cur = entry_current(c, txn, e);
        if (cur < 0)
            return NULL;
        list_unlink(c, e);
        list_push_head(c, e);
        e->used = c->epoch;
        if (cur) {
            c->stats.hits++;
            return e;
        }
        c->bytes -= e->bytes;
        entry_clear(e);
    } else {
        e = wisp_xcalloc(1, sizeof(*e));
        e->key = wisp_xstrdup(key);
        e->hash = hash;
        e->used = c->epoch;
        e->hnext = c->buckets[hash & c->mask];
        c->buckets[hash & c->mask] = e;
        list_push_head(c, e);
        c->n++;
    }
    if (entry_fill(c, txn, e) != WISP_OK) {
        wisp_log_warn("authz", "cannot read %s for the policy cache", name);
        e->bytes = 0;
        remove_entry(c, e);
        return NULL;
    }
    c->bytes += e->bytes;
    shrink(c);
    return e;
}

/* ---- decisions ---------------------------------------------------------- */

int wispd_authz_chain_names(const struct wispd_resource *r, int have_project, const char *org,
                            char names[3][WISPD_POLICY_NAME_MAX])
{
    int n = 0;
    char pname[WISPD_POLICY_NAME_MAX];
    snprintf(pname, sizeof(pname), "projects/%s", r->project_id ? r->project_id : "");
    if (strcmp(r->name, pname) != 0)
        snprintf(names[n++], WISPD_POLICY_NAME_MAX, "%s", r->name);
    snprintf(names[n++], WISPD_POLICY_NAME_MAX, "%s", pname);
    if (have_project)
        snprintf(names[n++], WISPD_POLICY_NAME_MAX, "organizations/%s", org ? org : "-");
    return n;
}

enum wisp_err wispd_authz_decide(struct wispd_authz_cache *c, struct wisp_txn *txn,
                                 const struct wisp_caller *who, const char *permission,
                                 const struct wispd_resource *r,
                                 const struct wisp_cond_env *env, int *allowed, char *why,
                                 size_t whylen)
{
    char names[3][WISPD_POLICY_NAME_MAX];
    const char *name_ptrs[3];
    const struct wisp_iam_index *indexes[3] = {NULL, NULL, NULL};
    const json_t *policies[3] = {NULL, NULL, NULL};
    const json_t *custom = NULL;
    json_t *merged = NULL;
    enum wisp_err err = WISP_EIO;

    c->epoch++;
    if (wisp_store_revision(txn, &c->store_rev) != WISP_OK)
        return WISP_EIO;
    /* An organization's own chain names no project (project_id "" or
     * NULL), so there is no project document to read. */
    struct entry *project = NULL;
    if (r->project_id && r->project_id[0] &&
        !(project = get(c, txn, KIND_PROJECT, r->project_id)))
        return WISP_EIO;
    int have_project = project && project->rev;
    const char *org = project ? project->org : NULL;
    int n = wispd_authz_chain_names(r, have_project, org, names);
    for (int i = 0; i < n; i++) {
        name_ptrs[i] = names[i];
        /* No organization: nothing to read, as on the JSON path. */
        if (i == n - 1 && have_project && !org)
            break;
        struct entry *e = get(c, txn, KIND_POLICY, names[i]);
        if (!e)
            goto out;
        indexes[i] = e->index;
        policies[i] = e->policy;
        if (!e->custom)
            continue;
        /* One object for the chain; the common case (at most one policy
         * binds custom roles) borrows it. */
        if (!custom) {
            custom = e->custom;
        } else {
            if (!merged) {
                merged = json_copy((json_t *)custom);
                custom = merged;
            }
            json_object_update(merged, e->custom);
        }
    }
    struct wisp_iam_target t = {.resource = r->name, .policies = policies,
                                .n_policies = (size_t)n, .env = env, .indexes = indexes,
                                .policy_names = name_ptrs, .custom_roles = custom};
    *allowed = wisp_authorize(who, permission, &t, why, whylen);
    err = WISP_OK;
out:
    json_decref(merged);
    return err;
}

void wispd_authz_cache_stats(const struct wispd_authz_cache *c,
                             struct wispd_authz_cache_stats *out)
{
    *out = c->stats;
    out->entries = c->n;
    out->bytes = c->bytes;
}

/* ---- one cache per thread ------------------------------------------------ */

static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static size_t thread_max_entries = WISPD_AUTHZ_CACHE_ENTRIES;

static void thread_cache_free(void *p)
{
    wispd_authz_cache_free(p);
}

static void thread_init(void)
{
    const char *env = getenv("WISPD_AUTHZ_CACHE_ENTRIES");
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (!*end && v <= 1000000)
            thread_max_entries = v;
        else
            wisp_log_warn("authz", "WISPD_AUTHZ_CACHE_ENTRIES=%.32s is not 0..1000000; "
                                   "keeping %d", env, WISPD_AUTHZ_CACHE_ENTRIES);
    }
    if (pthread_key_create(&thread_key, thread_cache_free) != 0)
        thread_max_entries = 0;
    wisp_log_info("authz", "policy cache: %zu entries per thread%s", thread_max_entries,
                  thread_max_entries ? "" : " (off: decisions walk the stored policies)");
}

struct wispd_authz_cache *wispd_authz_cache_thread(void)
{
    pthread_once(&thread_once, thread_init);
    if (!thread_max_entries)
        return NULL;
    struct wispd_authz_cache *c = pthread_getspecific(thread_key);
    if (!c) {
        c = wispd_authz_cache_new(thread_max_entries, WISPD_AUTHZ_CACHE_BYTES);
        if (pthread_setspecific(thread_key, c) != 0) {
            wispd_authz_cache_free(c);
            return NULL;
        }
    }
    return c;
}
