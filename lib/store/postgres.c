/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend of the store (lib/store/store_int.h), for several
 * wispd replicas sharing one database: one libpq connection per handle;
 * write transactions lock the one meta row at begin, so writers run one at a
 * time across every connection, as SQLite's BEGIN IMMEDIATE makes them; read
 * transactions are REPEATABLE READ snapshots; commits wait for the WAL flush
 * (synchronous_commit = on). Names are bytea, compared bytewise. */
#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include "store/store_int.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

/* How long a writer waits for another's write lock (the meta row) before
 * WISP_EBUSY, as SQLite's busy timeout. */
#define LOCK_TIMEOUT "5s"
/* A connection attempt gives up after this many seconds (a URL may say
 * otherwise with connect_timeout=). */
#define CONNECT_TIMEOUT "10"
/* Migrations of different processes meet on this advisory lock ("wisp"). */
#define MIGRATION_LOCK 0x77697370
/* Lists and change feeds fetch at most this many rows per round trip, so a
 * large listing never sits in memory whole: bodies are up to 16 MiB. */
#define BATCH 64
/* Type OIDs of bound parameters: pg_type's fixed ids for bytea, int8, text. */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

/* ---- Schema ------------------------------------------------------------- */

/* Step i takes wisp_schema.version from i to i + 1; all pending steps run in
 * one transaction under MIGRATION_LOCK. Never edit a released step; append.
 * The first step is SQLite's steps 1 and 2 together (bodies in the change
 * log, the compaction mark in meta). kind, name and body are bytea: they
 * compare bytewise (the order store.h promises, as SQLite's BINARY) and take
 * any byte, where PostgreSQL's text would refuse invalid UTF-8 that SQLite
 * accepts. */
