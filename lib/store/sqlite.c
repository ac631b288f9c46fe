/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend of the store (lib/store/store_int.h): one connection per
 * handle in WAL mode with synchronous=FULL, so a commit is on disk before it
 * returns; write transactions take the write lock up front (BEGIN IMMEDIATE);
 * the schema is migrated at open; every statement is prepared once per
 * handle with bound parameters only. It does not check arguments (store.c
 * did) and does not retry: EBUSY goes back to the caller. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "store/store_int.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

/* How long a writer waits for another's write lock before WISP_EBUSY. */
#define BUSY_TIMEOUT_MS 5000
/* Marks a SQLite file as a wisp store ("wisp" in ASCII), so that wisp never
 * migrates, or writes into, some other application's database. */
#define APPLICATION_ID 0x77697370
/* The WAL is truncated back to this size after a checkpoint, so one burst of
 * writes does not leave a large -wal file behind for ever. */
#define JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)
/* Attempts at switching a fresh file to WAL while another connection holds
 * it; switching needs an exclusive lock and may return SQLITE_BUSY. */
#define WAL_SWITCH_TRIES 50

/* ---- Schema ------------------------------------------------------------- */

/* Schema migrations, oldest first: step i takes PRAGMA user_version from i to
 * i + 1, and all pending steps run in one transaction at open. Never edit a
 * step once released; append a new one.
 *
 * documents is an ordinary rowid table with a UNIQUE (kind, name) index, not
 * WITHOUT ROWID: in a WITHOUT ROWID table the whole row, body included, is
 * the B-tree key, so interior pages would carry up to ~1 KB of body per cell
 * and the tree would get deep. The index stays small and a list is an index
 * range scan plus one row lookup per document returned. rev sits before body
 * so reading it never touches a body's overflow pages. */
static const char *const migrations[] = {
    /* 1: documents, the revision, counters and the change log. */
    "CREATE TABLE meta ("
    "  id  INTEGER PRIMARY KEY CHECK (id = 1),"
    "  rev INTEGER NOT NULL CHECK (rev >= 0)"
    ");"
    "INSERT INTO meta (id, rev) VALUES (1, 0);"
    "CREATE TABLE documents ("
    "  id   INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  rev  INTEGER NOT NULL CHECK (rev > 0),"
    "  body TEXT NOT NULL,"
    "  UNIQUE (kind, name)"
    ");"
    "CREATE TABLE counters ("
    "  name  TEXT NOT NULL PRIMARY KEY,"
    "  value INTEGER NOT NULL CHECK (value > 0)"
    ") WITHOUT ROWID;"
    "CREATE TABLE changes ("
    "  rev  INTEGER NOT NULL CHECK (rev > 0),"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  op   TEXT NOT NULL CHECK (op IN ('put', 'delete')),"
    "  PRIMARY KEY (rev, kind, name)"
    ") WITHOUT ROWID;",
    /* 2: the change log carries bodies (a watch event is the object at that
     * revision), and meta records up to which revision it was pruned. */
    "ALTER TABLE changes ADD COLUMN body TEXT;"
    "ALTER TABLE meta ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;",
};
#define N_MIGRATIONS ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- Statements --------------------------------------------------------- */

enum stmt_id {
    S_BEGIN_READ,
    S_BEGIN_WRITE,
    S_COMMIT,
    S_ROLLBACK,
    S_REVISION,
    S_TAKE_REV,
    S_GET,
    S_GET_REV,
    S_UPSERT,
    S_DELETE,
    S_LOG_CHANGE,
    S_PRUNE_CHANGES,
    S_SET_COMPACTED,
    S_COMPACTED,
    S_CHANGES,
    S_COUNTER_NEXT,
    S_LIST_GE,
    S_LIST_GT,
    S_LIST_GE_LT,
    S_LIST_GT_LT,
    N_STMT
};

/* Every value is a bound parameter; nothing from a caller is ever pasted
 * into SQL (SECURITY.md D44). Names compare with SQLite's default BINARY
 * collation, which is memcmp(): the byte order store.h promises. The list
 * statements all bind ?1 kind, ?2 lower bound, ?3 upper bound (unused by two
 * of them) and ?4 limit, and differ only in the comparisons, because one
 * "AND (?3 IS NULL OR name < ?3)" would stop SQLite from using the upper
 * bound to end the index scan. */
