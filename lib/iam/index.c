/* SPDX-License-Identifier: Apache-2.0 */
/* The authorization index: one stored policy compiled once into a hash table
 * from member match key to the (sorted) bindings that name it, with every
 * condition parsed. A decision then looks up the caller's few keys instead of
 * walking and re-parsing every member. Immutable once built, so any number
 * of threads may share one; it holds no pointer into the policy JSON. */
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "iam/iam_int.h"

enum cond_state {
    COND_NONE = 0, /* no condition: the binding grants unconditionally */
    COND_OK,       /* parsed into cond */
    COND_INVALID,  /* present but unusable (no expression, does not parse): never grants */
};

struct ibinding {
    char *role;            /* from malloc(); NULL if the binding has no role string */
    struct wisp_cond *cond; /* COND_OK only; owned */
    enum cond_state cond_state;
};

/* One distinct key. post_len 0 marks an empty slot (every key is named by at
 * least one binding). 32-bit offsets keep a slot at 24 bytes; build refuses
 * a policy whose tables would not fit them. */
struct slot {
    uint64_t hash;
    uint32_t key_off, key_len;   /* into keys */
    uint32_t post_off, post_len; /* into postings */
};

struct wisp_iam_index {
    struct ibinding *bindings; /* in policy order */
    size_t n_bindings;
    struct slot *slots; /* mask + 1 of them, open addressing, linear probing */
    size_t mask;
    size_t n_keys;
    char *keys;         /* every distinct key, NUL-terminated, back to back */
    size_t keys_len;
    uint32_t *postings; /* binding indexes, ascending within a key */
    size_t n_postings;
};

/* A (key, binding) pair collected while reading the policy. */
struct pair {
    size_t key_off, key_len; /* into the build arena */
    uint32_t binding;
};

struct builder {
    char *arena;
    size_t arena_len, arena_cap;
    struct pair *pairs;
    size_t n_pairs, pairs_cap;
};

static void push_pair(struct builder *bd, const char *key, size_t len, uint32_t binding)
{
    if (bd->arena_cap - bd->arena_len < len + 1) {
        bd->arena_cap = (bd->arena_cap + len + 1) * 2;
        bd->arena = wisp_xrealloc(bd->arena, bd->arena_cap);
    }
    if (bd->n_pairs == bd->pairs_cap) {
        bd->pairs_cap = bd->pairs_cap ? bd->pairs_cap * 2 : 64;
        bd->pairs = wisp_xrealloc(bd->pairs, bd->pairs_cap * sizeof(*bd->pairs));
    }
    memcpy(bd->arena + bd->arena_len, key, len + 1);
    bd->pairs[bd->n_pairs++] = (struct pair){bd->arena_len, len, binding};
    bd->arena_len += len + 1;
}