static const char *const migrations[] = {
    "CREATE TABLE meta ("
    "  id        integer PRIMARY KEY CHECK (id = 1),"
    "  rev       bigint NOT NULL CHECK (rev >= 0),"
    "  compacted bigint NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO meta (id, rev) VALUES (1, 0);"
    "CREATE TABLE documents ("
    "  kind bytea NOT NULL,"
    "  name bytea NOT NULL,"
    "  rev  bigint NOT NULL CHECK (rev > 0),"
    "  body bytea NOT NULL,"
    "  PRIMARY KEY (kind, name)"
    ");"
    "CREATE TABLE counters ("
    "  name  bytea PRIMARY KEY,"
    "  value bigint NOT NULL CHECK (value > 0)"
    ");"
    "CREATE TABLE changes ("
    "  rev  bigint NOT NULL CHECK (rev > 0),"
    "  kind bytea NOT NULL,"
    "  name bytea NOT NULL,"
    "  op   text NOT NULL CHECK (op IN ('put', 'delete')),"
    "  body bytea NOT NULL,"
    "  PRIMARY KEY (rev, kind, name)"
    ");",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- Statements --------------------------------------------------------- */

enum stmt_id {
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
    S_LIST,
    S_LIST_LT,
    N_STMT
};

/* Every value is a bound parameter (SECURITY.md D44). types spells each
 * parameter's type: 'b' bytea, 'i' int8, 't' text. A list's lower bound is
 * always inclusive: "name > x" is "name >= x || 0x00" for byte strings, and
 * that is also how a list resumes after the last name of a batch. */
static const struct {
    const char *sql;
    const char *types;
} stmts[N_STMT] = {
    [S_REVISION] = {"SELECT rev FROM meta WHERE id = 1", ""},
    [S_TAKE_REV] = {"UPDATE meta SET rev = rev + 1 WHERE id = 1 RETURNING rev", ""},
    [S_GET] = {"SELECT rev, body FROM documents WHERE kind = $1 AND name = $2", "bb"},
    [S_GET_REV] = {"SELECT rev FROM documents WHERE kind = $1 AND name = $2", "bb"},
    [S_UPSERT] = {"INSERT INTO documents (kind, name, rev, body) VALUES ($1, $2, $3, $4) "
                  "ON CONFLICT (kind, name) DO UPDATE SET rev = excluded.rev, body = excluded.body",
                  "bbib"},
    [S_DELETE] = {"DELETE FROM documents WHERE kind = $1 AND name = $2 RETURNING body", "bb"},
    [S_LOG_CHANGE] = {"INSERT INTO changes (rev, kind, name, op, body) VALUES ($1, $2, $3, $4, $5) "
                      "ON CONFLICT (rev, kind, name) DO UPDATE SET op = excluded.op, "
                      "body = excluded.body",
                      "ibbtb"},
    [S_PRUNE_CHANGES] = {"DELETE FROM changes WHERE rev <= $1", "i"},
    [S_SET_COMPACTED] = {"UPDATE meta SET compacted = greatest(compacted, $1) WHERE id = 1", "i"},
    [S_COMPACTED] = {"SELECT compacted FROM meta WHERE id = 1", ""},
    /* $2/$3 is where to resume, (after + 1, '') at first; $4/$5 the prefix
     * range, $5 NULL when unbounded. */
    [S_CHANGES] = {"SELECT rev, name, op, body FROM changes WHERE (rev, name) >= ($2, $3) "
                   "AND kind = $1 AND name >= $4 AND ($5::bytea IS NULL OR name < $5) "
                   "ORDER BY rev, name LIMIT $6",
                   "bibbbi"},
    [S_COUNTER_NEXT] = {"INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) "
                        "DO UPDATE SET value = counters.value + 1 RETURNING value",
                        "b"},
    [S_LIST] = {"SELECT name, rev, body FROM documents WHERE kind = $1 AND name >= $2 "
                "ORDER BY name LIMIT $3",
                "bbi"},
    [S_LIST_LT] = {"SELECT name, rev, body FROM documents WHERE kind = $1 AND name >= $2 "
                   "AND name < $4 ORDER BY name LIMIT $3",
                   "bbib"},
};

#define MAX_PARAMS 6

struct pg_store {
    struct wisp_store super; /* first, so store.c's pointer is ours */
    PGconn *conn;            /* one connection, used by one thread at a time */
    char *where;             /* "db@host" for log lines: never the password */
    int prepared[N_STMT];    /* 1 once prepared on this connection */
};

static struct pg_store *from_store(struct wisp_store *st)
{
    return (struct pg_store *)st;
}

static struct pg_store *from_txn(struct wisp_txn *txn)
{
    return (struct pg_store *)txn->st;
}

/* The values of one statement call, all sent in binary format. */
struct args {
    int n;
    const char *v[MAX_PARAMS];
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    uint64_t ints[MAX_PARAMS]; /* big-endian int8 values that v points at */
};

static void arg_bytes(struct args *a, const char *p, size_t len)
{
    a->v[a->n] = p; /* NULL is SQL NULL */
    a->len[a->n] = (int)len;
    a->fmt[a->n] = 1;
    a->n++;
}

static void arg_str(struct args *a, const char *s)
{
    arg_bytes(a, s, s ? strlen(s) : 0);
}

static void arg_int(struct args *a, int64_t v)
{
    a->ints[a->n] = htobe64((uint64_t)v);
    arg_bytes(a, (const char *)&a->ints[a->n], 8);
}

/* ---- Errors ------------------------------------------------------------- */

/* Maps a failed result's SQLSTATE (or a connection failure) to the store's
 * errors. PostgreSQL aborts the transaction on any error, which matches
 * store.c marking it failed. */
static enum wisp_err map_state(struct pg_store *s, const char *state)
{
    if (PQstatus(s->conn) != CONNECTION_OK || !state)
        return WISP_EIO;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
        return WISP_EBUSY; /* serialization, deadlock, lock_timeout, cancel */
    if (strcmp(state, "53200") == 0)
        return WISP_ENOMEM;
    if (strncmp(state, "54", 2) == 0)
        return WISP_ETOOBIG; /* program limit exceeded */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0)
        return WISP_EIO; /* connection, resources (disk full), shutdown, I/O */
    return WISP_ESTORE;
}

/* Logs a failed result and maps it. Only the primary message and SQLSTATE
 * are logged: DETAIL lines may quote key values (names). */
static enum wisp_err db_fail(struct pg_store *s, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    enum wisp_err err = map_state(s, state);
    char line[256];

    snprintf(line, sizeof(line), "%s", msg ? msg : PQerrorMessage(s->conn));
    line[strcspn(line, "\n")] = '\0';
    if (err == WISP_EBUSY)
        wisp_log_warn("store", "postgres %s on %s: %s (%s)", what, s->where, line,
                      state ? state : "-");
    else
        wisp_log_err("store", "postgres %s on %s: %s (%s)", what, s->where, line,
                     state ? state : "-");
    return err;
}

