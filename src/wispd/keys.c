/* SPDX-License-Identifier: Apache-2.0 */
/* Keys wisp holds: the key that signs ID tokens as
 * https://accounts.google.com; one system-managed key per service account
 * for signBlob/signJwt; user-managed service-account keys and their Google
 * key files; and the ring of access-token sealing keys, which a background
 * thread rotates on schedule and reloads when the store changes, together
 * with the list of revoked tokens. All of it lives in the store, so
 * replicas share it. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"
#include "wisp/log.h"
#include "wisp/pki.h"
#include "wisp/url.h"
#include "wispd.h"

/* A fresh 40-hex-digit key ID, as Google's. */
static void new_kid(char kid[41])
{
    unsigned char raw[20];
    RAND_bytes(raw, sizeof(raw));
    for (int i = 0; i < 20; i++)
        snprintf(kid + 2 * i, 3, "%02x", raw[i]);
}

/* Reads key document (kind, name) in txn, creating it when missing if
 * create (txn must then be a write transaction); *kid_out and *pem_out are
 * the caller's (free; pem with wisp_secret_free). */
static enum wisp_err key_doc(struct wisp_txn *txn, const char *kind, const char *name,
                             int create, char **kid_out, char **pem_out)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, kind, name, &doc, NULL);
    if (err == WISP_ENOTFOUND && create) {
        char kid[41];
        new_kid(kid);
        char *pem = wisp_rsa_generate_pem();
        char *cert = NULL;
        if (!pem || wisp_pki_self_signed(pem, name, 3650, &cert) != WISP_OK) {
            if (pem)
                wisp_secret_free(pem, 0);
            return WISP_EIO;
        }
        char *pub = wisp_rsa_public_pem(pem);
        doc = json_pack("{s:s, s:s, s:s, s:s, s:I}", "kid", kid, "privateKeyPem", pem, "certPem",
                        cert, "publicKeyPem", pub ? pub : "", "created", (json_int_t)time(NULL));
        free(pub);
        free(cert);
        wisp_secret_free(pem, 0);
        err = wispd_put_json(txn, kind, name, doc, 0, NULL);
    }
    if (!err) {
        *kid_out = wisp_xstrdup(json_string_value(json_object_get(doc, "kid")));
        *pem_out = wisp_xstrdup(json_string_value(json_object_get(doc, "privateKeyPem")));
    }
    json_decref(doc);
    return err;
}

/* Signing keys as last read, by (kind, name) and document revision:
 * parsing a key document costs a tenth of the signature made with it, and
 * a key document only changes by being deleted and created again, which
 * gives it a new revision. */
#define KEY_CACHE_SLOTS 64

static struct {
    pthread_mutex_t mu;
    struct key_slot {
        char id[320];   /* kind "/" name; "" if free */
        int64_t rev;
        char kid[41];
        char *pem;      /* owned; wiped on eviction */
        uint64_t used;
    } slots[KEY_CACHE_SLOTS];
    uint64_t tick;
} kc = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The kid and PEM of doc (key document kind/name, read in a clean
 * transaction), from the cache when its revision matches. */