static const char *const stmt_sql[N_STMT] = {
    [S_BEGIN_READ] = "BEGIN DEFERRED",
    [S_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_REVISION] = "SELECT rev FROM meta WHERE id = 1",
    [S_TAKE_REV] = "UPDATE meta SET rev = rev + 1 WHERE id = 1 RETURNING rev",
    [S_GET] = "SELECT rev, body FROM documents WHERE kind = ?1 AND name = ?2",
    [S_GET_REV] = "SELECT rev FROM documents WHERE kind = ?1 AND name = ?2",
    [S_UPSERT] = "INSERT INTO documents (kind, name, rev, body) VALUES (?1, ?2, ?3, ?4) "
                 "ON CONFLICT (kind, name) DO UPDATE SET rev = excluded.rev, body = excluded.body",
    [S_DELETE] = "DELETE FROM documents WHERE kind = ?1 AND name = ?2 RETURNING body",
    [S_LOG_CHANGE] = "INSERT INTO changes (rev, kind, name, op, body) VALUES (?1, ?2, ?3, ?4, ?5) "
                     "ON CONFLICT (rev, kind, name) DO UPDATE SET op = excluded.op, "
                     "body = excluded.body",
    [S_PRUNE_CHANGES] = "DELETE FROM changes WHERE rev <= ?1",
    [S_SET_COMPACTED] = "UPDATE meta SET compacted = max(compacted, ?1) WHERE id = 1",
    [S_COMPACTED] = "SELECT compacted FROM meta WHERE id = 1",
    /* The scan follows the primary key from ?1 on; kind and name filter. */
    [S_CHANGES] = "SELECT rev, name, op, body FROM changes WHERE rev > ?1 AND kind = ?2 "
                  "AND name >= ?3 AND (?4 IS NULL OR name < ?4) ORDER BY rev, name LIMIT ?5",
    [S_COUNTER_NEXT] = "INSERT INTO counters (name, value) VALUES (?1, 1) "
                       "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
    [S_LIST_GE] = "SELECT name, rev, body FROM documents WHERE kind = ?1 AND name >= ?2 "
                  "ORDER BY name LIMIT ?4",
    [S_LIST_GT] = "SELECT name, rev, body FROM documents WHERE kind = ?1 AND name > ?2 "
                  "ORDER BY name LIMIT ?4",
    [S_LIST_GE_LT] = "SELECT name, rev, body FROM documents WHERE kind = ?1 AND name >= ?2 "
                     "AND name < ?3 ORDER BY name LIMIT ?4",
    [S_LIST_GT_LT] = "SELECT name, rev, body FROM documents WHERE kind = ?1 AND name > ?2 "
                     "AND name < ?3 ORDER BY name LIMIT ?4",
};

struct sqlite_store {
    struct wisp_store super;    /* first, so store.c's pointer is ours */
    sqlite3 *db;                /* one connection, used by one thread at a time */
    char *path;                 /* file name as opened; from malloc() */
    sqlite3_stmt *stmt[N_STMT]; /* prepared on first use, finalized at close */
};

static struct sqlite_store *from_store(struct wisp_store *st)
{
    return (struct sqlite_store *)st;
}

static struct sqlite_store *from_txn(struct wisp_txn *txn)
{
    return (struct sqlite_store *)txn->st;
}

/* ---- Errors ------------------------------------------------------------- */

static enum wisp_err map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return WISP_EBUSY;
    case SQLITE_NOMEM:
        return WISP_ENOMEM;
    case SQLITE_TOOBIG:
        return WISP_ETOOBIG;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
        return WISP_EIO;
    default:
        /* SQLITE_CORRUPT, SQLITE_NOTADB, an unexpected SQLITE_CONSTRAINT,
         * SQLITE_MISUSE, SQLITE_ERROR: damage or a bug. */
        return WISP_ESTORE;
    }
}

