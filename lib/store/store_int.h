/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libwisp: the interface between lib/store/store.c, which checks
 * arguments and transaction state once for every backend, and a backend
 * (lib/store/sqlite.c, lib/store/postgres.c), which only talks to
 * its database. Nothing outside lib/store/ includes this file. */
#ifndef WISP_STORE_INT_H
#define WISP_STORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/store.h"

/* Hard limits, checked by store.c before a backend sees the call, so a name
 * or body from the network cannot make the database allocate without bound.
 * A Kubernetes object is at most 1.5 MiB in etcd; an IAM policy far less. */
#define WISP__STORE_MAX_KIND 256u        /* bytes */
#define WISP__STORE_MAX_NAME 4096u       /* bytes */
#define WISP__STORE_MAX_BODY (16u << 20) /* bytes */

/* A handle runs one transaction at a time, so the transaction lives inside
 * the handle: begin hands out &st->txn and commit/rollback "free" it by
 * marking it inactive. Closing a handle with a transaction open then rolls it
 * back instead of leaking it. */
struct wisp_txn {
    struct wisp_store *st; /* the handle this transaction runs on */
    int active;            /* 1 between begin and commit/rollback */
    int write;             /* 1 if begun with write=1 */
    int64_t rev;           /* revision of this txn's writes; 0 until the first */
    enum wisp_err failed;  /* first store failure; from then on only rollback */
};

/* Backends embed this as the first member of their own handle struct and
 * cast back (h2o's "super" pattern). */
struct wisp_store {
    const struct wisp_store_ops *ops; /* static table of the backend */
    struct wisp_txn txn;              /* the one transaction slot */
};

/* The name range of a list call. store.c turns (prefix, start_after) into
 * plain byte-order bounds so that no backend needs LIKE, escaping or
 * collation rules: every name n returned satisfies
 *     n >= lo (lo_incl) or n > lo (!lo_incl), and n < hi when hi != NULL,
 * and the bounds map onto an index range scan in any B-tree database. */
struct wisp__store_range {
    const char *lo; /* lower bound; "" when unbounded */
    int lo_incl;    /* 1: name >= lo, 0: name > lo */
    const char *hi; /* exclusive upper bound; NULL when unbounded */
    int64_t limit;  /* -1 for no limit */
};

/* What a backend implements. store.c guarantees before each call: pointers
 * are non-NULL, kind/name/body are within the limits above and NUL-free,
 * expect_rev is valid for the operation, the txn is active and not failed,
 * and writes (put, del, counter_next) only reach a write transaction. A
 * backend returns WISP_OK, a "logical" result (WISP_ENOTFOUND, WISP_EEXIST,
 * WISP_EABORTED, WISP_EGONE), which must leave the transaction unchanged, or a failure
 * (WISP_EIO, WISP_EBUSY, WISP_ESTORE, WISP_ETOOBIG, WISP_ENOMEM), after which
 * store.c marks the transaction failed. */
struct wisp_store_ops {
    const char *name; /* "sqlite", for log lines */

    /* Opens target (SQLite: the URL with "sqlite:" removed; PostgreSQL: the
     * whole URL, which libpq parses), sets (*out)->ops. */
    enum wisp_err (*open)(const char *target, struct wisp_store **out);
    /* Rolls back an active transaction (store.c has not), then frees st. */
    void (*close)(struct wisp_store *st);

    /* Starts a transaction; a write one must hold the write lock on return,
     * a read one must have fixed its snapshot. st->txn.write is set. */
    enum wisp_err (*begin)(struct wisp_store *st, int write);
    /* Commits durably; on failure the transaction is rolled back. */
    enum wisp_err (*commit)(struct wisp_store *st);
    void (*rollback)(struct wisp_store *st);

    enum wisp_err (*get)(struct wisp_txn *txn, const char *kind, const char *name,
                         struct wisp_doc *out);
    /* The document's revision only; WISP_ENOTFOUND if absent. */
    enum wisp_err (*get_rev)(struct wisp_txn *txn, const char *kind, const char *name,
                             int64_t *rev_out);
    /* Takes txn->rev (current + 1) on the transaction's first write, writes
     * the document and one change-log row, all at txn->rev. */
    enum wisp_err (*put)(struct wisp_txn *txn, const char *kind, const char *name, const char *body,
                         size_t body_len, int64_t expect_rev, int64_t *rev_out);
    enum wisp_err (*del)(struct wisp_txn *txn, const char *kind, const char *name,
                         int64_t expect_rev);
    enum wisp_err (*list)(struct wisp_txn *txn, const char *kind,
                          const struct wisp__store_range *range, wisp_store_list_fn fn, void *ctx,
                          size_t *n_out);
    /* Changes after `after` within range (its lo is the prefix, always
     * inclusive), and WISP_EGONE when history before `after` was dropped. */
    enum wisp_err (*changes)(struct wisp_txn *txn, const char *kind,
                             const struct wisp__store_range *range, int64_t after,
                             wisp_store_change_fn fn, void *ctx, size_t *n_out);
    enum wisp_err (*counter_next)(struct wisp_txn *txn, const char *counter, int64_t *out);
    enum wisp_err (*revision)(struct wisp_txn *txn, int64_t *out);
    /* Takes txn->rev as put does, if not yet taken, and returns it. */
    enum wisp_err (*write_rev)(struct wisp_txn *txn, int64_t *out);
};

/* The compare-and-set rule of put and delete (store.h), for a backend that
 * holds the write lock, so nothing changes between this check and its
 * write. found is the document lookup's result (WISP_OK or WISP_ENOTFOUND;
 * anything else is returned as it is), cur its revision. */
enum wisp_err wisp__store_check_expect(enum wisp_err found, int64_t cur, int64_t expect_rev);

extern const struct wisp_store_ops wisp__store_sqlite_ops;
extern const struct wisp_store_ops wisp__store_postgres_ops;

#endif