static enum wisp_err key_from_doc(const char *kind, const char *name, const struct wisp_doc *doc,
                                  char **kid_out, char **pem_out)
{
    char id[320];
    if ((size_t)snprintf(id, sizeof(id), "%s/%s", kind, name) >= sizeof(id))
        id[0] = '\0';   /* too long to cache: always parsed */
    pthread_mutex_lock(&kc.mu);
    for (int i = 0; id[0] && i < KEY_CACHE_SLOTS; i++) {
        struct key_slot *k = &kc.slots[i];
        if (k->pem && k->rev == doc->rev && strcmp(k->id, id) == 0) {
            k->used = ++kc.tick;
            *kid_out = wisp_xstrdup(k->kid);
            *pem_out = wisp_xstrdup(k->pem);
            pthread_mutex_unlock(&kc.mu);
            return WISP_OK;
        }
    }
    pthread_mutex_unlock(&kc.mu);
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    const char *kid = json_string_value(json_object_get(o, "kid"));
    const char *pem = json_string_value(json_object_get(o, "privateKeyPem"));
    if (!kid || !pem || strlen(kid) >= sizeof(kc.slots[0].kid)) {
        json_decref(o);
        return WISP_ESTORE;
    }
    *kid_out = wisp_xstrdup(kid);
    *pem_out = wisp_xstrdup(pem);
    json_decref(o);
    if (!id[0])
        return WISP_OK;
    char *evicted = NULL;
    pthread_mutex_lock(&kc.mu);
    struct key_slot *victim = &kc.slots[0];
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        struct key_slot *k = &kc.slots[i];
        if (k->pem && strcmp(k->id, id) == 0) {
            victim = k;   /* an older revision of this key, or a racer's copy */
            break;
        }
        if (!k->pem || (victim->pem && k->used < victim->used))
            victim = k;
    }
    evicted = victim->pem;
    snprintf(victim->id, sizeof(victim->id), "%s", id);
    snprintf(victim->kid, sizeof(victim->kid), "%s", *kid_out);
    victim->pem = wisp_xstrdup(*pem_out);
    victim->rev = doc->rev;
    victim->used = ++kc.tick;
    pthread_mutex_unlock(&kc.mu);
    if (evicted)
        wisp_secret_free(evicted, 0);
    return WISP_OK;
}

/* Key document (kind, name) for signing with nothing held: read in a read
 * transaction, which never waits for writers; only a missing key takes the
 * write lock, under which key_doc reads again, so a replica that created
 * it meanwhile is not overridden. */
static enum wisp_err key_load(struct wisp_store *st, const char *kind, const char *name,
                              char **kid_out, char **pem_out)
{
    enum wisp_err err = WISP_ENOTFOUND;
    for (int write = 0; write <= 1 && err == WISP_ENOTFOUND; write++) {
        struct wisp_txn *txn = NULL;
        if ((err = wisp_store_begin(st, write, &txn)))
            break;
        if (write) {
            err = key_doc(txn, kind, name, 1, kid_out, pem_out);
        } else {
            struct wisp_doc doc;
            if (!(err = wisp_store_get(txn, kind, name, &doc))) {
                err = key_from_doc(kind, name, &doc, kid_out, pem_out);
                wisp_store_doc_free(&doc);
            }
        }
        if (err || !write) {
            wisp_store_rollback(txn);
        } else if ((err = wisp_store_commit(txn)) != WISP_OK) {
            free(*kid_out);
            wisp_secret_free(*pem_out, 0);
            *kid_out = *pem_out = NULL;
        }
    }
    return err;
}

enum wisp_err wispd_google_key(struct wisp_txn *txn, char **kid_out, char **pem_out)
{
    return key_doc(txn, "googlekey", "accounts.google.com", 1, kid_out, pem_out);
}

enum wisp_err wispd_sa_system_key(struct wisp_txn *txn, const char *email, char **kid_out,
                                  char **pem_out)
{
    return key_doc(txn, "sasyskey", email, 1, kid_out, pem_out);
}

enum wisp_err wispd_google_key_load(struct wisp_store *st, char **kid_out, char **pem_out)
{
    return key_load(st, "googlekey", "accounts.google.com", kid_out, pem_out);
}

enum wisp_err wispd_sa_system_key_load(struct wisp_store *st, const char *email, char **kid_out,
                                       char **pem_out)
{
    return key_load(st, "sasyskey", email, kid_out, pem_out);
}

/* Publishes the public half of key document (kind, name) as Google does:
 * as an x509 map {kid: PEM certificate} or a JWKS. NULL if there is none. */
json_t *wispd_public_keys(struct wisp_txn *txn, const char *kind, const char *name, int jwks)
{
    json_t *doc = NULL;
    if (wispd_get_json(txn, kind, name, &doc, NULL) != WISP_OK)
        return NULL;
    const char *kid = json_string_value(json_object_get(doc, "kid"));
    json_t *out;
    if (jwks) {
        json_t *jwk = wisp_rsa_public_jwk(
            json_string_value(json_object_get(doc, "publicKeyPem")), kid);
        out = json_pack("{s:[o]}", "keys", jwk ? jwk : json_object());
    } else {
        out = json_pack("{s:O}", kid, json_object_get(doc, "certPem"));
    }
    json_decref(doc);
    return out;
}