/* Logs what SQLite says about the call that just returned rc and maps it.
 * The message never contains bound values (names or bodies). */
static enum wisp_err db_fail(struct sqlite_store *s, int rc, const char *what)
{
    enum wisp_err err = map_rc(rc);

    if (err == WISP_EBUSY)
        wisp_log_warn("store", "sqlite %s on %s: %s (%d)", what, s->path, sqlite3_errmsg(s->db),
                      rc);
    else
        wisp_log_err("store", "sqlite %s on %s: %s (%d)", what, s->path, sqlite3_errmsg(s->db), rc);
    return err;
}

/* SQLite rolls a transaction back by itself after some errors (SQLITE_FULL,
 * SQLITE_IOERR, SQLITE_BUSY, SQLITE_NOMEM). store.c already refuses to go on
 * after a failure, but should a statement run after such a rollback it would
 * autocommit on its own, so every operation checks first. */
static enum wisp_err txn_alive(struct sqlite_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        return WISP_OK;
    wisp_log_err("store", "transaction on %s is no longer open (rolled back by SQLite)", s->path);
    return WISP_ESTORE;
}

/* ---- Statement helpers -------------------------------------------------- */

/* The cached statement id, prepared on first use. If it is mid-step (a list
 * callback that lists again on the same handle), a private copy is prepared
 * instead and *own_out set, which the caller finalizes. */
static enum wisp_err stmt_get(struct sqlite_store *s, enum stmt_id id, sqlite3_stmt **out,
                              sqlite3_stmt **own_out)
{
    int rc;

    *out = NULL;
    if (own_out)
        *own_out = NULL;
    if (s->stmt[id] && sqlite3_stmt_busy(s->stmt[id]) && own_out) {
        rc = sqlite3_prepare_v2(s->db, stmt_sql[id], -1, own_out, NULL);
        if (rc != SQLITE_OK)
            return db_fail(s, rc, "prepare");
        *out = *own_out;
        return WISP_OK;
    }
    if (!s->stmt[id]) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
                                NULL);
        if (rc != SQLITE_OK)
            return db_fail(s, rc, "prepare");
    }
    *out = s->stmt[id];
    return WISP_OK;
}

/* Ends a use of a statement: resets it (releasing its read of the database)
 * and drops the bindings, which point into the caller's strings. */
static void stmt_done(sqlite3_stmt *stmt)
{
    if (!stmt)
        return;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Binds kind and name to ?1 and ?2. SQLITE_STATIC is right: the statement
 * is stepped and reset before the caller's strings can go away. */
static int bind_key(sqlite3_stmt *stmt, const char *kind, const char *name)
{
    int rc = sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    return rc;
}

/* A text column as a NUL-terminated string; NULL only if SQLite ran out of
 * memory converting it. SQL NULL (never stored by this schema) reads as "". */
static const char *col_text(sqlite3_stmt *stmt, int col, size_t *len_out)
{
    const char *p = (const char *)sqlite3_column_text(stmt, col);

    if (!p && sqlite3_column_type(stmt, col) == SQLITE_NULL)
        p = "";
    /* sqlite3_column_bytes() after _text(), as SQLite's docs require. */
    *len_out = p ? (size_t)sqlite3_column_bytes(stmt, col) : 0;
    return p;
}

/* Runs a statement that returns no rows. */
static enum wisp_err run(struct sqlite_store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *stmt;
    enum wisp_err err = stmt_get(s, id, &stmt, NULL);
    int rc;

    if (err)
        return err;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = db_fail(s, rc, what);
    stmt_done(stmt);
    return err;
}

/* Runs a cached statement expected to return one integer row. */
static enum wisp_err run_int(struct sqlite_store *s, enum stmt_id id, const char *what,
                             int64_t *out)
{
    sqlite3_stmt *stmt;
    enum wisp_err err = stmt_get(s, id, &stmt, NULL);
    int rc;

    if (err)
        return err;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        err = db_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    stmt_done(stmt);
    return err;
}

/* One-off query returning one integer (PRAGMAs at open). */
static enum wisp_err query_int(struct sqlite_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err = WISP_OK;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);

    if (rc != SQLITE_OK) {
        err = db_fail(s, rc, sql);
        goto out;
    }
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        err = db_fail(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
        goto out;
    }
    *out = sqlite3_column_int64(stmt, 0);
out:
    sqlite3_finalize(stmt);
    return err;
}

