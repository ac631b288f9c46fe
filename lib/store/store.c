/* SPDX-License-Identifier: Apache-2.0 */
/* The backend-neutral half of the store (include/wisp/store.h): picks a
 * backend from the URL, checks every argument and the transaction state in
 * one place, turns list prefixes into byte ranges, and marks a transaction
 * failed after a store error so it can never be committed half-done. It does
 * no I/O itself; lib/store/sqlite.c and lib/store/postgres.c do (see
 * docs/internals/STORE.md). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "store/store_int.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

void wisp_store_doc_free(struct wisp_doc *doc)
{
    if (!doc)
        return;
    WISP_FREE(doc->kind);
    WISP_FREE(doc->name);
    WISP_FREE(doc->body);
    doc->body_len = 0;
    doc->rev = 0;
}

/* ---- Opening ------------------------------------------------------------ */

/* Length of an RFC 3986 scheme followed by "://" at the start of url, or 0.
 * Only "scheme://" counts as a URL, so a plain path such as "a:b.db" stays a
 * path. */
static size_t url_scheme_len(const char *url)
{
    size_t i = 0;
    if (!isalpha((unsigned char)url[0]))
        return 0;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

enum wisp_err wisp_store_open(const char *url, struct wisp_store **out)
{
    const struct wisp_store_ops *ops = &wisp__store_sqlite_ops;
    const char *target = url;
    size_t scheme_len;

    if (!out)
        return WISP_EINVAL;
    *out = NULL;
    if (!url || !*url) {
        wisp_log_err("store", "empty store URL");
        return WISP_EINVAL;
    }
    scheme_len = url_scheme_len(url);
    if (strncmp(url, "sqlite:", 7) == 0) {
        target = url + 7;
    } else if (scheme_len) {
        /* libpq takes the whole URL: user, host (or ?host=/socket/dir),
         * port, database and options such as sslmode. */
        if ((scheme_len == 8 && strncmp(url, "postgres", 8) == 0) ||
            (scheme_len == 10 && strncmp(url, "postgresql", 10) == 0))
            return wisp__store_postgres_ops.open(url, out);
        wisp_log_err("store",
                     "unknown store URL scheme '%.*s'; use sqlite:PATH, a path or "
                     "postgres://...",
                     (int)(scheme_len > 32 ? 32 : scheme_len), url);
        return WISP_EINVAL;
    }
    if (!*target) {
        wisp_log_err("store", "store URL '%s' names no file", url);
        return WISP_EINVAL;
    }
    return ops->open(target, out);
}

void wisp_store_close(struct wisp_store *st)
{
    if (!st)
        return;
    st->ops->close(st);
}

/* ---- Transactions ------------------------------------------------------- */

enum wisp_err wisp_store_begin(struct wisp_store *st, int write, struct wisp_txn **out)
{
    enum wisp_err err;

    if (!out)
        return WISP_EINVAL;
    *out = NULL;
    if (!st)
        return WISP_EINVAL;
    if (st->txn.active) {
        /* A programmer error: the handle's one transaction is still open. */
        wisp_log_err("store", "begin while a transaction is open on the same handle");
        return WISP_EINVAL;
    }
    memset(&st->txn, 0, sizeof(st->txn));
    st->txn.st = st;
    st->txn.write = write ? 1 : 0;
    err = st->ops->begin(st, st->txn.write);
    if (err)
        return err;
    st->txn.active = 1;
    *out = &st->txn;
    return WISP_OK;
}

enum wisp_err wisp_store_commit(struct wisp_txn *txn)
{
    enum wisp_err err;

    if (!txn || !txn->active)
        return WISP_EINVAL;
    if (txn->failed) {
        /* Some statement failed part-way: committing could persist half an
         * operation (a document without its change-log row), so refuse. */
        err = txn->failed;
        txn->st->ops->rollback(txn->st);
    } else {
        err = txn->st->ops->commit(txn->st);
    }
    txn->active = 0;
    return err;
}

void wisp_store_rollback(struct wisp_txn *txn)
{
    if (!txn || !txn->active)
        return;
    txn->st->ops->rollback(txn->st);
    txn->active = 0;
}

/* ---- Argument checks ---------------------------------------------------- */

/* WISP_OK if txn may run an operation (a write one if need_write). */
static enum wisp_err txn_usable(struct wisp_txn *txn, int need_write)
{
    if (!txn || !txn->active)
        return WISP_EINVAL;
    if (txn->failed)
        return txn->failed;
    if (need_write && !txn->write) {
        wisp_log_err("store", "write operation in a read transaction");
        return WISP_EINVAL;
    }
    return WISP_OK;
}

/* Kinds and names are non-empty, bounded, NUL-terminated byte strings. Any
 * other byte is allowed: they only ever travel as bound parameters. */
static enum wisp_err check_ident(const char *s, size_t max)
{
    if (!s || !*s || strnlen(s, max + 1) > max)
        return WISP_EINVAL;
    return WISP_OK;
}

static enum wisp_err check_key(const char *kind, const char *name)
{
    if (check_ident(kind, WISP__STORE_MAX_KIND) || check_ident(name, WISP__STORE_MAX_NAME))
        return WISP_EINVAL;
    return WISP_OK;
}

/* Results that leave the transaction usable; anything else fails it. */
static int is_logical(enum wisp_err err)
{
    return err == WISP_OK || err == WISP_ENOTFOUND || err == WISP_EEXIST || err == WISP_EABORTED ||
           err == WISP_EGONE;
}

static enum wisp_err note(struct wisp_txn *txn, enum wisp_err err)
{
    if (!is_logical(err) && !txn->failed)
        txn->failed = err;
    return err;
}

enum wisp_err wisp__store_check_expect(enum wisp_err found, int64_t cur, int64_t expect_rev)
{
    if (found != WISP_OK && found != WISP_ENOTFOUND)
        return found;
    if (expect_rev == 0)
        return found == WISP_OK ? WISP_EEXIST : WISP_OK;
    if (expect_rev > 0) {
        if (found == WISP_ENOTFOUND)
            return WISP_ENOTFOUND;
        return cur == expect_rev ? WISP_OK : WISP_EABORTED;
    }
    return WISP_OK;
}

/* ---- Operations --------------------------------------------------------- */

enum wisp_err wisp_store_get(struct wisp_txn *txn, const char *kind, const char *name,
                             struct wisp_doc *out)
{
    enum wisp_err err;

    if (!out)
        return WISP_EINVAL;
    memset(out, 0, sizeof(*out));
    err = txn_usable(txn, 0);
    if (err)
        return err;
    if (check_key(kind, name))
        return WISP_EINVAL;
    return note(txn, txn->st->ops->get(txn, kind, name, out));
}

enum wisp_err wisp_store_get_rev(struct wisp_txn *txn, const char *kind, const char *name,
                                 int64_t *rev_out)
{
    enum wisp_err err = txn_usable(txn, 0);

    if (err)
        return err;
    if (check_key(kind, name) || !rev_out)
        return WISP_EINVAL;
    return note(txn, txn->st->ops->get_rev(txn, kind, name, rev_out));
}

int wisp_store_txn_dirty(const struct wisp_txn *txn)
{
    return txn && txn->active && txn->rev != 0;
}

enum wisp_err wisp_store_put(struct wisp_txn *txn, const char *kind, const char *name,
                             const char *body, size_t body_len, int64_t expect_rev,
                             int64_t *rev_out)
{
    enum wisp_err err = txn_usable(txn, 1);

    if (err)
        return err;
    if (check_key(kind, name) || !body || expect_rev < -1)
        return WISP_EINVAL;
    if (body_len > WISP__STORE_MAX_BODY)
        return WISP_ETOOBIG;
    /* Bodies are read back as NUL-terminated text; an embedded NUL would make
     * strlen(body) and body_len disagree, and JSON never contains one. */
    if (memchr(body, '\0', body_len))
        return WISP_EINVAL;
    return note(txn, txn->st->ops->put(txn, kind, name, body, body_len, expect_rev, rev_out));
}

enum wisp_err wisp_store_delete(struct wisp_txn *txn, const char *kind, const char *name,
                                int64_t expect_rev)
{
    enum wisp_err err = txn_usable(txn, 1);

    if (err)
        return err;
    if (check_key(kind, name) || expect_rev < -1 || expect_rev == 0)
        return WISP_EINVAL;
    return note(txn, txn->st->ops->del(txn, kind, name, expect_rev));
}

/* The smallest string greater than every string that starts with prefix:
 * drop trailing 0xff bytes, then add one to the last byte. NULL when there
 * is none (prefix empty or all 0xff), meaning "no upper bound". Caller
 * frees. Byte order is what both SQLite's BINARY collation and PostgreSQL's
 * "C" collation use, so the range matches exactly the names with prefix. */
static char *prefix_successor(const char *prefix)
{
    size_t n = strlen(prefix);
    char *succ;

    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n == 0)
        return NULL;
    succ = wisp_xstrndup(prefix, n);
    succ[n - 1] = (char)((unsigned char)succ[n - 1] + 1);
    return succ;
}