static int cmp_pair(const void *a, const void *b, void *arena)
{
    const struct pair *x = a, *y = b;
    const char *base = arena;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(base + x->key_off, base + y->key_off, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return (x->binding > y->binding) - (x->binding < y->binding);
}

static int same_key(const struct builder *bd, const struct pair *a, const struct pair *b)
{
    return a->key_len == b->key_len &&
           memcmp(bd->arena + a->key_off, bd->arena + b->key_off, a->key_len) == 0;
}

/* Reads one binding into ib and its members' keys into bd. */
static void read_binding(const json_t *b, uint32_t idx, struct ibinding *ib, struct builder *bd)
{
    const char *role = json_string_value(json_object_get(b, "role"));
    if (!role)
        return; /* grants nothing, as on the linear path */
    ib->role = wisp_xstrdup(role);
    /* Present means conditional, whatever its shape: a condition the
     * decision cannot evaluate denies (errors deny). */
    const json_t *cond = json_object_get(b, "condition");
    if (cond) {
        const char *expr = json_string_value(json_object_get(cond, "expression"));
        char msg[128];
        ib->cond_state = COND_INVALID;
        if (expr && wisp_cond_parse(expr, &ib->cond, msg, sizeof(msg)) == WISP_OK)
            ib->cond_state = COND_OK;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(b, "members"), i, m) {
        const char *s = json_string_value(m);
        struct wisp_member mem;
        char key[WISP__IAM_KEY_MAX];
        if (!s || wisp_member_parse(s, &mem, NULL, 0) != WISP_OK)
            continue; /* a member that does not parse matches nobody */
        size_t len = wisp__iam_member_key(&mem, key, sizeof(key));
        wisp_member_free(&mem);
        if (len)
            push_pair(bd, key, len, idx);
    }
}

static size_t table_size(size_t n_keys)
{
    size_t n = 8;
    while (n < n_keys * 2) /* load at most 1/2: short probe runs on a miss */
        n *= 2;
    return n;
}

static void insert(struct wisp_iam_index *ix, uint64_t hash, uint32_t key_off, uint32_t key_len,
                   uint32_t post_off, uint32_t post_len)
{
    size_t i = (size_t)hash & ix->mask;
    while (ix->slots[i].post_len)
        i = (i + 1) & ix->mask;
    ix->slots[i] = (struct slot){hash, key_off, key_len, post_off, post_len};
}

struct wisp_iam_index *wisp_iam_index_build(const json_t *policy)
{
    struct builder bd = {0};
    struct wisp_iam_index *ix = wisp_xcalloc(1, sizeof(*ix));
    int ok = 0;
    const json_t *bindings = json_object_get(policy, "bindings");
    size_t n_b = json_array_size(bindings);
    if (n_b >= UINT32_MAX)
        goto out;
    ix->n_bindings = n_b;
    ix->bindings = wisp_xcalloc(n_b ? n_b : 1, sizeof(*ix->bindings));
    for (size_t i = 0; i < n_b; i++)
        read_binding(json_array_get(bindings, i), (uint32_t)i, &ix->bindings[i], &bd);
    if (bd.arena_len >= UINT32_MAX || bd.n_pairs >= UINT32_MAX)
        goto out;
    if (bd.n_pairs)
        qsort_r(bd.pairs, bd.n_pairs, sizeof(*bd.pairs), cmp_pair, bd.arena);

    /* Distinct keys and their postings, duplicates (a member listed twice,
     * or two spellings with one key, in one binding) dropped. */
    size_t n_keys = 0;
    for (size_t i = 0; i < bd.n_pairs; i++)
        n_keys += i == 0 || !same_key(&bd, &bd.pairs[i - 1], &bd.pairs[i]);
    ix->n_keys = n_keys;
    ix->mask = table_size(n_keys) - 1;
    ix->slots = wisp_xcalloc(ix->mask + 1, sizeof(*ix->slots));
    ix->keys = wisp_xmalloc(bd.arena_len ? bd.arena_len : 1);
    ix->postings = wisp_xmalloc((bd.n_pairs ? bd.n_pairs : 1) * sizeof(*ix->postings));
    size_t i = 0;
    while (i < bd.n_pairs) {
        const struct pair *first = &bd.pairs[i];
        const char *key = bd.arena + first->key_off;
        size_t key_off = ix->keys_len, post_off = ix->n_postings;
        memcpy(ix->keys + key_off, key, first->key_len + 1);
        ix->keys_len += first->key_len + 1;
        for (; i < bd.n_pairs; i++) {
            const struct pair *p = &bd.pairs[i];
            if (!same_key(&bd, first, p))
                break;
            if (ix->n_postings > post_off && ix->postings[ix->n_postings - 1] == p->binding)
                continue;
            ix->postings[ix->n_postings++] = p->binding;
        }
        insert(ix, wisp__iam_hash(key, first->key_len), (uint32_t)key_off,
               (uint32_t)first->key_len, (uint32_t)post_off,
               (uint32_t)(ix->n_postings - post_off));
    }
    ok = 1;
out:
    free(bd.arena);
    free(bd.pairs);
    if (!ok) {
        wisp_iam_index_free(ix);
        ix = NULL;
    }
    return ix;
}

void wisp_iam_index_free(struct wisp_iam_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; ix->bindings && i < ix->n_bindings; i++) {
        free(ix->bindings[i].role);
        wisp_cond_free(ix->bindings[i].cond);
    }
    free(ix->bindings);
    free(ix->slots);
    free(ix->keys);
    free(ix->postings);
    free(ix);
}

void wisp_iam_index_stats(const struct wisp_iam_index *ix, struct wisp_iam_index_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!ix)
        return;
    out->n_bindings = ix->n_bindings;
    out->n_keys = ix->n_keys;
    out->n_postings = ix->n_postings;
    out->bytes = sizeof(*ix) + ix->n_bindings * sizeof(*ix->bindings) +
                 (ix->mask + 1) * sizeof(*ix->slots) + ix->keys_len +
                 ix->n_postings * sizeof(*ix->postings);
    for (size_t i = 0; i < ix->n_bindings; i++) {
        if (ix->bindings[i].role)
            out->bytes += strlen(ix->bindings[i].role) + 1;
    }
}

static const struct slot *find(const struct wisp_iam_index *ix, const char *key, size_t len,
                               uint64_t hash)
{
    size_t i = (size_t)hash & ix->mask;
    for (;;) {
        const struct slot *s = &ix->slots[i];
        if (!s->post_len)
            return NULL;
        if (s->hash == hash && s->key_len == len && memcmp(ix->keys + s->key_off, key, len) == 0)
            return s;
        i = (i + 1) & ix->mask;
    }
}

static int binding_grants(const struct ibinding *b, const char *permission,
                          const struct wisp_iam_target *t)
{
    if (!b->role || !wisp__iam_role_grants(t, b->role, permission))
        return 0;
    switch (b->cond_state) {
    case COND_NONE:
        return 1;
    case COND_OK:
        return t->env && wisp_cond_eval(b->cond, t->env) == WISP_COND_TRUE;
    case COND_INVALID:
        return 0;
    }
    return 0;
}

long wisp__iam_index_first_grant(const struct wisp_iam_index *ix,
                                 const struct wisp__iam_keyset *ks, const char *permission,
                                 const struct wisp_iam_target *t, const char **role_out)
{
    /* The lowest granting binding over all keys, so the answer (and the
     * role named in it) is the one the linear walk in policy order finds.
     * Each key's postings ascend, so a key is abandoned at the first
     * binding at or past the best so far. */
    long best = -1;
    for (size_t k = 0; k < ks->n; k++) {
        const struct wisp__iam_key *key = &ks->keys[k];
        const struct slot *s = find(ix, ks->buf + key->off, key->len, key->hash);
        if (!s)
            continue;
        const uint32_t *post = ix->postings + s->post_off;
        for (uint32_t j = 0; j < s->post_len; j++) {
            if (best >= 0 && (long)post[j] >= best)
                break;
            if (binding_grants(&ix->bindings[post[j]], permission, t)) {
                best = (long)post[j];
                break;
            }
        }
    }
    if (best >= 0 && role_out)
        *role_out = ix->bindings[best].role;
    return best;
}
