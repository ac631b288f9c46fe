/* SPDX-License-Identifier: Apache-2.0 */
/* The control plane's store: JSON documents named by (kind, name), each
 * stamped with the store-wide revision of the transaction that last wrote it.
 * The revision is a single increasing counter, so it serves as an etag, as a
 * Kubernetes resourceVersion and as the order of watch events. Writes happen
 * in transactions; a put or delete may carry the revision the caller read
 * (compare-and-set), and fails with WISP_EABORTED when another writer got
 * there first. Nothing here is SQLite-specific: lib/store/sqlite.c is one
 * implementation, PostgreSQL another. Every committed write is durable
 * (survives kill -9 of the process) before commit returns. */
#ifndef WISP_STORE_H
#define WISP_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

struct wisp_store;
struct wisp_txn;

/* A document as read. Fields are owned by the doc; free with
 * wisp_store_doc_free(). */
struct wisp_doc {
    char *kind;
    char *name;
    char *body;      /* JSON text, NUL-terminated */
    size_t body_len;
    int64_t rev;     /* revision of the last write; > 0 */
};

void wisp_store_doc_free(struct wisp_doc *doc);

/* Opens (creating if needed, and migrating the schema) the store at url:
 * a path to a SQLite file, "sqlite:PATH", or a PostgreSQL URL
 * ("postgres://..." or "postgresql://...", as libpq takes it). One handle
 * per thread: a handle is not thread-safe, but many handles (threads,
 * processes, wispd replicas) may share one store. Caller closes with wisp_store_close(). */
enum wisp_err wisp_store_open(const char *url, struct wisp_store **out);
void wisp_store_close(struct wisp_store *st);

/* Starts a transaction. write=1 takes the write lock at once (SQLite BEGIN
 * IMMEDIATE), waiting up to the busy timeout (5 s), else WISP_EBUSY. A read
 * transaction sees one consistent snapshot. The txn belongs to st and must
 * end with commit or rollback before st is used for another. */
enum wisp_err wisp_store_begin(struct wisp_store *st, int write, struct wisp_txn **out);
/* Commits and frees txn; on failure the transaction is rolled back. */
enum wisp_err wisp_store_commit(struct wisp_txn *txn);
/* Rolls back and frees txn. NULL is fine. */
void wisp_store_rollback(struct wisp_txn *txn);

/* Reads one document: WISP_OK and *out filled, or WISP_ENOTFOUND. */
enum wisp_err wisp_store_get(struct wisp_txn *txn, const char *kind, const char *name,
                             struct wisp_doc *out);

/* The revision of one document without reading its body: WISP_OK and
 * *rev_out, or WISP_ENOTFOUND. For checking that something derived from a
 * document (a compiled IAM policy) is still current. */
enum wisp_err wisp_store_get_rev(struct wisp_txn *txn, const char *kind, const char *name,
                                 int64_t *rev_out);

/* 1 if txn has written anything. Its reads then see its own uncommitted
 * writes, whose revision a later transaction may reuse after a rollback, so
 * nothing read through it may be cached by revision. */
int wisp_store_txn_dirty(const struct wisp_txn *txn);

/* Writes a document. expect_rev: -1 writes unconditionally; 0 requires that
 * it does not exist (else WISP_EEXIST); > 0 requires the current revision to
 * equal it (else WISP_EABORTED, or WISP_ENOTFOUND if absent). On success the
 * new revision is written to *rev_out (may be NULL). All writes of one
 * transaction share one revision. body is copied. */
enum wisp_err wisp_store_put(struct wisp_txn *txn, const char *kind, const char *name,
                             const char *body, size_t body_len, int64_t expect_rev,
                             int64_t *rev_out);

/* Deletes a document, with expect_rev as in put (0 is not allowed). */
enum wisp_err wisp_store_delete(struct wisp_txn *txn, const char *kind, const char *name,
                                int64_t expect_rev);

/* Calls fn for documents of kind whose name starts with prefix ("" for all)
 * and sorts strictly after start_after (NULL or "" to start at the first), in
 * byte order of name, at most limit of them (0 = no limit). The cost depends
 * on the number returned, not the number stored. fn's doc is borrowed for
 * the call; fn returns non-zero to stop early. *n_out, if not NULL, gets the
 * number passed to fn. */
typedef int (*wisp_store_list_fn)(const struct wisp_doc *doc, void *ctx);
enum wisp_err wisp_store_list(struct wisp_txn *txn, const char *kind, const char *prefix,
                              const char *start_after, size_t limit, wisp_store_list_fn fn,
                              void *ctx, size_t *n_out);

/* Returns the next value of a named counter (1, 2, ...) inside txn, which
 * must be a write transaction. For project numbers, uids and the like. */
enum wisp_err wisp_store_counter_next(struct wisp_txn *txn, const char *counter, int64_t *out);

/* The change feed, for Kubernetes watches: fn gets every write of kind to
 * a name starting with prefix at a revision after `after`, in revision
 * order (by name within one revision), at most limit of them (0 = no
 * limit). body is the document as written, or for a delete as it was
 * before. Borrowed for the call; fn returns non-zero to stop. The store
 * keeps the most recent WISP_STORE_CHANGES_KEPT revisions of history:
 * asking for older ones is WISP_EGONE (start again from a fresh list). */
#define WISP_STORE_CHANGES_KEPT 65536
struct wisp_change {
    int64_t rev;
    const char *name;
    int deleted;
    const char *body;
    size_t body_len;
};
typedef int (*wisp_store_change_fn)(const struct wisp_change *c, void *ctx);
enum wisp_err wisp_store_changes(struct wisp_txn *txn, const char *kind, const char *prefix,
                                 int64_t after, size_t limit, wisp_store_change_fn fn, void *ctx,
                                 size_t *n_out);

/* The revision every write of this write transaction carries (taken now if
 * no write has happened yet), so a document can record its own revision
 * (a Kubernetes object's resourceVersion) before it is written. */
enum wisp_err wisp_store_write_rev(struct wisp_txn *txn, int64_t *out);

/* The store's current revision (0 when empty). */
enum wisp_err wisp_store_revision(struct wisp_txn *txn, int64_t *out);

#endif