enum wisp_err wisp_store_list(struct wisp_txn *txn, const char *kind, const char *prefix,
                              const char *start_after, size_t limit, wisp_store_list_fn fn,
                              void *ctx, size_t *n_out)
{
    struct wisp__store_range range;
    char *hi = NULL;
    enum wisp_err err;

    if (n_out)
        *n_out = 0;
    err = txn_usable(txn, 0);
    if (err)
        goto out;
    if (check_ident(kind, WISP__STORE_MAX_KIND) || !fn) {
        err = WISP_EINVAL;
        goto out;
    }
    if (!prefix)
        prefix = "";
    if (!start_after)
        start_after = "";

    /* Names starting with prefix are exactly [prefix, successor(prefix)).
     * Paging moves the lower bound up to just past start_after, when that is
     * further along; a start_after at or past the upper bound simply yields an
     * empty range. */
    hi = prefix_successor(prefix);
    if (*start_after && strcmp(start_after, prefix) >= 0) {
        range.lo = start_after;
        range.lo_incl = 0;
    } else {
        range.lo = prefix;
        range.lo_incl = 1;
    }
    range.hi = hi;
    range.limit = (limit == 0 || limit > (size_t)INT64_MAX) ? -1 : (int64_t)limit;
    err = note(txn, txn->st->ops->list(txn, kind, &range, fn, ctx, n_out));
out:
    free(hi);
    return err;
}