/* --- user-managed service-account keys ------------------------------------------ */

void wispd_sa_key_free(struct wispd_sa_key *k)
{
    if (k->private_pem)
        wisp_secret_free(k->private_pem, 0);
    json_decref(k->doc);
    memset(k, 0, sizeof(*k));
}

enum wisp_err wispd_sa_key_generate(const json_t *sa, struct wispd_sa_key *out)
{
    memset(out, 0, sizeof(*out));
    const char *email = json_string_value(json_object_get(sa, "email"));
    const char *project = json_string_value(json_object_get(sa, "projectId"));
    if (!email || !project)
        return WISP_EINVAL;
    new_kid(out->kid);
    char *pub = NULL, *cert = NULL;
    out->private_pem = wisp_rsa_generate_pem();
    if (!out->private_pem || !(pub = wisp_rsa_public_pem(out->private_pem)) ||
        wisp_pki_self_signed(out->private_pem, email, 3650, &cert) != WISP_OK) {
        free(pub);
        wispd_sa_key_free(out);
        return WISP_EIO;
    }
    char name[600];
    snprintf(name, sizeof(name), "projects/%s/serviceAccounts/%s/keys/%s", project, email,
             out->kid);
    /* What the JWT-bearer grant (oauth2.c) reads: the account and the
     * public half, found by the kid a client's assertion names. */
    out->doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "name", name, "email", email,
                         "publicKeyPem", pub, "certPem", cert, "keyType", "USER_MANAGED",
                         "keyOrigin", "GOOGLE_PROVIDED", "keyAlgorithm", "KEY_ALG_RSA_2048",
                         "created", (json_int_t)time(NULL));
    free(pub);
    free(cert);
    return WISP_OK;
}

enum wisp_err wispd_sa_key_store(struct wisp_txn *txn, const struct wispd_sa_key *k)
{
    const char *email = json_string_value(json_object_get(k->doc, "email"));
    enum wisp_err err = wispd_put_json(txn, "sakey", k->kid, k->doc, 0, NULL);
    if (!err) {
        char ix[400];
        snprintf(ix, sizeof(ix), "%s/%s", email, k->kid);
        json_t *o = json_object();
        err = wispd_put_json(txn, "sakeyix", ix, o, -1, NULL);
        json_decref(o);
    }
    return err;
}

char *wispd_sa_key_file(const json_t *sa, const struct wispd_sa_key *k, const char *token_uri)
{
    const char *email = json_string_value(json_object_get(sa, "email"));
    const char *uid = json_string_value(json_object_get(sa, "uniqueId"));
    char *esc = wisp_url_escape(email);
    char *x509 = wisp_xasprintf("https://www.googleapis.com/robot/v1/metadata/x509/%s", esc);
    json_t *file = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
        "project_id", json_string_value(json_object_get(sa, "projectId")), "private_key_id",
        k->kid, "private_key", k->private_pem, "client_email", email, "client_id",
        uid ? uid : "", "auth_uri", "https://accounts.google.com/o/oauth2/auth", "token_uri",
        token_uri, "auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url", x509, "universe_domain", "googleapis.com");
    char *text = json_dumps(file, JSON_INDENT(2));
    json_decref(file);
    free(x509);
    free(esc);
    return text;
}

/* --- the access-token key ring and revoked tokens ---------------------------------- */

/* How often each wispd looks at the store for new keys and revocations, and
 * how long a new key waits before it seals (so every replica has loaded it
 * by then). */
#define REFRESH_SECS 1
#define PUBLISH_SECS 5
#define MAX_KEYS 64

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, started;
    struct wisp_store *st;     /* the refresher's own handle */
    int64_t keys_rev;          /* store revision the ring was loaded at */
    int64_t revoked_rev;       /* ... and the revoked list */
    pthread_rwlock_t revoked_lock;
    json_t *revoked;           /* jti -> exp */
    int64_t next_prune;
} kr = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
        .revoked_lock = PTHREAD_RWLOCK_INITIALIZER};

