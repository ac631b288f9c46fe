/* SPDX-License-Identifier: Apache-2.0 */
/* The pods of one node, from Kubernetes lists and watches of pods and
 * ServiceAccounts, published as immutable snapshots indexed by pod IP.
 * Readers (HTTP workers) never lock: they announce the epoch they entered
 * in their own slot, and a retired snapshot is freed only once every slot
 * is idle or has entered since (epoch-based reclamation). hostNetwork pods
 * share the node's address and are never indexed: their requests are
 * unknown callers (docs/internals/METADATA.md). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "wisp/metadata.h"

/* A pod as the watch reports it, before joining its ServiceAccount. */
struct rpod {
    char *ns, *name, *uid, *ksa, *ip;
    int host_network, terminal;
};

/* A ServiceAccount's annotations that matter here. */
struct rsa {
    char *ns, *name, *gsa, *quota;
    int principal;
};

struct wisp_md_snap {
    uint64_t gen;
    size_t n;
    struct wisp_md_pod *pods; /* sorted by ip */
    uint64_t retired_at;      /* epoch after which no reader can see it */
    struct wisp_md_snap *next;
};

struct wisp_md_pods {
    pthread_mutex_t mu; /* writers only */
    struct wisp_md_pods_hooks hooks;
    struct rpod *pods;
    size_t npods, cap_pods;
    struct rsa *sas;
    size_t nsas, cap_sas;
    struct wisp_md_pod *live; /* last published identities, sorted by uid */
    size_t nlive;
    _Atomic(struct wisp_md_snap *) cur;
    atomic_uint_fast64_t epoch;
    atomic_uint_fast64_t *slots; /* 0: idle; else the epoch entered */
    unsigned n_slots;
    struct wisp_md_snap *retired;
    uint64_t gen;
};