/* sqlite3_exec() for fixed SQL (no parameters): pragmas and migrations. */
static enum wisp_err exec(struct sqlite_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return db_fail(s, rc, what);
    return WISP_OK;
}

/* ---- Open, configure, migrate ------------------------------------------- */

static void free_handle(struct sqlite_store *s)
{
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* close_v2 frees the connection even if something were still pending. */
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* WAL lets readers proceed during a write and makes a commit one append plus
 * one fsync. Changing the journal mode needs an exclusive lock, which a
 * fresh file being opened by several handles at once may not give at once. */
static enum wisp_err set_wal(struct sqlite_store *s)
{
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err = WISP_OK;
    const char *mode;
    int rc = SQLITE_BUSY;

    for (int i = 0; i < WAL_SWITCH_TRIES && (rc & 0xff) == SQLITE_BUSY; i++) {
        if (i > 0)
            sqlite3_sleep(100);
        sqlite3_finalize(stmt);
        stmt = NULL;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(stmt);
    }
    if (rc != SQLITE_ROW) {
        err = db_fail(s, rc, "PRAGMA journal_mode = WAL");
        goto out;
    }
    mode = (const char *)sqlite3_column_text(stmt, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        /* E.g. a file system without shared memory: refuse rather than run
         * with other locking and durability than documented. */
        wisp_log_err("store", "%s: cannot use WAL mode (journal mode is %s)", s->path,
                     mode ? mode : "unknown");
        err = WISP_EIO;
    }
out:
    sqlite3_finalize(stmt);
    return err;
}

static enum wisp_err configure(struct sqlite_store *s)
{
    enum wisp_err err;
    int64_t sync = -1;
    char sql[128];

    /* Waits for another connection's lock up to 5 s, including in BEGIN
     * IMMEDIATE, before SQLITE_BUSY. */
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* Hardening: no writable_schema tricks or other ways for SQL to corrupt
     * the file, and no SQL functions run from a schema we did not write. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);

    err = set_wal(s);
    if (err)
        return err;
    /* FULL: in WAL mode the WAL is fsynced at every commit, so a commit
     * survives power loss, not only kill -9 (NORMAL would lose the last
     * commits on power loss). foreign_keys is per connection and off by
     * default; later migrations may rely on it. */
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
             "PRAGMA journal_size_limit = %d;",
             JOURNAL_SIZE_LIMIT);
    err = exec(s, sql, "configure");
    if (err)
        return err;
    err = query_int(s, "PRAGMA synchronous", &sync);
    if (err)
        return err;
    if (sync != 2) {
        wisp_log_err("store", "%s: PRAGMA synchronous is %lld, not FULL", s->path, (long long)sync);
        return WISP_ESTORE;
    }
    return WISP_OK;
}

/* Is the file at user_version 0 empty, i.e. ours to create a schema in? */
static enum wisp_err check_empty(struct sqlite_store *s)
{
    int64_t n = 0;
    enum wisp_err err = query_int(s, "SELECT count(*) FROM sqlite_schema", &n);

    if (err)
        return err;
    if (n != 0) {
        wisp_log_err("store", "%s is a SQLite database but not a wisp store; refusing to use it",
                     s->path);
        return WISP_ESTORE;
    }
    return WISP_OK;
}

static enum wisp_err check_version(struct sqlite_store *s, int64_t version)
{
    int64_t app = 0;
    enum wisp_err err;

    if (version < 0 || version > N_MIGRATIONS) {
        wisp_log_err("store",
                     "%s has schema version %lld, newer than this wisp knows (%lld); "
                     "refusing to open it: upgrade wisp",
                     s->path, (long long)version, (long long)N_MIGRATIONS);
        return WISP_EPRECOND;
    }
    if (version == 0)
        return WISP_OK;
    err = query_int(s, "PRAGMA application_id", &app);
    if (err)
        return err;
    if (app != APPLICATION_ID) {
        wisp_log_err("store", "%s is a SQLite database but not a wisp store (application_id %lld)",
                     s->path, (long long)app);
        return WISP_ESTORE;
    }
    return WISP_OK;
}