struct key_list {
    struct wisp_token_key keys[MAX_KEYS];
    struct wisp_token_key_age ages[MAX_KEYS];
    char names[MAX_KEYS][16];
    size_t n;
};

static int collect_token_key(const struct wisp_doc *doc, void *arg)
{
    struct key_list *kl = arg;
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    size_t n = 0;
    unsigned char *k = o ? wisp_b64_decode(json_string_value(json_object_get(o, "key")), &n)
                         : NULL;
    if (k && n == WISP_TOKEN_KEY_LEN && kl->n < MAX_KEYS && strlen(doc->name) < 16) {
        uint32_t kid = (uint32_t)strtoul(doc->name, NULL, 10);
        int64_t nb = (int64_t)json_integer_value(json_object_get(o, "notBefore"));
        kl->keys[kl->n] = (struct wisp_token_key){.kid = kid, .not_before = nb};
        memcpy(kl->keys[kl->n].key, k, n);
        kl->ages[kl->n] = (struct wisp_token_key_age){
            kid, (int64_t)json_integer_value(json_object_get(o, "created")), nb};
        snprintf(kl->names[kl->n], sizeof(kl->names[0]), "%s", doc->name);
        kl->n++;
    }
    if (k)
        wisp_secret_free(k, n ? n : 1);
    json_decref(o);
    return 0;
}

static int any_change(const struct wisp_change *c, void *arg)
{
    (void)c;
    (void)arg;
    return 1;
}

/* Loads the ring from the store if a tokenkey document changed since the
 * last load (or always, when force). */
static enum wisp_err sync_ring(struct wisp_txn *txn, int64_t rev, int force)
{
    size_t n = 0;
    if (!force) {
        enum wisp_err err = wisp_store_changes(txn, "tokenkey", "", kr.keys_rev, 1, any_change,
                                               NULL, &n);
        if (err && err != WISP_EGONE)
            return err;
        if (!err && !n)
            return WISP_OK;
    }
    struct key_list *kl = wisp_xcalloc(1, sizeof(*kl));
    enum wisp_err err = wisp_store_list(txn, "tokenkey", "", NULL, 0, collect_token_key, kl, NULL);
    if (!err && kl->n) {
        wisp_token_keyring_replace(wispd.keyring, kl->keys, kl->n);
        kr.keys_rev = rev;
        wisp_log_debug("keys", "token key ring loaded: %zu keys", kl->n);
    } else if (!err) {
        err = WISP_ENOTFOUND;
    }
    wisp_secret_free(kl, sizeof(*kl));
    return err;
}

static void revoked_put(json_t *set, const char *jti, json_int_t exp)
{
    json_object_set_new(set, jti, json_integer(exp));
}

static int collect_revoked(const struct wisp_doc *doc, void *arg)
{
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    revoked_put(arg, doc->name, json_integer_value(json_object_get(o, "exp")));
    json_decref(o);
    return 0;
}

static int change_revoked(const struct wisp_change *c, void *arg)
{
    if (!c->deleted) {
        json_t *o = json_loadb(c->body, c->body_len, 0, NULL);
        revoked_put(arg, c->name, json_integer_value(json_object_get(o, "exp")));
        json_decref(o);
    }
    return 0;
}

/* Adds revocations written since the last look (by any replica). */
static enum wisp_err sync_revoked(struct wisp_txn *txn, int64_t rev)
{
    json_t *fresh = json_object();
    int full = kr.revoked_rev == 0;
    enum wisp_err err = WISP_OK;
    if (!full) {
        err = wisp_store_changes(txn, "tokenrevoked", "", kr.revoked_rev, 0, change_revoked,
                                 fresh, NULL);
        if (err == WISP_EGONE)
            full = 1;
    }
    if (full) {
        json_object_clear(fresh);
        err = wisp_store_list(txn, "tokenrevoked", "", NULL, 0, collect_revoked, fresh, NULL);
    }
    if (!err) {
        pthread_rwlock_wrlock(&kr.revoked_lock);
        if (!kr.revoked || full) {
            json_decref(kr.revoked);
            kr.revoked = json_incref(fresh);
        } else {
            json_object_update(kr.revoked, fresh);
        }
        pthread_rwlock_unlock(&kr.revoked_lock);
        kr.revoked_rev = rev;
    }
    json_decref(fresh);
    return err;
}

