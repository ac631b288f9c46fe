/* SPDX-License-Identifier: Apache-2.0 */
/* Match keys: a member and a caller are turned into strings such that the
 * member matches the caller exactly when its key is one of the caller's
 * keys. This mirrors lib/iam/member_match.c case by case (the randomized
 * differential test in tests/unit/test_authorize.c holds the two together);
 * members that never match there get no key here. */
#include <string.h>
#include "wisp/alloc.h"
#include "iam/iam_int.h"

static int has(const char *s)
{
    return s && s[0];
}

/* A key under construction in a fixed buffer. A part that does not fit, or
 * an absent part (which never equals anything in the matcher), spoils the
 * key: it is then not built. */
struct kb {
    char *buf;
    size_t cap, len;
    int bad;
};

static void kb_start(struct kb *k, char *buf, size_t cap, enum wisp_member_type type)
{
    k->buf = buf;
    k->cap = cap;
    k->len = 0;
    k->bad = cap < 2;
    if (!k->bad) {
        /* The type goes first so that members of different types never
         * share a key: a Google service account whose email happens to read
         * like a legacy KSA member ("p.svc.id.goog[ns/ksa]") must not match
         * that member. */
        k->buf[k->len++] = (char)('@' + (int)type);
        k->buf[k->len] = '\0';
    }
}

static char lower(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (char)(ch - 'A' + 'a');
    return ch;
}

/* Appends a separator and part s; fold lowercases ASCII letters, the same
 * locale-independent fold the matcher's email comparison uses. */
static void kb_part(struct kb *k, const char *s, int fold)
{
    if (k->bad)
        return;
    if (!has(s)) {
        k->bad = 1;
        return;
    }
    size_t n = strlen(s);
    if (n + 2 > k->cap - k->len) {
        k->bad = 1;
        return;
    }
    k->buf[k->len++] = WISP__IAM_KEY_SEP;
    for (size_t i = 0; i < n; i++)
        k->buf[k->len++] = fold ? lower(s[i]) : s[i];
    k->buf[k->len] = '\0';
}

static size_t kb_done(const struct kb *k)
{
    return k->bad ? 0 : k->len;
}

size_t wisp__iam_member_key(const struct wisp_member *m, char *buf, size_t cap)
{
    struct kb k;
    if (!m)
        return 0;
    kb_start(&k, buf, cap, m->type);
    switch (m->type) {
    case WISP_MEMBER_ALL_USERS:
    case WISP_MEMBER_ALL_AUTHENTICATED_USERS:
        break;
    case WISP_MEMBER_USER:
    case WISP_MEMBER_SERVICE_ACCOUNT:
    case WISP_MEMBER_GROUP:
        kb_part(&k, m->email, 1);
        break;
    case WISP_MEMBER_DOMAIN:
        kb_part(&k, m->domain, 1);
        break;
    case WISP_MEMBER_PROJECT_SA_SET:
        kb_part(&k, m->project_number, 0);
        break;
    case WISP_MEMBER_KSA_LEGACY:
        /* No project number: the legacy form names the pool by ID only. */
        kb_part(&k, m->pool, 0);
        kb_part(&k, m->ns, 0);
        kb_part(&k, m->ksa, 0);
        break;
    case WISP_MEMBER_WI_SUBJECT:
        /* Non-GKE subjects have no ns/ksa and spoil the key: no KSA caller
         * has them. */
        kb_part(&k, m->project_number, 0);
        kb_part(&k, m->pool, 0);
        kb_part(&k, m->ns, 0);
        kb_part(&k, m->ksa, 0);
        break;
    case WISP_MEMBER_WI_KSA_UID:
        kb_part(&k, m->project_number, 0);
        kb_part(&k, m->pool, 0);
        kb_part(&k, m->ksa_uid, 0);
        break;
    case WISP_MEMBER_WI_SET_NAMESPACE:
        kb_part(&k, m->project_number, 0);
        kb_part(&k, m->pool, 0);
        kb_part(&k, m->ns, 0);
        break;
    case WISP_MEMBER_WI_SET_CLUSTER:
        kb_part(&k, m->project_number, 0);
        kb_part(&k, m->pool, 0);
        kb_part(&k, m->cluster_url, 0);
        break;
    case WISP_MEMBER_WI_SET_POOL:
        kb_part(&k, m->project_number, 0);
        kb_part(&k, m->pool, 0);
        break;
    default:
        /* The rest never match (member_match.c): no key. */
        return 0;
    }
    return kb_done(&k);
}

static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t mix_word(uint64_t h, uint64_t w)
{
    w *= 0x87c37b91114253d5ULL;
    w = rotl(w, 31);
    w *= 0x4cf5ad432745937fULL;
    h ^= w;
    return rotl(h, 27) * 5 + 0x52dce729;
}

uint64_t wisp__iam_hash(const char *s, size_t len)
{
    /* Eight bytes a step, murmur3's x64 body and finalizer: keys are
     * 20-200 bytes and a decision hashes a handful of them, so a
     * byte-at-a-time hash would be a visible share of the decision. */
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix_word(h, w);
        s += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h = mix_word(h, w);
    }
    return fmix64(h);
}