/* Brings the schema to N_MIGRATIONS in one write transaction, so a crash
 * mid-way leaves the old version and a concurrent opener waits and then
 * finds nothing left to do. */
static enum wisp_err migrate(struct sqlite_store *s)
{
    enum wisp_err err;
    int64_t version = -1;
    char sql[96];

    err = query_int(s, "PRAGMA user_version", &version);
    if (err)
        return err;
    err = check_version(s, version);
    if (err || version == N_MIGRATIONS)
        return err;

    err = exec(s, "BEGIN IMMEDIATE", "begin migration");
    if (err)
        return err;
    /* Read again under the write lock: another handle may have migrated. */
    err = query_int(s, "PRAGMA user_version", &version);
    if (err)
        goto out;
    err = check_version(s, version);
    if (err)
        goto out;
    if (version == 0) {
        err = check_empty(s);
        if (err)
            goto out;
    }
    for (int64_t v = version; v < N_MIGRATIONS; v++) {
        err = exec(s, migrations[v], "migration");
        if (err)
            goto out;
    }
    if (version < N_MIGRATIONS) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld; PRAGMA application_id = %d;",
                 (long long)N_MIGRATIONS, APPLICATION_ID);
        err = exec(s, sql, "migration");
        if (err)
            goto out;
        wisp_log_info("store", "%s: schema migrated from version %lld to %lld", s->path,
                      (long long)version, (long long)N_MIGRATIONS);
    }
    err = exec(s, "COMMIT", "commit migration");
out:
    if (err && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

static enum wisp_err sqlite_open(const char *target, struct wisp_store **out)
{
    struct sqlite_store *s = NULL;
    enum wisp_err err;
    int rc, fd;

    s = wisp_xcalloc(1, sizeof(*s));
    s->super.ops = &wisp__store_sqlite_ops;
    /* SQLite gives ":memory:", "" and (built with SQLITE_USE_URI, as Debian's
     * is) "file:..." special meanings; "./" makes any relative name a file. */
    s->path = target[0] == '/' ? wisp_xstrdup(target) : wisp_xasprintf("./%s", target);

    /* The store holds signing keys, so create it owner-only: SQLite would use
     * 0644 & ~umask, and its -wal and -shm files copy the main file's mode.
     * O_EXCL never follows a symlink. Any failure other than "exists" is left
     * to sqlite3_open_v2() to report. */
    fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);

    /* NOMUTEX: a handle is used by one thread at a time (store.h), so
     * SQLite's per-connection mutex would be pure cost. */
    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_EXRESCODE,
                         NULL);
    if (rc != SQLITE_OK) {
        err = db_fail(s, rc, "open");
        goto out;
    }
    err = configure(s);
    if (err)
        goto out;
    err = migrate(s);
    if (err)
        goto out;
    *out = &s->super;
    s = NULL;
out:
    if (s)
        free_handle(s);
    return err;
}

/* ---- Transactions ------------------------------------------------------- */

static void sqlite_rollback(struct wisp_store *st)
{
    struct sqlite_store *s = from_store(st);

    /* Already rolled back by SQLite after an error: nothing to undo. */
    if (sqlite3_get_autocommit(s->db))
        return;
    run(s, S_ROLLBACK, "rollback");
}

static void sqlite_close(struct wisp_store *st)
{
    if (st->txn.active) {
        wisp_log_warn("store", "closing a store handle with a transaction open; rolling back");
        sqlite_rollback(st);
        st->txn.active = 0;
    }
    free_handle(from_store(st));
}

static enum wisp_err sqlite_begin(struct wisp_store *st, int write)
{
    struct sqlite_store *s = from_store(st);
    enum wisp_err err;
    int64_t rev;

