/* SPDX-License-Identifier: Apache-2.0 */
/* The token cache of the metadata server. Entries live in one shared table
 * under a mutex; each reader thread keeps its own references (a view), so
 * a cached answer is served without a lock or an atomic write: the view
 * trusts a reference until the moment the shared entry is due for refresh,
 * or until an invalidation bumps the cache's generation. Misses for the same
 * key wait for the one fetch in flight (single-flight). A background
 * thread refreshes entries ahead of expiry with jitter; when the upstream
 * fails, the old token keeps being served until it nearly expires, never
 * after. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/hash.h"
#include "wisp/log.h"
#include "wisp/metadata.h"

#define SUB "mdcache"
#define NBUCKETS 4096
#define VIEW_BUCKETS 1024
#define VIEW_MAX 8192 /* copies a view holds before it starts over */

/* A fetched token: immutable, shared by the table's entry and the views
 * that took it, each holding one reference (the value is not copied per
 * worker: at 1,000 pods those copies were half a MiB per worker). Only
 * taking a reference (under the table's mutex) and dropping one write the
 * count; a hit through a view reads it and writes nothing. */
struct tok {
    atomic_uint refs;
    long long exp;
    char *key; /* the entry's key, copied: views look the token up by it */
    size_t len;
    char value[];
};

struct entry {
    struct entry *next;
    char *key; /* uid \x1f gsa \x1f quota \x1f kind what; one block with: */
    char *uid, *ns, *pod, *ksa, *gsa, *quota, *what;
    char kind;
    int keep;       /* refreshed while the pod lives, used or not */
    int used;       /* read since the last refresh */
    int inflight;   /* a fetch is running */
    int dead;       /* forgotten while held: the last holder frees it */
    unsigned holders; /* callers using the entry with the lock released */
    struct tok *tok; /* NULL until the first fetch succeeds */
    long long refresh_at;
    unsigned fails; /* consecutive failed refreshes */
};

struct wisp_md_cache {
    struct wisp_md_cache_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t done;    /* a fetch finished */
    pthread_cond_t wake;    /* the refresher has work */
    struct entry *buckets[NBUCKETS];
    size_t n;
    atomic_uint_fast64_t gen; /* bumped when entries are forgotten */
    pthread_t thread;
    int running, stop;
    unsigned seed;
};

struct vref {
    struct vref *next;
    struct tok *tok; /* one reference */
    long long until;
};

struct wisp_md_cache_view {
    uint64_t gen;
    size_t n;
    struct vref *buckets[VIEW_BUCKETS];
};

static long long now_of(struct wisp_md_cache *c)
{
    return c->cfg.now ? c->cfg.now(c->cfg.ctx) : (long long)time(NULL);
}

/* UID, GSA, quota project, then kind and what, separated by 0x1f. Joined
 * by hand: this runs on every request, where asprintf was 3 % of the
 * server's CPU (bench/metadata). Caller frees. */
static char *key_of(const struct wisp_md_key *k)
{
    const char *part[3] = {k->uid, k->gsa ? k->gsa : "", k->quota ? k->quota : ""};
    size_t len[3], what_len = strlen(k->what), total = 1 + what_len;
    for (int i = 0; i < 3; i++) {
        len[i] = strlen(part[i]);
        total += len[i] + 1;
    }
    char *key = wisp_xmalloc(total + 1), *p = key;
    for (int i = 0; i < 3; i++) {
        memcpy(p, part[i], len[i]);
        p += len[i];
        *p++ = '\x1f';
    }
    *p++ = k->kind;
    memcpy(p, k->what, what_len + 1);
    return key;
}

/* When to refresh a token expiring at exp: refresh_before (plus jitter)
 * ahead, or at half its life when it is short. */
static long long refresh_time(struct wisp_md_cache *c, long long now, long long exp)
{
    long long life = exp - now;
    long long ahead = c->cfg.refresh_before;
    if (c->cfg.jitter)
        ahead += rand_r(&c->seed) % (c->cfg.jitter + 1);
    if (ahead > life / 2)
        ahead = life / 2;
    return exp - ahead;
}