/* A statement must never run outside the caller's transaction (it would
 * autocommit), nor in one PostgreSQL has already aborted. */
static enum wisp_err txn_alive(struct pg_store *s)
{
    if (PQtransactionStatus(s->conn) == PQTRANS_INTRANS)
        return WISP_OK;
    wisp_log_err("store", "transaction on %s is no longer open", s->where);
    return PQstatus(s->conn) == CONNECTION_OK ? WISP_ESTORE : WISP_EIO;
}

/* ---- Statement helpers -------------------------------------------------- */

/* Fixed SQL without parameters (transaction control, settings, migrations);
 * want is the result status that means success. */
static enum wisp_err exec(struct pg_store *s, const char *sql, ExecStatusType want,
                          const char *what)
{
    PGresult *res = PQexec(s->conn, sql);
    enum wisp_err err = WISP_OK;

    if (PQresultStatus(res) != want)
        err = db_fail(s, res, what);
    PQclear(res);
    return err;
}

/* Prepares statement id on this connection the first time it is used. */
static enum wisp_err prepare(struct pg_store *s, enum stmt_id id)
{
    Oid types[MAX_PARAMS];
    char name[16];
    int n = (int)strlen(stmts[id].types);
    PGresult *res;
    enum wisp_err err = WISP_OK;

    if (s->prepared[id])
        return WISP_OK;
    for (int i = 0; i < n; i++)
        types[i] = stmts[id].types[i] == 'i' ? OID_INT8
                   : stmts[id].types[i] == 't' ? OID_TEXT
                                               : OID_BYTEA;
    snprintf(name, sizeof(name), "wisp%d", (int)id);
    res = PQprepare(s->conn, name, stmts[id].sql, n, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        err = db_fail(s, res, "prepare");
    else
        s->prepared[id] = 1;
    PQclear(res);
    return err;
}

/* Runs prepared statement id with a's values, results in binary. On success
 * *out is the result (the caller clears it); on failure NULL. */
static enum wisp_err query(struct pg_store *s, enum stmt_id id, const struct args *a,
                           const char *what, PGresult **out)
{
    char name[16];
    PGresult *res;
    ExecStatusType st;
    enum wisp_err err;

    *out = NULL;
    err = prepare(s, id);
    if (err)
        return err;
    snprintf(name, sizeof(name), "wisp%d", (int)id);
    res = PQexecPrepared(s->conn, name, a ? a->n : 0, a ? a->v : NULL, a ? a->len : NULL,
                         a ? a->fmt : NULL, 1);
    st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        err = db_fail(s, res, what);
        PQclear(res);
        return err;
    }
    *out = res;
    return WISP_OK;
}

/* Runs a statement that returns nothing of interest. */
static enum wisp_err run(struct pg_store *s, enum stmt_id id, const struct args *a,
                         const char *what)
{
    PGresult *res = NULL;
    enum wisp_err err = query(s, id, a, what, &res);

    PQclear(res);
    return err;
}

/* A binary int8 column. */
static int64_t col_int(const PGresult *res, int row, int col)
{
    uint64_t v = 0;

    if (PQgetlength(res, row, col) == 8)
        memcpy(&v, PQgetvalue(res, row, col), 8);
    return (int64_t)be64toh(v);
}

/* Runs a statement that returns one int8 in its first row, else
 * WISP_ENOTFOUND (no row). */
static enum wisp_err query_int(struct pg_store *s, enum stmt_id id, const struct args *a,
                               const char *what, int64_t *out)
{
    PGresult *res = NULL;
    enum wisp_err err = query(s, id, a, what, &res);

    if (err)
        return err;
    if (PQntuples(res) < 1)
        err = WISP_ENOTFOUND;
    else
        *out = col_int(res, 0, 0);
    PQclear(res);
    return err;
}

/* Like query_int where a missing row means damage (meta is one row). */
static enum wisp_err query_meta(struct pg_store *s, enum stmt_id id, const char *what,
                                int64_t *out)
{
    enum wisp_err err = query_int(s, id, NULL, what, out);

    if (err == WISP_ENOTFOUND) {
        wisp_log_err("store", "%s: the meta row is missing", s->where);
        err = WISP_ESTORE;
    }
    return err;
}