    if (write)
        return run(s, S_BEGIN_WRITE, "begin immediate");
    err = run(s, S_BEGIN_READ, "begin");
    if (err)
        return err;
    /* A deferred transaction picks its snapshot at its first read; read now
     * so the snapshot is the database as of begin, not of some later get. */
    err = run_int(s, S_REVISION, "read revision", &rev);
    if (err)
        sqlite_rollback(st);
    return err;
}

static enum wisp_err sqlite_commit(struct wisp_store *st)
{
    struct sqlite_store *s = from_store(st);
    enum wisp_err err = txn_alive(s);

    if (err)
        return err;
    err = run(s, S_COMMIT, "commit");
    if (err)
        sqlite_rollback(st);
    return err;
}

/* ---- Documents ---------------------------------------------------------- */

static enum wisp_err sqlite_get(struct wisp_txn *txn, const char *kind, const char *name,
                                struct wisp_doc *out)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err;
    const char *body;
    size_t len;
    int rc;

    err = txn_alive(s);
    if (err)
        goto out;
    err = stmt_get(s, S_GET, &stmt, NULL);
    if (err)
        goto out;
    rc = bind_key(stmt, kind, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        err = WISP_ENOTFOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = db_fail(s, rc, "get");
        goto out;
    }
    body = col_text(stmt, 1, &len);
    if (!body) {
        err = db_fail(s, SQLITE_NOMEM, "get");
        goto out;
    }
    out->kind = wisp_xstrdup(kind);
    out->name = wisp_xstrdup(name);
    out->body = wisp_xstrndup(body, len);
    out->body_len = len;
    out->rev = sqlite3_column_int64(stmt, 0);
out:
    stmt_done(stmt);
    return err;
}