enum wisp_err wisp_store_changes(struct wisp_txn *txn, const char *kind, const char *prefix,
                                 int64_t after, size_t limit, wisp_store_change_fn fn, void *ctx,
                                 size_t *n_out)
{
    struct wisp__store_range range = {.lo_incl = 1};
    char *hi = NULL;
    enum wisp_err err;

    if (n_out)
        *n_out = 0;
    err = txn_usable(txn, 0);
    if (err)
        goto out;
    if (check_ident(kind, WISP__STORE_MAX_KIND) || !fn || after < 0) {
        err = WISP_EINVAL;
        goto out;
    }
    range.lo = prefix ? prefix : "";
    hi = prefix_successor(range.lo);
    range.hi = hi;
    range.limit = (limit == 0 || limit > (size_t)INT64_MAX) ? -1 : (int64_t)limit;
    err = note(txn, txn->st->ops->changes(txn, kind, &range, after, fn, ctx, n_out));
out:
    free(hi);
    return err;
}

enum wisp_err wisp_store_write_rev(struct wisp_txn *txn, int64_t *out)
{
    enum wisp_err err = txn_usable(txn, 1);

    if (err)
        return err;
    if (!out)
        return WISP_EINVAL;
    return note(txn, txn->st->ops->write_rev(txn, out));
}

enum wisp_err wisp_store_counter_next(struct wisp_txn *txn, const char *counter, int64_t *out)
{
    enum wisp_err err = txn_usable(txn, 1);

    if (err)
        return err;
    if (check_ident(counter, WISP__STORE_MAX_NAME) || !out)
        return WISP_EINVAL;
    return note(txn, txn->st->ops->counter_next(txn, counter, out));
}

enum wisp_err wisp_store_revision(struct wisp_txn *txn, int64_t *out)
{
    enum wisp_err err = txn_usable(txn, 0);

    if (err)
        return err;
    if (!out)
        return WISP_EINVAL;
    return note(txn, txn->st->ops->revision(txn, out));
}