/* ---- Open, configure, migrate ------------------------------------------- */

static void free_handle(struct pg_store *s)
{
    PQfinish(s->conn);
    free(s->where);
    free(s);
}

/* Settings that are per session: durability, the wait for the write lock,
 * and quiet NOTICEs. A database or role default of synchronous_commit = off
 * would let commit return before the WAL is flushed, so it is set here and
 * read back, and fsync = off on the server is refused outright. */
static enum wisp_err configure(struct pg_store *s)
{
    PGresult *res;
    enum wisp_err err;

    err = exec(s,
               "SET synchronous_commit = on; SET lock_timeout = '" LOCK_TIMEOUT "';"
               "SET client_min_messages = warning; SET idle_in_transaction_session_timeout = 0",
               PGRES_COMMAND_OK, "configure");
    if (err)
        return err;
    res = PQexec(s->conn, "SELECT current_setting('synchronous_commit'), "
                                    "current_setting('fsync')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        err = db_fail(s, res, "read settings");
    } else if (strcmp(PQgetvalue(res, 0, 0), "on") != 0 ||
               strcmp(PQgetvalue(res, 0, 1), "on") != 0) {
        wisp_log_err("store", "%s: synchronous_commit is %s and fsync %s; both must be on", s->where,
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        err = WISP_ESTORE;
    }
    PQclear(res);
    return err;
}

/* One integer from fixed SQL (the migration checks). */
static enum wisp_err fixed_int(struct pg_store *s, const char *sql, int64_t *out)
{
    PGresult *res = PQexec(s->conn, sql);
    enum wisp_err err = WISP_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        err = db_fail(s, res, "migration check");
    else
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return err;
}

/* Brings the schema to N_MIGRATIONS in one transaction under an advisory
 * lock, so a crash mid-way leaves the old version and replicas starting
 * together migrate once. A database with tables of ours but no wisp_schema
 * is someone else's: refused. */
static enum wisp_err migrate(struct pg_store *s)
{
    enum wisp_err err;
    int64_t have = 0, version = 0;
    char sql[128];

    err = exec(s, "BEGIN", PGRES_COMMAND_OK, "begin migration");
    if (err)
        return err;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK);
    err = exec(s, sql, PGRES_TUPLES_OK, "migration lock");
    if (!err)
        err = fixed_int(s, "SELECT (to_regclass('wisp_schema') IS NOT NULL)::int", &have);
    if (err)
        goto out;
    if (!have) {
        err = fixed_int(s,
                        "SELECT (to_regclass('meta') IS NOT NULL OR to_regclass('documents') "
                        "IS NOT NULL OR to_regclass('changes') IS NOT NULL)::int",
                        &have);
        if (err)
            goto out;
        if (have) {
            wisp_log_err("store", "%s has tables but is not a wisp store; refusing to use it",
                         s->where);
            err = WISP_ESTORE;
            goto out;
        }
        err = exec(s,
                   "CREATE TABLE wisp_schema (id integer PRIMARY KEY CHECK (id = 1), "
                   "version integer NOT NULL); INSERT INTO wisp_schema VALUES (1, 0)",
                   PGRES_COMMAND_OK, "migration");
        if (err)
            goto out;
    }
    err = fixed_int(s, "SELECT version FROM wisp_schema WHERE id = 1", &version);
    if (err)
        goto out;
    if (version < 0 || version > N_MIGRATIONS) {
        wisp_log_err("store",
                     "%s has schema version %lld, newer than this wisp knows (%d); "
                     "refusing to open it: upgrade wisp",
                     s->where, (long long)version, N_MIGRATIONS);
        err = WISP_EPRECOND;
        goto out;
    }
    for (int64_t v = version; v < N_MIGRATIONS; v++) {
        err = exec(s, migrations[v], PGRES_COMMAND_OK, "migration");
        if (err)
            goto out;
    }
    if (version < N_MIGRATIONS) {
        snprintf(sql, sizeof(sql), "UPDATE wisp_schema SET version = %d WHERE id = 1",
                 N_MIGRATIONS);
        err = exec(s, sql, PGRES_COMMAND_OK, "migration");
        if (err)
            goto out;
        wisp_log_info("store", "%s: schema migrated from version %lld to %d", s->where,
                      (long long)version, N_MIGRATIONS);
    }
    err = exec(s, "COMMIT", PGRES_COMMAND_OK, "commit migration");
out:
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return err;
}