/* The document's current revision into *rev_out, or WISP_ENOTFOUND. */
static enum wisp_err doc_rev(struct sqlite_store *s, const char *kind, const char *name,
                             int64_t *rev_out)
{
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err = stmt_get(s, S_GET_REV, &stmt, NULL);
    int rc;

    if (err)
        return err;
    rc = bind_key(stmt, kind, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *rev_out = sqlite3_column_int64(stmt, 0);
    else if (rc == SQLITE_DONE)
        err = WISP_ENOTFOUND;
    else
        err = db_fail(s, rc, "read revision of document");
    stmt_done(stmt);
    return err;
}

static enum wisp_err sqlite_get_rev(struct wisp_txn *txn, const char *kind, const char *name,
                                    int64_t *rev_out)
{
    struct sqlite_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    return err ? err : doc_rev(s, kind, name, rev_out);
}

/* Takes this transaction's revision on its first write: current + 1. The
 * UPDATE is part of the transaction, so commit persists it and rollback
 * returns it; and as it holds the write lock, no other writer can take the
 * same number. */
static enum wisp_err take_rev(struct sqlite_store *s, struct wisp_txn *txn)
{
    if (txn->rev)
        return WISP_OK;
    return run_int(s, S_TAKE_REV, "take revision", &txn->rev);
}

/* Runs a statement whose only parameter is ?1 = v and that returns no row. */
static enum wisp_err exec_int(struct sqlite_store *s, enum stmt_id id, int64_t v, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err = stmt_get(s, id, &stmt, NULL);
    int rc;

    if (err)
        return err;
    rc = sqlite3_bind_int64(stmt, 1, v);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = db_fail(s, rc, what);
    stmt_done(stmt);
    return err;
}

/* Every 1024th revision drops history older than the kept window, so the
 * log stays bounded without a cost on each write. */
static enum wisp_err prune_changes(struct sqlite_store *s, int64_t rev)
{
    enum wisp_err err = WISP_OK;
    int64_t horizon = rev - WISP_STORE_CHANGES_KEPT;

    if (rev % 1024 != 0 || horizon <= 0)
        return WISP_OK;
    err = exec_int(s, S_PRUNE_CHANGES, horizon, "prune changes");
    if (!err)
        err = exec_int(s, S_SET_COMPACTED, horizon, "prune changes");
    return err;
}

static enum wisp_err log_change(struct sqlite_store *s, int64_t rev, const char *kind,
                                const char *name, const char *op, const char *body,
                                size_t body_len)
{
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err = stmt_get(s, S_LOG_CHANGE, &stmt, NULL);
    int rc;

    if (err)
        return err;
    rc = sqlite3_bind_int64(stmt, 1, rev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 4, op, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text64(stmt, 5, body, body_len, SQLITE_STATIC, SQLITE_UTF8);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        err = db_fail(s, rc, "log change");
    stmt_done(stmt);
    return err ? err : prune_changes(s, rev);
}

static enum wisp_err sqlite_put(struct wisp_txn *txn, const char *kind, const char *name,
                                const char *body, size_t body_len, int64_t expect_rev,
                                int64_t *rev_out)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err;
    int64_t cur = 0;
    int rc;

    err = txn_alive(s);
    if (err)
        goto out;
    /* All checks come before the first change, so a logical refusal
     * (EEXIST, EABORTED, ENOTFOUND) leaves the transaction untouched. */
    err = doc_rev(s, kind, name, &cur);
    err = wisp__store_check_expect(err, cur, expect_rev);
    if (err)
        goto out;
    err = take_rev(s, txn);
    if (err)
        goto out;
    err = stmt_get(s, S_UPSERT, &stmt, NULL);
    if (err)
        goto out;
    rc = bind_key(stmt, kind, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 3, txn->rev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text64(stmt, 4, body, body_len, SQLITE_STATIC, SQLITE_UTF8);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        err = db_fail(s, rc, "put");
        goto out;
    }
    err = log_change(s, txn->rev, kind, name, "put", body, body_len);
    if (err)
        goto out;
    if (rev_out)
        *rev_out = txn->rev;
out:
    stmt_done(stmt);
    return err;
}

static enum wisp_err sqlite_del(struct wisp_txn *txn, const char *kind, const char *name,
                                int64_t expect_rev)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err;
    int64_t cur = 0;
    const char *body = NULL;
    size_t body_len = 0;
    int rc;

    err = txn_alive(s);
    if (err)
        goto out;
    err = doc_rev(s, kind, name, &cur);
    if (err)
        goto out;
    err = wisp__store_check_expect(WISP_OK, cur, expect_rev);
    if (err)
        goto out;
    err = take_rev(s, txn);
    if (err)
        goto out;
    err = stmt_get(s, S_DELETE, &stmt, NULL);
    if (err)
        goto out;
    rc = bind_key(stmt, kind, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW || !(body = col_text(stmt, 0, &body_len))) {
        err = db_fail(s, rc == SQLITE_ROW ? SQLITE_NOMEM : rc, "delete");
        goto out;
    }
    /* The log keeps the body as it was: a watcher's DELETED event shows the
     * object's last state. */
    err = log_change(s, txn->rev, kind, name, "delete", body, body_len);
    if (!err && sqlite3_step(stmt) != SQLITE_DONE)
        err = db_fail(s, SQLITE_CORRUPT, "delete");
out:
    stmt_done(stmt);
    return err;
}

static enum wisp_err sqlite_changes(struct wisp_txn *txn, const char *kind,
                                    const struct wisp__store_range *range, int64_t after,
                                    wisp_store_change_fn fn, void *ctx, size_t *n_out)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL, *own = NULL;
    struct wisp_change c;
    enum wisp_err err;
    int64_t compacted = 0;
    size_t n = 0, len;
    int rc;

    err = txn_alive(s);
    if (!err)
        err = run_int(s, S_COMPACTED, "read compaction", &compacted);
    if (err)
        goto out;
    if (after < compacted) {
        err = WISP_EGONE;
        goto out;
    }
    err = stmt_get(s, S_CHANGES, &stmt, &own);
    if (err)
        goto out;
    rc = sqlite3_bind_int64(stmt, 1, after);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, range->lo, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = range->hi ? sqlite3_bind_text(stmt, 4, range->hi, -1, SQLITE_STATIC)
                       : sqlite3_bind_null(stmt, 4);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 5, range->limit);
    if (rc != SQLITE_OK) {
        err = db_fail(s, rc, "changes");
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *op = (const char *)sqlite3_column_text(stmt, 2);
        c.rev = sqlite3_column_int64(stmt, 0);
        c.name = col_text(stmt, 1, &len);
        /* Rows from before migration 2 have no body; "{}" keeps callers'
         * parsing uniform. */
        if (sqlite3_column_type(stmt, 3) == SQLITE_NULL) {
            c.body = "{}";
            c.body_len = 2;
        } else {
            c.body = col_text(stmt, 3, &c.body_len);
        }
        if (!c.name || !c.body || !op) {
            err = db_fail(s, SQLITE_NOMEM, "changes");
            goto out;
        }
        c.deleted = strcmp(op, "delete") == 0;
        n++;
        if (fn(&c, ctx))
            goto out;
    }
    if (rc != SQLITE_DONE)
        err = db_fail(s, rc, "changes");