static char *dup_or_null(const char *s)
{
    return s && s[0] ? wisp_xstrdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* A pod of a snapshot or of the live list (join() made it). */
static void pod_clear(struct wisp_md_pod *p)
{
    free(p->ns); /* and the strings packed with it */
    memset(p, 0, sizeof(*p));
}

static void rpod_clear(struct rpod *p)
{
    free(p->ns); /* and the strings packed with it */
}

static void rsa_clear(struct rsa *s)
{
    free(s->ns);
    free(s->name);
    free(s->gsa);
    free(s->quota);
}

static void snap_free(struct wisp_md_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        pod_clear(&s->pods[i]);
    free(s->pods);
    free(s);
}

static void live_free(struct wisp_md_pod *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pod_clear(&v[i]);
    free(v);
}

static const struct rsa *find_sa(const struct wisp_md_pods *p, const char *ns, const char *name)
{
    for (size_t i = 0; i < p->nsas; i++) {
        if (!strcmp(p->sas[i].ns, ns) && !strcmp(p->sas[i].name, name))
            return &p->sas[i];
    }
    return NULL;
}

static void join(const struct wisp_md_pods *p, const struct rpod *r, struct wisp_md_pod *out)
{
    const struct rsa *sa = find_sa(p, r->ns, r->ksa);
    /* Every pod is in the live list and, with an address, in each
     * snapshot: one block for its strings (out->ns is the block). */
    const char *gsa = sa && sa->gsa && sa->gsa[0] ? sa->gsa : NULL;
    const char *quota = sa && sa->quota && sa->quota[0] ? sa->quota : NULL;
    const char *src[] = {r->ns, r->name, r->uid, r->ksa, r->ip ? r->ip : "", gsa, quota};
    char **dst[] = {&out->ns, &out->name, &out->uid, &out->ksa, &out->ip, &out->gsa,
                    &out->quota};
    wisp_xpack(sizeof(src) / sizeof(src[0]), src, dst);
    out->principal_as_email = sa ? sa->principal : 0;
    out->host_network = r->host_network;
    out->terminal = r->terminal;
}

static int by_ip(const void *a, const void *b)
{
    return strcmp(((const struct wisp_md_pod *)a)->ip, ((const struct wisp_md_pod *)b)->ip);
}

static int by_uid(const void *a, const void *b)
{
    return strcmp(((const struct wisp_md_pod *)a)->uid, ((const struct wisp_md_pod *)b)->uid);
}

/* Frees retired snapshots that no reader can still hold. Writer lock held. */
static void reclaim(struct wisp_md_pods *p)
{
    struct wisp_md_snap **pp = &p->retired;
    while (*pp) {
        struct wisp_md_snap *s = *pp;
        int busy = 0;
        for (unsigned i = 0; i < p->n_slots && !busy; i++) {
            uint64_t e = atomic_load(&p->slots[i]);
            busy = e != 0 && e < s->retired_at;
        }
        if (busy) {
            pp = &s->next;
        } else {
            *pp = s->next;
            snap_free(s);
        }
    }
}

/* Tells the hooks what changed between the last published identities and
 * now: pods gone (deleted or finished) and pods new or re-annotated. */
static void diff(struct wisp_md_pods *p, struct wisp_md_pod *now, size_t n)
{
    size_t i = 0, j = 0;
    while (i < p->nlive || j < n) {
        int c = i == p->nlive ? 1 : j == n ? -1 : strcmp(p->live[i].uid, now[j].uid);
        if (c < 0) {
            if (p->hooks.gone)
                p->hooks.gone(p->hooks.ctx, p->live[i].uid);
            i++;
        } else if (c > 0) {
            if (p->hooks.identity)
                p->hooks.identity(p->hooks.ctx, &now[j]);
            j++;
        } else {
            if (p->hooks.identity &&
                (!same(p->live[i].gsa, now[j].gsa) || !same(p->live[i].quota, now[j].quota)))
                p->hooks.identity(p->hooks.ctx, &now[j]);
            i++;
            j++;
        }
    }
}

/* Builds and publishes a snapshot from the raw tables; retires the old. */
static void publish(struct wisp_md_pods *p)
{
    struct wisp_md_snap *s = wisp_xcalloc(1, sizeof(*s));
    struct wisp_md_pod *live = wisp_xcalloc(p->npods + 1, sizeof(*live));
    size_t nlive = 0;
    s->pods = wisp_xcalloc(p->npods + 1, sizeof(*s->pods));
    for (size_t i = 0; i < p->npods; i++) {
        const struct rpod *r = &p->pods[i];
        if (r->host_network)
            continue;
        if (r->ip && r->ip[0])
            join(p, r, &s->pods[s->n++]);
        if (!r->terminal)
            join(p, r, &live[nlive++]);
    }
    qsort(s->pods, s->n, sizeof(*s->pods), by_ip);
    qsort(live, nlive, sizeof(*live), by_uid);
    s->gen = ++p->gen;
    diff(p, live, nlive);
    live_free(p->live, p->nlive);
    p->live = live;
    p->nlive = nlive;
    struct wisp_md_snap *old = atomic_exchange(&p->cur, s);
    if (old) {
        old->retired_at = atomic_fetch_add(&p->epoch, 1) + 1;
        old->next = p->retired;
        p->retired = old;
    }
    reclaim(p);
}

void wisp_md_pods_reclaim(struct wisp_md_pods *p)
{
    pthread_mutex_lock(&p->mu);
    reclaim(p);
    pthread_mutex_unlock(&p->mu);
}

/* ---- parsing ---------------------------------------------------------------- */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *x = json_object_get(o, a);
    return json_string_value(b ? json_object_get(x, b) : x);
}