static enum wisp_err pg_open(const char *target, struct wisp_store **out)
{
    /* Defaults first: the URL (dbname, expanded) overrides them. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {CONNECT_TIMEOUT, "wisp", target, NULL};
    struct pg_store *s = wisp_xcalloc(1, sizeof(*s));
    enum wisp_err err;

    s->super.ops = &wisp__store_postgres_ops;
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn) {
        err = WISP_ENOMEM;
        goto out;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char line[256];
        snprintf(line, sizeof(line), "%s", PQerrorMessage(s->conn));
        line[strcspn(line, "\n")] = '\0';
        wisp_log_err("store", "cannot connect to PostgreSQL: %s", line);
        err = WISP_EIO;
        goto out;
    }
    s->where = wisp_xasprintf("postgres database %s on %s", PQdb(s->conn), PQhost(s->conn));
    err = configure(s);
    if (!err)
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

static void pg_rollback(struct wisp_store *st)
{
    struct pg_store *s = from_store(st);

    if (PQtransactionStatus(s->conn) == PQTRANS_IDLE)
        return;
    exec(s, "ROLLBACK", PGRES_COMMAND_OK, "rollback");
}

static void pg_close(struct wisp_store *st)
{
    if (st->txn.active) {
        wisp_log_warn("store", "closing a store handle with a transaction open; rolling back");
        pg_rollback(st);
        st->txn.active = 0;
    }
    free_handle(from_store(st));
}

/* A replica outlives restarts of the database server: a connection found
 * broken between transactions is re-established (prepared statements and
 * session settings are per connection, so both are redone). */
static enum wisp_err reconnect(struct pg_store *s)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return WISP_OK;
    wisp_log_warn("store", "%s: connection lost; reconnecting", s->where);
    PQreset(s->conn);
    memset(s->prepared, 0, sizeof(s->prepared));
    if (PQstatus(s->conn) != CONNECTION_OK)
        return db_fail(s, NULL, "reconnect");
    return configure(s);
}

/* write: READ COMMITTED plus the meta row locked FOR UPDATE, so write
 * transactions of every connection run one at a time from begin to commit
 * and each statement sees every commit before it: the CAS check, the
 * revision (current + 1) and the change log are then as serial as SQLite's.
 * SERIALIZABLE is not relied on (SECURITY.md §(b)). read: one REPEATABLE
 * READ snapshot, fixed by the first SELECT rather than by a later get. */
static enum wisp_err pg_begin(struct wisp_store *st, int write)
{
    struct pg_store *s = from_store(st);
    enum wisp_err err = reconnect(s);

    if (err)
        return err;
    if (write)
        err = exec(s,
                   "BEGIN ISOLATION LEVEL READ COMMITTED; "
                   "SELECT rev FROM meta WHERE id = 1 FOR UPDATE",
                   PGRES_TUPLES_OK, "begin write");
    else
        err = exec(s,
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                   "SELECT rev FROM meta WHERE id = 1",
                   PGRES_TUPLES_OK, "begin read");
    if (err)
        pg_rollback(st);
    return err;
}

/* COMMIT of a transaction PostgreSQL has aborted answers "ROLLBACK" without
 * an error, so the command tag is checked. A connection lost during COMMIT
 * leaves the outcome unknown: EIO, and the caller cannot tell. */
static enum wisp_err pg_commit(struct wisp_store *st)
{
    struct pg_store *s = from_store(st);
    enum wisp_err err = txn_alive(s);
    PGresult *res;

    if (err) {
        pg_rollback(st);
        return err;
    }
    res = PQexec(s->conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        err = db_fail(s, res, "commit");
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        wisp_log_err("store", "%s: commit was rolled back", s->where);
        err = WISP_ESTORE;
    }
    PQclear(res);
    if (err)
        pg_rollback(st);
    return err;
}

/* ---- Documents ---------------------------------------------------------- */

static void args_key(struct args *a, const char *kind, const char *name)
{
    a->n = 0;
    arg_str(a, kind);
    arg_str(a, name);
}