static int usable(struct wisp_md_cache *c, const struct entry *e, long long now)
{
    return e->tok && e->tok->exp - now >= (long long)c->cfg.min_remaining;
}

/* Makes a token with one reference, taking value (a secret) over. */
static struct tok *tok_new(const char *key, char *value, long long exp)
{
    size_t klen = strlen(key), vlen = strlen(value);
    struct tok *t = wisp_xmalloc(sizeof(*t) + vlen + 1 + klen + 1);
    atomic_init(&t->refs, 1);
    t->exp = exp;
    t->len = vlen;
    memcpy(t->value, value, vlen + 1);
    t->key = t->value + vlen + 1;
    memcpy(t->key, key, klen + 1);
    wisp_secret_free(value, vlen);
    return t;
}

static struct tok *tok_hold(struct tok *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

/* Drops a reference; the last one wipes the value and frees the token. */
static void tok_drop(struct tok *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        wisp_secret_free(t, sizeof(*t) + t->len);
}

static void entry_free(struct entry *e)
{
    free(e->key); /* and the strings packed with it */
    tok_drop(e->tok);
    free(e);
}

static struct entry **slot_of(struct wisp_md_cache *c, const char *key)
{
    struct entry **pp = &c->buckets[wisp_fnv1a_str(key) % NBUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* A new entry for k; takes key (from key_of) over. */
static struct entry *entry_new(const struct wisp_md_key *k, char *key)
{
    struct entry *e = wisp_xcalloc(1, sizeof(*e));
    const char *src[] = {key, k->uid, k->ns ? k->ns : "", k->pod ? k->pod : "",
                         k->ksa ? k->ksa : "", k->gsa ? k->gsa : "", k->quota ? k->quota : "",
                         k->what};
    char **dst[] = {&e->key, &e->uid, &e->ns, &e->pod, &e->ksa, &e->gsa, &e->quota, &e->what};
    wisp_xpack(sizeof(src) / sizeof(src[0]), src, dst); /* e->key is the block */
    free(key);
    e->kind = k->kind;
    e->keep = k->keep;
    return e;
}

static void unlink_entry(struct wisp_md_cache *c, struct entry *e)
{
    struct entry **pp = slot_of(c, e->key);
    if (*pp == e) {
        *pp = e->next;
        c->n--;
    }
}

/* Runs the upstream call for e with the lock released; stores the result.
 * Returns with the lock held. On failure *err gets the upstream's answer
 * (when err is not NULL). */
static int fetch_locked(struct wisp_md_cache *c, struct entry *e, struct wisp_md_tok *err)
{
    struct wisp_md_key k = {.uid = e->uid, .ns = e->ns, .pod = e->pod, .ksa = e->ksa,
                            .gsa = e->gsa, .quota = e->quota, .kind = e->kind, .what = e->what,
                            .keep = e->keep};
    struct wisp_md_tok t = {0};
    e->inflight = 1;
    pthread_mutex_unlock(&c->mu);
    c->cfg.fetch(c->cfg.ctx, &k, &t);
    pthread_mutex_lock(&c->mu);
    e->inflight = 0;
    long long now = now_of(c);
    int ok = t.value && t.exp - now >= (long long)c->cfg.min_remaining;
    if (ok) {
        tok_drop(e->tok);
        e->tok = tok_new(e->key, t.value, t.exp);
        e->refresh_at = refresh_time(c, now, t.exp);
        e->fails = 0;
        e->used = 0;
    } else {
        if (t.value)
            wisp_secret_free(t.value, 0);
        unsigned backoff = c->cfg.retry_min << (e->fails < 8 ? e->fails : 8);
        if (backoff > c->cfg.retry_max)
            backoff = c->cfg.retry_max;
        e->fails++;
        e->refresh_at = now + backoff;
        if (err) {
            err->status = t.status >= 400 ? t.status : 503;
            snprintf(err->msg, sizeof(err->msg), "%s",
                     t.msg[0] ? t.msg : "the token service returned no usable token");
        }
        wisp_log_warn(SUB, "fetch for pod %s (%s) failed: %d %s", e->uid, e->what, t.status,
                      t.msg);
    }
    pthread_cond_broadcast(&c->done);
    return ok;
}

/* ---- views ---------------------------------------------------------------- */

static void view_clear(struct wisp_md_cache_view *v)
{
    for (size_t i = 0; i < VIEW_BUCKETS; i++) {
        struct vref *x = v->buckets[i];
        while (x) {
            struct vref *next = x->next;
            tok_drop(x->tok);
            free(x);
            x = next;
        }
        v->buckets[i] = NULL;
    }
    v->n = 0;
}

static struct vref **view_slot(struct wisp_md_cache_view *v, const char *key)
{
    struct vref **pp = &v->buckets[wisp_fnv1a_str(key) % VIEW_BUCKETS];
    while (*pp && strcmp((*pp)->tok->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Takes a reference to e's token into the view. Table mutex held. */
static void view_put(struct wisp_md_cache_view *v, const struct entry *e)
{
    if (v->n >= VIEW_MAX)
        view_clear(v); /* many audiences: references are only a fast path */
    struct vref **pp = view_slot(v, e->key);
    struct vref *x = *pp;
    if (!x) {
        x = wisp_xcalloc(1, sizeof(*x));
        *pp = x;
        v->n++;
    } else {
        tok_drop(x->tok);
    }
    x->tok = tok_hold(e->tok);
    x->until = e->refresh_at;
}

struct wisp_md_cache_view *wisp_md_cache_view_new(struct wisp_md_cache *c)
{
    struct wisp_md_cache_view *v = wisp_xcalloc(1, sizeof(*v));
    v->gen = atomic_load(&c->gen);
    return v;
}

void wisp_md_cache_view_free(struct wisp_md_cache_view *v)
{
    if (!v)
        return;
    view_clear(v);
    free(v);
}

/* ---- reads ---------------------------------------------------------------- */

static void answer(struct wisp_md_tok *out, const char *token, long long exp)
{
    out->value = wisp_xstrdup(token);
    out->exp = exp;
    out->status = 200;
}

static void timespec_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void wisp_md_cache_get(struct wisp_md_cache *c, struct wisp_md_cache_view *v,
                       const struct wisp_md_key *k, struct wisp_md_tok *out)
{
    char *key = key_of(k);
    long long now = now_of(c);
    memset(out, 0, sizeof(*out));
    if (v) {
        uint64_t g = atomic_load_explicit(&c->gen, memory_order_acquire);
        if (g != v->gen) {
            view_clear(v);
            v->gen = g;
        }
        struct vref *x = *view_slot(v, key);
        if (x && now < x->until && x->tok->exp - now >= (long long)c->cfg.min_remaining) {
            answer(out, x->tok->value, x->tok->exp);
            free(key);
            return;
        }
    }
    struct timespec deadline;
    timespec_in(&deadline, c->cfg.wait_ms);
    pthread_mutex_lock(&c->mu);
    struct entry **pp = slot_of(c, key);
    struct entry *e = *pp;
    if (!e) {
        if (c->n >= c->cfg.max_entries) {
            /* Full: fetch for this caller alone, without caching. */
            pthread_mutex_unlock(&c->mu);
            c->cfg.fetch(c->cfg.ctx, k, out);
            free(key);
            return;
        }
        e = entry_new(k, key);
        key = NULL;
        *pp = e;
        c->n++;
    }
    e->holders++;
    for (;;) {
        now = now_of(c);
        if (e->dead) {
            out->status = 503;
            snprintf(out->msg, sizeof(out->msg),
                     "GKE Metadata Server encountered an error: the pod's identity changed");
            break;
        }
        if (usable(c, e, now)) {
            e->used = 1;
            answer(out, e->tok->value, e->tok->exp);
            if (v)
                view_put(v, e);
            break;
        }
        if (e->inflight) {
            if (pthread_cond_timedwait(&c->done, &c->mu, &deadline) == ETIMEDOUT) {
                out->status = 504;
                snprintf(out->msg, sizeof(out->msg),
                         "GKE Metadata Server encountered an error: timed out waiting for a "
                         "token");
                break;
            }
            continue;
        }
        if (!fetch_locked(c, e, out)) {
            if (!usable(c, e, now_of(c)))
                break;
            out->status = 0;
            out->msg[0] = '\0';
        }
    }
    if (--e->holders == 0 && e->dead)
        entry_free(e);
    pthread_mutex_unlock(&c->mu);
    free(key);
}

/* ---- writes ---------------------------------------------------------------- */

void wisp_md_cache_prefetch(struct wisp_md_cache *c, const struct wisp_md_key *k)
{
    char *key = key_of(k);
    pthread_mutex_lock(&c->mu);
    struct entry **pp = slot_of(c, key);
    if (!*pp && c->n < c->cfg.max_entries) {
        struct entry *e = entry_new(k, key);
        key = NULL;
        e->refresh_at = 0; /* due now */
        *pp = e;
        c->n++;
        pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->mu);
    free(key);
}

void wisp_md_cache_forget(struct wisp_md_cache *c, const char *uid, const char *gsa,
                          const char *quota)
{
    unsigned dropped = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry **pp = &c->buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            int match = strcmp(e->uid, uid) == 0 &&
                        (!gsa || strcmp(e->gsa, gsa) != 0 || !quota ||
                         strcmp(e->quota, quota) != 0);
            if (!match) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            c->n--;
            dropped++;
            if (e->holders) {
                e->dead = 1; /* its last holder frees it */
                e->next = NULL;
            } else {
                entry_free(e);
            }
        }
    }
    if (dropped) {
        atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
        pthread_cond_broadcast(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
}

unsigned wisp_md_cache_run_due(struct wisp_md_cache *c)
{
    unsigned fetched = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        long long now = now_of(c);
        struct entry *due = NULL;
        for (size_t i = 0; i < NBUCKETS && !due; i++) {
            for (struct entry *e = c->buckets[i]; e; e = e->next) {
                if (!e->inflight && e->refresh_at <= now) {
                    due = e;
                    break;
                }
            }
        }
        if (!due)
            break;
        if (!due->keep && due->tok && !due->used) {
            /* Nobody asked since the last refresh: let it go. */
            unlink_entry(c, due);
            entry_free(due);
            continue;
        }
        due->holders++;
        fetch_locked(c, due, NULL);
        fetched++;
        due->holders--;
        if (due->dead) {
            if (due->holders == 0)
                entry_free(due);
        } else if (!due->tok && due->fails && !due->keep && !due->holders) {
            /* A miss that never worked and nobody keeps: drop it. */
            unlink_entry(c, due);
            entry_free(due);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return fetched;
}

size_t wisp_md_cache_size(struct wisp_md_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* The refresher: runs what is due, then sleeps until the next entry is
 * due (at most a second, so clock steps are noticed). */
static void *refresher(void *arg)
{
    struct wisp_md_cache *c = arg;
    for (;;) {
        wisp_md_cache_run_due(c);
        struct timespec ts;
        timespec_in(&ts, 1000);
        pthread_mutex_lock(&c->mu);
        if (!c->stop)
            pthread_cond_timedwait(&c->wake, &c->mu, &ts);
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
    }
    return NULL;
}

struct wisp_md_cache *wisp_md_cache_new(const struct wisp_md_cache_config *cfg)
{
    struct wisp_md_cache *c = wisp_xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    if (!c->cfg.refresh_before)
        c->cfg.refresh_before = 600;
    if (!c->cfg.retry_min)
        c->cfg.retry_min = 5;
    if (!c->cfg.retry_max)
        c->cfg.retry_max = 60;
    if (!c->cfg.min_remaining)
        c->cfg.min_remaining = 10;
    if (!c->cfg.wait_ms)
        c->cfg.wait_ms = 30000;
    if (!c->cfg.max_entries)
        c->cfg.max_entries = 65536;
    c->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)c;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->done, NULL);
    pthread_cond_init(&c->wake, NULL);
    atomic_init(&c->gen, 1);
    if (cfg->refresher && pthread_create(&c->thread, NULL, refresher, c) == 0)
        c->running = 1;
    return c;
}

void wisp_md_cache_free(struct wisp_md_cache *c)
{
    if (!c)
        return;
    if (c->running) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    pthread_cond_destroy(&c->done);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