/* Adds the key of a member of type t with up to four parts (NULL ends the
 * list; a caller's absent fact is passed as "", which spoils the key, so
 * that it can never shorten one). Written straight into ks->buf: this runs
 * on every decision, so no scratch copy and one strlen per part. */
static void add(struct wisp__iam_keyset *ks, enum wisp_member_type t, int fold, const char *a,
                const char *b, const char *c, const char *d)
{
    const char *parts[] = {a, b, c, d};
    size_t lens[4], n = 0, total = 1;
    for (; n < 4 && parts[n]; n++) {
        lens[n] = strlen(parts[n]);
        if (!lens[n])
            return;
        total += 1 + lens[n];
        if (total >= WISP__IAM_KEY_MAX)
            return; /* longer than any member's key */
    }
    if (ks->n == ks->cap) {
        size_t ncap = ks->cap * 2;
        struct wisp__iam_key *nk = wisp_xmalloc(ncap * sizeof(*nk));
        memcpy(nk, ks->keys, ks->n * sizeof(*nk));
        if (ks->keys != ks->keys_inline)
            free(ks->keys);
        ks->keys = nk;
        ks->cap = ncap;
    }
    if (ks->buf_cap - ks->buf_len < total + 1) {
        size_t ncap = ks->buf_cap * 2 + total + 1;
        char *nb = wisp_xmalloc(ncap);
        memcpy(nb, ks->buf, ks->buf_len);
        if (ks->buf != ks->buf_inline)
            free(ks->buf);
        ks->buf = nb;
        ks->buf_cap = ncap;
    }
    char *out = ks->buf + ks->buf_len;
    size_t len = 0;
    out[len++] = (char)('@' + (int)t); /* as kb_start */
    for (size_t i = 0; i < n; i++) {
        out[len++] = WISP__IAM_KEY_SEP;
        if (fold) {
            for (size_t j = 0; j < lens[i]; j++)
                out[len++] = lower(parts[i][j]);
        } else {
            memcpy(out + len, parts[i], lens[i]);
            len += lens[i];
        }
    }
    out[len] = '\0';
    struct wisp__iam_key *key = &ks->keys[ks->n++];
    key->off = ks->buf_len;
    key->len = len;
    key->hash = wisp__iam_hash(out, len);
    ks->buf_len += len + 1;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

void wisp__iam_keyset_init(struct wisp__iam_keyset *ks, const struct wisp_caller *c)
{
    ks->n = 0;
    ks->cap = sizeof(ks->keys_inline) / sizeof(ks->keys_inline[0]);
    ks->keys = ks->keys_inline;
    ks->buf = ks->buf_inline;
    ks->buf_len = 0;
    ks->buf_cap = sizeof(ks->buf_inline);
    add(ks, WISP_MEMBER_ALL_USERS, 0, NULL, NULL, NULL, NULL);
    if (!c)
        return;
    if (has(c->pool)) {
        /* Federated: email and groups are ignored, as in the matcher. */
        const char *pn = or_empty(c->project_number), *pool = c->pool;
        const char *ns = or_empty(c->ns), *ksa = or_empty(c->ksa);
        add(ks, WISP_MEMBER_KSA_LEGACY, 0, pool, ns, ksa, NULL);
        add(ks, WISP_MEMBER_WI_SUBJECT, 0, pn, pool, ns, ksa);
        add(ks, WISP_MEMBER_WI_KSA_UID, 0, pn, pool, or_empty(c->ksa_uid), NULL);
        add(ks, WISP_MEMBER_WI_SET_NAMESPACE, 0, pn, pool, ns, NULL);
        add(ks, WISP_MEMBER_WI_SET_CLUSTER, 0, pn, pool, or_empty(c->cluster_url), NULL);
        add(ks, WISP_MEMBER_WI_SET_POOL, 0, pn, pool, NULL, NULL);
        return;
    }
    if (!has(c->email))
        return; /* anonymous */
    add(ks, WISP_MEMBER_ALL_AUTHENTICATED_USERS, 0, NULL, NULL, NULL, NULL);
    if (c->is_service_account) {
        add(ks, WISP_MEMBER_SERVICE_ACCOUNT, 1, c->email, NULL, NULL, NULL);
        add(ks, WISP_MEMBER_PROJECT_SA_SET, 0, or_empty(c->project_number), NULL, NULL, NULL);
    } else {
        add(ks, WISP_MEMBER_USER, 1, c->email, NULL, NULL, NULL);
        /* domain: is the text after the last '@', as in the matcher. */
        const char *at = strrchr(c->email, '@');
        if (at)
            add(ks, WISP_MEMBER_DOMAIN, 1, at + 1, NULL, NULL, NULL);
    }
    for (size_t i = 0; c->groups && i < c->n_groups; i++) {
        if (has(c->groups[i]))
            add(ks, WISP_MEMBER_GROUP, 1, c->groups[i], NULL, NULL, NULL);
    }
}

void wisp__iam_keyset_cleanup(struct wisp__iam_keyset *ks)
{
    if (ks->keys != ks->keys_inline)
        free(ks->keys);
    if (ks->buf != ks->buf_inline)
        free(ks->buf);
    ks->keys = ks->keys_inline;
    ks->buf = ks->buf_inline;
    ks->n = ks->buf_len = 0;
}