static enum wisp_err pg_get(struct wisp_txn *txn, const char *kind, const char *name,
                            struct wisp_doc *out)
{
    struct pg_store *s = from_txn(txn);
    struct args a;
    PGresult *res = NULL;
    enum wisp_err err = txn_alive(s);

    if (err)
        return err;
    args_key(&a, kind, name);
    err = query(s, S_GET, &a, "get", &res);
    if (err)
        return err;
    if (PQntuples(res) < 1) {
        err = WISP_ENOTFOUND;
        goto out;
    }
    /* libpq ends every value with a NUL, and bodies contain none. */
    out->kind = wisp_xstrdup(kind);
    out->name = wisp_xstrdup(name);
    out->body_len = (size_t)PQgetlength(res, 0, 1);
    out->body = wisp_xstrndup(PQgetvalue(res, 0, 1), out->body_len);
    out->rev = col_int(res, 0, 0);
out:
    PQclear(res);
    return err;
}

static enum wisp_err doc_rev(struct pg_store *s, const char *kind, const char *name,
                             int64_t *rev_out)
{
    struct args a;

    args_key(&a, kind, name);
    return query_int(s, S_GET_REV, &a, "read revision of document", rev_out);
}

static enum wisp_err pg_get_rev(struct wisp_txn *txn, const char *kind, const char *name,
                                int64_t *rev_out)
{
    struct pg_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    return err ? err : doc_rev(s, kind, name, rev_out);
}

/* Takes this transaction's revision on its first write: current + 1, on the
 * row this transaction already holds locked. */
static enum wisp_err take_rev(struct pg_store *s, struct wisp_txn *txn)
{
    if (txn->rev)
        return WISP_OK;
    return query_meta(s, S_TAKE_REV, "take revision", &txn->rev);
}

/* Every 1024th revision drops history older than the kept window. */
static enum wisp_err prune_changes(struct pg_store *s, int64_t rev)
{
    struct args a = {0};
    int64_t horizon = rev - WISP_STORE_CHANGES_KEPT;
    enum wisp_err err;

    if (rev % 1024 != 0 || horizon <= 0)
        return WISP_OK;
    arg_int(&a, horizon);
    err = run(s, S_PRUNE_CHANGES, &a, "prune changes");
    return err ? err : run(s, S_SET_COMPACTED, &a, "prune changes");
}

static enum wisp_err log_change(struct pg_store *s, int64_t rev, const char *kind,
                                const char *name, const char *op, const char *body,
                                size_t body_len)
{
    struct args a = {0};
    enum wisp_err err;

    arg_int(&a, rev);
    arg_str(&a, kind);
    arg_str(&a, name);
    arg_str(&a, op);
    arg_bytes(&a, body, body_len);
    err = run(s, S_LOG_CHANGE, &a, "log change");
    return err ? err : prune_changes(s, rev);
}

static enum wisp_err pg_put(struct wisp_txn *txn, const char *kind, const char *name,
                            const char *body, size_t body_len, int64_t expect_rev,
                            int64_t *rev_out)
{
    struct pg_store *s = from_txn(txn);
    struct args a;
    enum wisp_err err;
    int64_t cur = 0;

    err = txn_alive(s);
    if (err)
        return err;
    /* All checks come before the first change, so a logical refusal leaves
     * the transaction untouched; the meta row lock keeps other writers out
     * between check and write. */
    err = doc_rev(s, kind, name, &cur);
    err = wisp__store_check_expect(err, cur, expect_rev);
    if (!err)
        err = take_rev(s, txn);
    if (err)
        return err;
    args_key(&a, kind, name);
    arg_int(&a, txn->rev);
    arg_bytes(&a, body, body_len);
    err = run(s, S_UPSERT, &a, "put");
    if (!err)
        err = log_change(s, txn->rev, kind, name, "put", body, body_len);
    if (!err && rev_out)
        *rev_out = txn->rev;
    return err;
}