/* Forgets revocations of tokens that have expired anyway, here and in the
 * store (another replica may have done it first). */
static void prune_revoked(int64_t now)
{
    json_t *gone = json_array();
    const char *jti;
    json_t *v;
    void *tmp;
    pthread_rwlock_wrlock(&kr.revoked_lock);
    json_object_foreach_safe(kr.revoked, tmp, jti, v) {
        if (json_integer_value(v) + WISP_TOKEN_LEEWAY < now) {
            json_array_append_new(gone, json_string(jti));
            json_object_del(kr.revoked, jti);
        }
    }
    pthread_rwlock_unlock(&kr.revoked_lock);
    struct wisp_txn *txn = NULL;
    if (json_array_size(gone) && wisp_store_begin(kr.st, 1, &txn) == WISP_OK) {
        size_t i;
        json_array_foreach(gone, i, v) {
            enum wisp_err err = wisp_store_delete(txn, "tokenrevoked", json_string_value(v), -1);
            if (err && err != WISP_ENOTFOUND) {
                wisp_store_rollback(txn);
                txn = NULL;
                break;
            }
        }
        if (txn && wisp_store_commit(txn) != WISP_OK)
            wisp_log_warn("keys", "cannot prune revoked tokens");
    }
    json_decref(gone);
}

int wispd_token_revoked(const char *jti)
{
    if (!jti[0])
        return 0;
    pthread_rwlock_rdlock(&kr.revoked_lock);
    int hit = kr.revoked && json_object_get(kr.revoked, jti) != NULL;
    pthread_rwlock_unlock(&kr.revoked_lock);
    return hit;
}

enum wisp_err wispd_token_revoke(struct wisp_store *st, const char *jti, int64_t exp)
{
    struct wisp_txn *txn = NULL;
    json_t *doc = json_pack("{s:I}", "exp", (json_int_t)exp);
    enum wisp_err err = wisp_store_begin(st, 1, &txn);
    if (!err)
        err = wispd_put_json(txn, "tokenrevoked", jti, doc, -1, NULL);
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    json_decref(doc);
    if (!err) {
        /* This process at once; other replicas at their next refresh. */
        pthread_rwlock_wrlock(&kr.revoked_lock);
        if (!kr.revoked)
            kr.revoked = json_object();
        revoked_put(kr.revoked, jti, exp);
        pthread_rwlock_unlock(&kr.revoked_lock);
    }
    return err;
}

/* Adds a key when the newest is due and drops keys no live token needs. The
 * plan is made in a read transaction and remade under the write lock, so
 * replicas racing here add one key, not several. */