out:
    if (n_out)
        *n_out = n;
    if (own)
        sqlite3_finalize(own);
    else
        stmt_done(stmt);
    return err;
}

static enum wisp_err sqlite_list(struct wisp_txn *txn, const char *kind,
                                 const struct wisp__store_range *range, wisp_store_list_fn fn,
                                 void *ctx, size_t *n_out)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL, *own = NULL;
    struct wisp_doc doc;
    enum stmt_id id;
    enum wisp_err err;
    size_t n = 0, len;
    int rc;

    err = txn_alive(s);
    if (err)
        goto out;
    if (range->hi)
        id = range->lo_incl ? S_LIST_GE_LT : S_LIST_GT_LT;
    else
        id = range->lo_incl ? S_LIST_GE : S_LIST_GT;
    err = stmt_get(s, id, &stmt, &own);
    if (err)
        goto out;
    rc = sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, range->lo, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && range->hi)
        rc = sqlite3_bind_text(stmt, 3, range->hi, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, range->limit);
    if (rc != SQLITE_OK) {
        err = db_fail(s, rc, "list");
        goto out;
    }
    /* The doc handed to fn borrows SQLite's row buffers, valid until the
     * next step; kind is the caller's. */
    doc.kind = (char *)kind;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        doc.name = (char *)col_text(stmt, 0, &len);
        doc.rev = sqlite3_column_int64(stmt, 1);
        doc.body = (char *)col_text(stmt, 2, &doc.body_len);
        if (!doc.name || !doc.body) {
            err = db_fail(s, SQLITE_NOMEM, "list");
            goto out;
        }
        n++;
        if (fn(&doc, ctx))
            goto out;
    }
    if (rc != SQLITE_DONE)
        err = db_fail(s, rc, "list");
out:
    if (n_out)
        *n_out = n;
    if (own)
        sqlite3_finalize(own);
    else
        stmt_done(stmt);
    return err;
}

/* ---- Counters and revision ---------------------------------------------- */

static enum wisp_err sqlite_counter_next(struct wisp_txn *txn, const char *counter, int64_t *out)
{
    struct sqlite_store *s = from_txn(txn);
    sqlite3_stmt *stmt = NULL;
    enum wisp_err err;
    int rc;

    err = txn_alive(s);
    if (err)
        goto out;
    err = stmt_get(s, S_COUNTER_NEXT, &stmt, NULL);
    if (err)
        goto out;
    rc = sqlite3_bind_text(stmt, 1, counter, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        err = db_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "counter");
        goto out;
    }
    *out = sqlite3_column_int64(stmt, 0);
out:
    stmt_done(stmt);
    return err;
}

static enum wisp_err sqlite_write_rev(struct wisp_txn *txn, int64_t *out)
{
    struct sqlite_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    if (!err)
        err = take_rev(s, txn);
    if (!err)
        *out = txn->rev;
    return err;
}

static enum wisp_err sqlite_revision(struct wisp_txn *txn, int64_t *out)
{
    struct sqlite_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    if (err)
        return err;
    return run_int(s, S_REVISION, "read revision", out);
}

const struct wisp_store_ops wisp__store_sqlite_ops = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .get = sqlite_get,
    .get_rev = sqlite_get_rev,
    .put = sqlite_put,
    .del = sqlite_del,
    .list = sqlite_list,
    .changes = sqlite_changes,
    .counter_next = sqlite_counter_next,
    .revision = sqlite_revision,
    .write_rev = sqlite_write_rev,
};