static void pod_upsert(struct wisp_md_pods *p, const json_t *obj, int remove)
{
    const char *ns = str_at(obj, "metadata", "namespace");
    const char *name = str_at(obj, "metadata", "name");
    const char *uid = str_at(obj, "metadata", "uid");
    if (!ns || !name || !uid)
        return;
    size_t i;
    for (i = 0; i < p->npods; i++) {
        if (!strcmp(p->pods[i].ns, ns) && !strcmp(p->pods[i].name, name))
            break;
    }
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *status = json_object_get(obj, "status");
    const char *ip = str_at(status, "podIP", NULL);
    /* When a pod's address becomes known (bench/pods times it). */
    if (!remove && ip && ip[0] && (i == p->npods || !same(p->pods[i].ip, ip)))
        wisp_log_info("pods", "pod %s/%s at %s", ns, name, ip);
    if (i < p->npods) {
        rpod_clear(&p->pods[i]);
        p->pods[i] = p->pods[--p->npods];
    }
    if (remove)
        return;
    const char *ksa = str_at(spec, "serviceAccountName", NULL);
    const char *phase = str_at(status, "phase", NULL);
    if (p->npods == p->cap_pods) {
        p->cap_pods = p->cap_pods ? p->cap_pods * 2 : 64;
        p->pods = wisp_xrealloc(p->pods, p->cap_pods * sizeof(*p->pods));
    }
    struct rpod *r = &p->pods[p->npods++];
    const char *src[] = {ns, name, uid, ksa && ksa[0] ? ksa : "default", ip && ip[0] ? ip : NULL};
    char **dst[] = {&r->ns, &r->name, &r->uid, &r->ksa, &r->ip};
    wisp_xpack(sizeof(src) / sizeof(src[0]), src, dst); /* r->ns is the block */
    r->host_network = json_is_true(json_object_get(spec, "hostNetwork"));
    r->terminal = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

static void sa_upsert(struct wisp_md_pods *p, const json_t *obj, int remove)
{
    const char *ns = str_at(obj, "metadata", "namespace");
    const char *name = str_at(obj, "metadata", "name");
    if (!ns || !name)
        return;
    size_t i;
    for (i = 0; i < p->nsas; i++) {
        if (!strcmp(p->sas[i].ns, ns) && !strcmp(p->sas[i].name, name))
            break;
    }
    if (i < p->nsas) {
        rsa_clear(&p->sas[i]);
        p->sas[i] = p->sas[--p->nsas];
    }
    if (remove)
        return;
    const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
    const char *gsa = str_at(ann, "iam.gke.io/gcp-service-account", NULL);
    const char *quota = str_at(ann, "iam.gke.io/credential-quota-project", NULL);
    const char *principal = str_at(ann, "iam.gke.io/return-principal-id-as-email", NULL);
    if (!gsa && !quota && !principal)
        return; /* a ServiceAccount without annotations needs no record */
    if (p->nsas == p->cap_sas) {
        p->cap_sas = p->cap_sas ? p->cap_sas * 2 : 64;
        p->sas = wisp_xrealloc(p->sas, p->cap_sas * sizeof(*p->sas));
    }
    struct rsa *s = &p->sas[p->nsas++];
    s->ns = wisp_xstrdup(ns);
    s->name = wisp_xstrdup(name);
    s->gsa = dup_or_null(gsa);
    s->quota = dup_or_null(quota);
    s->principal = principal && !strcmp(principal, "true");
}

static void upsert(struct wisp_md_pods *p, char kind, const json_t *obj, int remove)
{
    if (kind == 'p')
        pod_upsert(p, obj, remove);
    else
        sa_upsert(p, obj, remove);
}

static char *rv_of(const json_t *obj)
{
    const char *rv = str_at(obj, "metadata", "resourceVersion");
    return rv ? wisp_xstrdup(rv) : NULL;
}

enum wisp_err wisp_md_pods_list(struct wisp_md_pods *p, char kind, const json_t *list, char **rv)
{
    const json_t *items = json_object_get(list, "items");
    if (!json_is_array(items))
        return WISP_EINVAL;
    pthread_mutex_lock(&p->mu);
    if (kind == 'p') {
        for (size_t i = 0; i < p->npods; i++)
            rpod_clear(&p->pods[i]);
        p->npods = 0;
    } else {
        for (size_t i = 0; i < p->nsas; i++)
            rsa_clear(&p->sas[i]);
        p->nsas = 0;
    }
    size_t i;
    const json_t *o;
    json_array_foreach(items, i, o) upsert(p, kind, o, 0);
    publish(p);
    pthread_mutex_unlock(&p->mu);
    if (rv)
        *rv = rv_of(list);
    return WISP_OK;
}

enum wisp_err wisp_md_pods_event(struct wisp_md_pods *p, char kind, const char *line, size_t len,
                                 char **rv)
{
    enum wisp_err err = WISP_EINVAL;
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const json_t *obj = json_object_get(ev, "object");
    if (rv)
        *rv = NULL;
    if (!type || !json_is_object(obj))
        goto out;
    if (!strcmp(type, "ERROR")) {
        err = json_integer_value(json_object_get(obj, "code")) == 410 ? WISP_EGONE : WISP_EINVAL;
        goto out;
    }
    if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
        pthread_mutex_lock(&p->mu);
        upsert(p, kind, obj, !strcmp(type, "DELETED"));
        publish(p);
        pthread_mutex_unlock(&p->mu);
    } else if (strcmp(type, "BOOKMARK") != 0) {
        goto out;
    }
    if (rv)
        *rv = rv_of(obj);
    err = WISP_OK;
out:
    json_decref(ev);
    return err;
}