static enum wisp_err rotate(int64_t now)
{
    struct key_list *kl = wisp_xcalloc(1, sizeof(*kl));
    int drop[MAX_KEYS], make_new = 0, any = 0;
    struct wisp_txn *txn = NULL;
    enum wisp_err err = WISP_OK;
    for (int write = 0; write <= 1; write++) {
        kl->n = 0;
        if ((err = wisp_store_begin(kr.st, write, &txn)) ||
            (err = wisp_store_list(txn, "tokenkey", "", NULL, 0, collect_token_key, kl, NULL)))
            goto out;
        wisp_token_rotation_plan(kl->ages, kl->n, now, wispd.token_key_rotation, &make_new,
                                 drop);
        any = make_new;
        for (size_t i = 0; i < kl->n; i++)
            any |= drop[i];
        if (!any)
            goto out;
        if (!write) {
            wisp_store_rollback(txn);
            txn = NULL;
        }
    }
    uint32_t max = 0;
    for (size_t i = 0; i < kl->n && !err; i++) {
        if (kl->ages[i].kid > max)
            max = kl->ages[i].kid;
        if (drop[i]) {
            err = wisp_store_delete(txn, "tokenkey", kl->names[i], -1);
            wisp_log_info("keys", "token key %s retired", kl->names[i]);
        }
    }
    if (!err && make_new) {
        unsigned char key[WISP_TOKEN_KEY_LEN];
        char name[16];
        int64_t delay = wispd.token_key_rotation / 2 < PUBLISH_SECS
                            ? wispd.token_key_rotation / 2 : PUBLISH_SECS;
        if (RAND_bytes(key, sizeof(key)) != 1) {
            err = WISP_EIO;
            goto out;
        }
        char *b = wisp_b64_encode(key, sizeof(key));
        json_t *doc = json_pack("{s:s, s:I, s:I}", "key", b, "created", (json_int_t)now,
                                "notBefore", (json_int_t)(now + delay));
        wisp_secret_free(b, 0);
        OPENSSL_cleanse(key, sizeof(key));
        snprintf(name, sizeof(name), "%08u", max + 1);
        err = wispd_put_json(txn, "tokenkey", name, doc, 0, NULL);
        json_decref(doc);
        wisp_log_info("keys", "token key %s added; it seals from %lld", name,
                      (long long)(now + delay));
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
out:
    wisp_store_rollback(txn);
    wisp_secret_free(kl, sizeof(*kl));
    return err;
}

/* One pass: rotate if due, then load what changed. */
static enum wisp_err refresh(int force)
{
    int64_t now = (int64_t)time(NULL);
    enum wisp_err err = rotate(now);
    if (err && err != WISP_EBUSY)
        wisp_log_warn("keys", "token key rotation: %s", wisp_strerror(err));
    struct wisp_txn *txn = NULL;
    int64_t rev = 0;
    err = wisp_store_begin(kr.st, 0, &txn);
    if (!err)
        err = wisp_store_revision(txn, &rev);
    if (!err)
        err = sync_ring(txn, rev, force);
    if (!err)
        err = sync_revoked(txn, rev);
    wisp_store_rollback(txn);
    if (!err && now >= kr.next_prune) {
        prune_revoked(now);
        kr.next_prune = now + 60;
    }
    return err;
}

static void *refresher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&kr.mu);
    while (!kr.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += REFRESH_SECS;
        while (!kr.stop && pthread_cond_timedwait(&kr.cv, &kr.mu, &until) != ETIMEDOUT)
            ;
        if (kr.stop)
            break;
        pthread_mutex_unlock(&kr.mu);
        enum wisp_err err = refresh(0);
        if (err && err != WISP_EBUSY)
            wisp_log_warn("keys", "token key refresh: %s", wisp_strerror(err));
        pthread_mutex_lock(&kr.mu);
    }
    pthread_mutex_unlock(&kr.mu);
    return NULL;
}

int wispd_keys_start(void)
{
    if (wisp_store_open(wispd.store_url, &kr.st) != WISP_OK)
        return -1;
    if (refresh(1) != WISP_OK) {
        wisp_log_err("keys", "no token key could be loaded");
        return -1;
    }
    if (pthread_create(&kr.thread, NULL, refresher, NULL) != 0)
        return -1;
    kr.started = 1;
    return 0;
}

void wispd_keys_stop(void)
{
    if (kr.started) {
        pthread_mutex_lock(&kr.mu);
        kr.stop = 1;
        pthread_cond_signal(&kr.cv);
        pthread_mutex_unlock(&kr.mu);
        pthread_join(kr.thread, NULL);
        kr.started = 0;
    }
    wisp_store_close(kr.st);
    kr.st = NULL;
    json_decref(kr.revoked);
    kr.revoked = NULL;
    pthread_mutex_lock(&kc.mu);
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        if (kc.slots[i].pem)
            wisp_secret_free(kc.slots[i].pem, 0);
        memset(&kc.slots[i], 0, sizeof(kc.slots[i]));
    }
    pthread_mutex_unlock(&kc.mu);
}