static enum wisp_err pg_del(struct wisp_txn *txn, const char *kind, const char *name,
                            int64_t expect_rev)
{
    struct pg_store *s = from_txn(txn);
    struct args a;
    PGresult *res = NULL;
    enum wisp_err err;
    int64_t cur = 0;

    err = txn_alive(s);
    if (!err)
        err = doc_rev(s, kind, name, &cur);
    if (!err)
        err = wisp__store_check_expect(WISP_OK, cur, expect_rev);
    if (!err)
        err = take_rev(s, txn);
    if (err)
        return err;
    args_key(&a, kind, name);
    err = query(s, S_DELETE, &a, "delete", &res);
    if (err)
        return err;
    if (PQntuples(res) != 1) {
        wisp_log_err("store", "%s: delete found no row after its check", s->where);
        err = WISP_ESTORE;
        goto out;
    }
    /* The log keeps the body as it was: a DELETED event shows the object's
     * last state. */
    err = log_change(s, txn->rev, kind, name, "delete", PQgetvalue(res, 0, 0),
                     (size_t)PQgetlength(res, 0, 0));
out:
    PQclear(res);
    return err;
}

/* ---- Lists and the change feed ----------------------------------------- */

/* A batched scan: a list or a change feed, fetched BATCH rows per round
 * trip, each batch resuming just after the last row of the one before. */
struct scan {
    enum stmt_id id; /* S_LIST, S_LIST_LT or S_CHANGES */
    const char *kind;
    const struct wisp__store_range *range;
    int name_col;    /* the column holding the name */
    int64_t rev;     /* S_CHANGES: the revision to resume at */
    char *resume;    /* the name to resume at (inclusive); from malloc() */
    size_t resume_len;
};

/* Resumes at the smallest name after last: last followed by a 0x00 byte. */
static void resume_after(struct scan *sc, const char *last, size_t len)
{
    free(sc->resume);
    sc->resume = wisp_xmalloc(len + 1);
    memcpy(sc->resume, last, len);
    sc->resume[len] = '\0';
    sc->resume_len = len + 1;
}

/* Binds one batch of sc asking for want rows (see stmts[] for the order). */
static void scan_bind(const struct scan *sc, struct args *a, int64_t want)
{
    a->n = 0;
    arg_str(a, sc->kind);
    if (sc->id == S_CHANGES) {
        arg_int(a, sc->rev);
        arg_bytes(a, sc->resume ? sc->resume : "", sc->resume_len);
        arg_str(a, sc->range->lo);
        arg_str(a, sc->range->hi);
        arg_int(a, want);
        return;
    }
    if (sc->resume)
        arg_bytes(a, sc->resume, sc->resume_len);
    else
        arg_str(a, sc->range->lo);
    arg_int(a, want);
    if (sc->range->hi)
        arg_str(a, sc->range->hi);
}

/* Rows to ask for in the next batch, given how many the caller still
 * wants (limit -1: all). */
static int64_t batch_size(int64_t limit, size_t n)
{
    if (limit < 0 || limit - (int64_t)n > BATCH)
        return BATCH;
    return limit - (int64_t)n;
}

/* Hands one row to the caller's callback; non-zero stops the scan. */
typedef int (*scan_row_fn)(const PGresult *res, int row, void *ctx);

/* Runs sc to its limit or its end, or until emit says stop. *n_out gets
 * the rows emitted; sc->resume is freed. */
static enum wisp_err scan_run(struct pg_store *s, struct scan *sc, scan_row_fn emit, void *ctx,
                              size_t *n_out)
{
    PGresult *res = NULL;
    struct args a;
    enum wisp_err err = WISP_OK;
    int64_t want;
    size_t n = 0;
    int rows;

    while ((want = batch_size(sc->range->limit, n)) > 0) {
        scan_bind(sc, &a, want);
        err = query(s, sc->id, &a, sc->id == S_CHANGES ? "changes" : "list", &res);
        if (err)
            goto out;
        rows = PQntuples(res);
        for (int i = 0; i < rows; i++) {
            n++;
            if (emit(res, i, ctx))
                goto out;
        }
        if (rows < want)
            break;
        if (sc->id == S_CHANGES)
            sc->rev = col_int(res, rows - 1, 0);
        resume_after(sc, PQgetvalue(res, rows - 1, sc->name_col),
                     (size_t)PQgetlength(res, rows - 1, sc->name_col));
        PQclear(res);
        res = NULL;
    }
out:
    if (n_out)
        *n_out = n;
    PQclear(res);
    WISP_FREE(sc->resume);
    return err;
}

struct change_emit {
    wisp_store_change_fn fn;
    void *ctx;
};