/* ---- readers ---------------------------------------------------------------- */

const struct wisp_md_snap *wisp_md_pods_enter(struct wisp_md_pods *p, unsigned slot)
{
    atomic_store(&p->slots[slot], atomic_load(&p->epoch));
    return atomic_load(&p->cur);
}

const struct wisp_md_snap *wisp_md_pods_current(struct wisp_md_pods *p)
{
    return atomic_load(&p->cur);
}

void wisp_md_pods_leave(struct wisp_md_pods *p, unsigned slot)
{
    atomic_store(&p->slots[slot], 0);
}

enum wisp_md_who wisp_md_snap_find(const struct wisp_md_snap *s, const char *ip,
                                   const struct wisp_md_pod **out)
{
    size_t lo = 0, hi = s->n;
    *out = NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->pods[mid].ip, ip) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n || strcmp(s->pods[lo].ip, ip) != 0)
        return WISP_MD_UNKNOWN;
    if (lo + 1 < s->n && strcmp(s->pods[lo + 1].ip, ip) == 0)
        return WISP_MD_AMBIGUOUS;
    if (s->pods[lo].terminal)
        return WISP_MD_ENDED;
    *out = &s->pods[lo];
    return WISP_MD_POD;
}

uint64_t wisp_md_snap_gen(const struct wisp_md_snap *s)
{
    return s->gen;
}

size_t wisp_md_snap_count(const struct wisp_md_snap *s)
{
    return s->n;
}

/* ---- life ---------------------------------------------------------------- */

struct wisp_md_pods *wisp_md_pods_new(unsigned n_slots, const struct wisp_md_pods_hooks *hooks)
{
    struct wisp_md_pods *p = wisp_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    if (hooks)
        p->hooks = *hooks;
    p->n_slots = n_slots;
    p->slots = wisp_xcalloc(n_slots ? n_slots : 1, sizeof(*p->slots));
    for (unsigned i = 0; i < n_slots; i++)
        atomic_init(&p->slots[i], 0);
    atomic_init(&p->epoch, 1);
    atomic_init(&p->cur, NULL);
    pthread_mutex_lock(&p->mu);
    publish(p); /* readers always find a snapshot, empty at first */
    pthread_mutex_unlock(&p->mu);
    return p;
}

void wisp_md_pods_free(struct wisp_md_pods *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->npods; i++)
        rpod_clear(&p->pods[i]);
    free(p->pods);
    for (size_t i = 0; i < p->nsas; i++)
        rsa_clear(&p->sas[i]);
    free(p->sas);
    live_free(p->live, p->nlive);
    struct wisp_md_snap *s = atomic_load(&p->cur);
    if (s)
        snap_free(s);
    while (p->retired) {
        s = p->retired;
        p->retired = s->next;
        snap_free(s);
    }
    free((void *)p->slots);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