/* Row (rev, name, op, body) as a wisp_change borrowing the result. */
static int emit_change(const PGresult *res, int row, void *vctx)
{
    struct change_emit *ce = vctx;
    struct wisp_change c = {.rev = col_int(res, row, 0),
                            .name = PQgetvalue(res, row, 1),
                            .deleted = strcmp(PQgetvalue(res, row, 2), "delete") == 0,
                            .body = PQgetvalue(res, row, 3),
                            .body_len = (size_t)PQgetlength(res, row, 3)};
    return ce->fn(&c, ce->ctx);
}

static enum wisp_err pg_changes(struct wisp_txn *txn, const char *kind,
                                const struct wisp__store_range *range, int64_t after,
                                wisp_store_change_fn fn, void *ctx, size_t *n_out)
{
    struct pg_store *s = from_txn(txn);
    struct scan sc = {.id = S_CHANGES, .kind = kind, .range = range, .name_col = 1,
                      .rev = after + 1};
    struct change_emit ce = {fn, ctx};
    int64_t compacted = 0;
    enum wisp_err err = txn_alive(s);

    if (n_out)
        *n_out = 0;
    if (!err)
        err = query_meta(s, S_COMPACTED, "read compaction", &compacted);
    if (err)
        return err;
    if (after < compacted)
        return WISP_EGONE;
    return scan_run(s, &sc, emit_change, &ce, n_out);
}

struct list_emit {
    wisp_store_list_fn fn;
    void *ctx;
    const char *kind;
};

/* Row (name, rev, body) as a wisp_doc borrowing the result; kind is the
 * caller's. */
static int emit_doc(const PGresult *res, int row, void *vctx)
{
    struct list_emit *le = vctx;
    struct wisp_doc doc = {.kind = (char *)le->kind,
                           .name = PQgetvalue(res, row, 0),
                           .rev = col_int(res, row, 1),
                           .body = PQgetvalue(res, row, 2),
                           .body_len = (size_t)PQgetlength(res, row, 2)};
    return le->fn(&doc, le->ctx);
}

static enum wisp_err pg_list(struct wisp_txn *txn, const char *kind,
                             const struct wisp__store_range *range, wisp_store_list_fn fn,
                             void *ctx, size_t *n_out)
{
    struct pg_store *s = from_txn(txn);
    struct scan sc = {.id = range->hi ? S_LIST_LT : S_LIST, .kind = kind, .range = range};
    struct list_emit le = {fn, ctx, kind};
    enum wisp_err err = txn_alive(s);

    if (n_out)
        *n_out = 0;
    if (err)
        return err;
    /* An exclusive lower bound becomes an inclusive one just past it. */
    if (!range->lo_incl)
        resume_after(&sc, range->lo, strlen(range->lo));
    return scan_run(s, &sc, emit_doc, &le, n_out);
}

/* ---- Counters and revision ---------------------------------------------- */

static enum wisp_err pg_counter_next(struct wisp_txn *txn, const char *counter, int64_t *out)
{
    struct pg_store *s = from_txn(txn);
    struct args a = {0};
    enum wisp_err err = txn_alive(s);

    if (err)
        return err;
    arg_str(&a, counter);
    err = query_int(s, S_COUNTER_NEXT, &a, "counter", out);
    if (err == WISP_ENOTFOUND) {
        wisp_log_err("store", "%s: counter upsert returned no row", s->where);
        err = WISP_ESTORE;
    }
    return err;
}

static enum wisp_err pg_write_rev(struct wisp_txn *txn, int64_t *out)
{
    struct pg_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    if (!err)
        err = take_rev(s, txn);
    if (!err)
        *out = txn->rev;
    return err;
}

static enum wisp_err pg_revision(struct wisp_txn *txn, int64_t *out)
{
    struct pg_store *s = from_txn(txn);
    enum wisp_err err = txn_alive(s);

    return err ? err : query_meta(s, S_REVISION, "read revision", out);
}

const struct wisp_store_ops wisp__store_postgres_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .get = pg_get,
    .get_rev = pg_get_rev,
    .put = pg_put,
    .del = pg_del,
    .list = pg_list,
    .changes = pg_changes,
    .counter_next = pg_counter_next,
    .revision = pg_revision,
    .write_rev = pg_write_rev,
};
