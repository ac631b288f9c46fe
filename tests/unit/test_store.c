/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the store (include/wisp/store.h, lib/store/): CRUD,
 * compare-and-set, shared transaction revisions, rollback, snapshots, prefix
 * listing against a brute-force model (with %, _, quotes and 0xff bytes),
 * counters, migrations, lost updates between two handles (two replicas), and
 * durability of acknowledged writes across kill -9 of a writer process. The
 * suite runs once on SQLite and once on a private PostgreSQL server it starts
 * (initdb + pg_ctl in a temporary directory); each test gets a fresh
 * directory, and on PostgreSQL a fresh database. No test depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wisp/alloc.h"
#include "wisp/store.h"

#define OK(x) assert_int_equal((x), WISP_OK)

/* wisp_store_put with a NUL-terminated body. */
static enum wisp_err puts_(struct wisp_txn *txn, const char *kind, const char *name,
                           const char *body, int64_t expect_rev, int64_t *rev_out)
{
    return wisp_store_put(txn, kind, name, body, strlen(body), expect_rev, rev_out);
}

struct fixture {
    char dir[256];  /* the test's own temporary directory */
    char path[320]; /* SQLite: dir/store.db; PostgreSQL: the URL of db */
    char db[32];    /* PostgreSQL: the test's own database; "" on SQLite */
};

/* The private PostgreSQL server while its group runs (see pg_start()). */
static struct {
    char dir[256];        /* data, socket and log; removed at the end */
    char bin[256];        /* the directory holding initdb and pg_ctl */
    int watchdog_fd;      /* write end of the watchdog's pipe; -1 if none */
    pid_t watchdog;       /* stops the server if this process dies */
    int running;          /* 1 while the server group runs */
    int n_db;             /* databases created so far */
} pg = {.watchdog_fd = -1};

static int is_pg(const struct fixture *f)
{
    return f->db[0] != '\0';
}

/* Runs one SQL command on the server's maintenance database. */
static int pg_admin(const char *sql)
{
    char url[400];
    PGconn *c;
    PGresult *res;
    int ok;

    snprintf(url, sizeof(url), "postgresql:///postgres?host=%s&user=wisp", pg.dir);
    c = PQconnectdb(url);
    res = PQexec(c, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "pg_admin %s: %s", sql, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    struct fixture *f = wisp_xcalloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    char sql[96];

    snprintf(f->dir, sizeof(f->dir), "%s/wisp-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    if (pg.running) {
        snprintf(f->db, sizeof(f->db), "wisp_t%d", ++pg.n_db);
        snprintf(f->path, sizeof(f->path), "postgresql:///%s?host=%s&user=wisp", f->db, pg.dir);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
        if (pg_admin(sql)) {
            rmdir(f->dir);
            free(f);
            return -1;
        }
    }
    *state = f;
    return 0;
}

/* Removes the directory and the files in it (the store, its -wal and -shm,
 * and files tests create); tests create no subdirectories. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[600];

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    if (is_pg(f)) {
        char sql[96];
        snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->db);
        pg_admin(sql);
    }
    free(f);
    return 0;
}

static struct wisp_store *open_ok(const struct fixture *f)
{
    struct wisp_store *st = NULL;
    OK(wisp_store_open(f->path, &st));
    assert_non_null(st);
    return st;
}

/* One put in its own write transaction; returns the put's result. */
static enum wisp_err put1(struct wisp_store *st, const char *kind, const char *name,
                          const char *body, int64_t expect_rev, int64_t *rev_out)
{
    struct wisp_txn *txn = NULL;
    enum wisp_err err;

    OK(wisp_store_begin(st, 1, &txn));
    err = wisp_store_put(txn, kind, name, body, strlen(body), expect_rev, rev_out);
    if (err) {
        wisp_store_rollback(txn);
        return err;
    }
    return wisp_store_commit(txn);
}

static enum wisp_err del1(struct wisp_store *st, const char *kind, const char *name,
                          int64_t expect_rev)
{
    struct wisp_txn *txn = NULL;
    enum wisp_err err;

    OK(wisp_store_begin(st, 1, &txn));
    err = wisp_store_delete(txn, kind, name, expect_rev);
    if (err) {
        wisp_store_rollback(txn);
        return err;
    }
    return wisp_store_commit(txn);
}

/* Reads one document in its own read transaction. */
static enum wisp_err get1(struct wisp_store *st, const char *kind, const char *name,
                          struct wisp_doc *out)
{
    struct wisp_txn *txn = NULL;
    enum wisp_err err;

    OK(wisp_store_begin(st, 0, &txn));
    err = wisp_store_get(txn, kind, name, out);
    OK(wisp_store_commit(txn));
    return err;
}

static int64_t revision1(struct wisp_store *st)
{
    struct wisp_txn *txn = NULL;
    int64_t rev = -1;

    OK(wisp_store_begin(st, 0, &txn));
    OK(wisp_store_revision(txn, &rev));
    OK(wisp_store_commit(txn));
    return rev;
}

/* ---- CRUD and compare-and-set ------------------------------------------- */

static void crud(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_doc doc;
    struct wisp_txn *txn = NULL;
    int64_t rev = 0;

    assert_int_equal(revision1(st), 0);
    OK(put1(st, "policy", "projects/p1", "{\"v\":1}", -1, &rev));
    assert_int_equal(rev, 1);

    OK(get1(st, "policy", "projects/p1", &doc));
    assert_string_equal(doc.kind, "policy");
    assert_string_equal(doc.name, "projects/p1");
    assert_string_equal(doc.body, "{\"v\":1}");
    assert_int_equal(doc.body_len, 7);
    assert_int_equal(doc.rev, 1);
    wisp_store_doc_free(&doc);
    wisp_store_doc_free(&doc); /* idempotent */
    wisp_store_doc_free(NULL);

    OK(put1(st, "policy", "projects/p1", "{\"v\":2}", -1, &rev));
    assert_int_equal(rev, 2);
    OK(get1(st, "policy", "projects/p1", &doc));
    assert_string_equal(doc.body, "{\"v\":2}");
    assert_int_equal(doc.rev, 2);
    wisp_store_doc_free(&doc);

    /* Same name, other kind: a different document. */
    assert_int_equal(get1(st, "role", "projects/p1", &doc), WISP_ENOTFOUND);
    assert_null(doc.body);

    /* body_len, not strlen, decides what is stored; an empty body is fine. */
    OK(wisp_store_begin(st, 1, &txn));
    OK(wisp_store_put(txn, "k", "partial", "abcdef", 3, -1, NULL));
    OK(wisp_store_put(txn, "k", "empty", "", 0, -1, NULL));
    OK(wisp_store_commit(txn));
    OK(get1(st, "k", "partial", &doc));
    assert_string_equal(doc.body, "abc");
    assert_int_equal(doc.body_len, 3);
    wisp_store_doc_free(&doc);
    OK(get1(st, "k", "empty", &doc));
    assert_string_equal(doc.body, "");
    assert_int_equal(doc.body_len, 0);
    wisp_store_doc_free(&doc);

    OK(del1(st, "policy", "projects/p1", -1));
    assert_int_equal(get1(st, "policy", "projects/p1", &doc), WISP_ENOTFOUND);
    assert_int_equal(del1(st, "policy", "projects/p1", -1), WISP_ENOTFOUND);
    assert_int_equal(revision1(st), 4);

    /* SQL metacharacters are plain bytes in kinds, names and bodies. */
    const char *evil = "x'); DROP TABLE documents; --";
    OK(put1(st, "k'\";%_", evil, "{\"q\":\"'\\\"; --\"}", 0, NULL));
    OK(get1(st, "k'\";%_", evil, &doc));
    assert_string_equal(doc.name, evil);
    assert_string_equal(doc.body, "{\"q\":\"'\\\"; --\"}");
    wisp_store_doc_free(&doc);
    OK(get1(st, "k", "partial", &doc));
    wisp_store_doc_free(&doc);
    wisp_store_close(st);
}

static void bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL, *txn2 = NULL;
    struct wisp_doc doc;
    char longname[5000];
    int64_t v;

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';

    OK(wisp_store_begin(st, 1, &txn));
    /* One transaction per handle at a time. */
    assert_int_equal(wisp_store_begin(st, 0, &txn2), WISP_EINVAL);
    assert_null(txn2);
    assert_int_equal(wisp_store_put(txn, "", "n", "{}", 2, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, "k", "", "{}", 2, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, NULL, "n", "{}", 2, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, "k", longname, "{}", 2, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, "k", "n", NULL, 0, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, "k", "n", "a\0b", 3, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_put(txn, "k", "n", "{}", 2, -2, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_delete(txn, "k", "n", 0), WISP_EINVAL);
    assert_int_equal(wisp_store_delete(txn, "k", "n", -7), WISP_EINVAL);
    assert_int_equal(wisp_store_counter_next(txn, "", &v), WISP_EINVAL);
    assert_int_equal(wisp_store_get(txn, "k", NULL, &doc), WISP_EINVAL);

    /* Bodies over the hard limit are refused before any work. */
    size_t big_len = (16u << 20) + 1;
    char *big = wisp_xmalloc(big_len);
    memset(big, 'a', big_len);
    assert_int_equal(wisp_store_put(txn, "k", "n", big, big_len, -1, NULL), WISP_ETOOBIG);
    free(big);

    /* Refused arguments do not spoil the transaction. */
    OK(wisp_store_put(txn, "k", "n", "{}", 2, -1, NULL));
    OK(wisp_store_commit(txn));

    /* Writes need a write transaction. */
    OK(wisp_store_begin(st, 0, &txn));
    assert_int_equal(wisp_store_put(txn, "k", "m", "{}", 2, -1, NULL), WISP_EINVAL);
    assert_int_equal(wisp_store_delete(txn, "k", "n", -1), WISP_EINVAL);
    assert_int_equal(wisp_store_counter_next(txn, "c", &v), WISP_EINVAL);
    OK(wisp_store_commit(txn));
    /* An ended transaction is refused, not reused. */
    assert_int_equal(wisp_store_commit(txn), WISP_EINVAL);
    assert_int_equal(wisp_store_get(txn, "k", "n", &doc), WISP_EINVAL);
    wisp_store_rollback(txn);
    wisp_store_rollback(NULL);
    assert_int_equal(wisp_store_commit(NULL), WISP_EINVAL);
    wisp_store_close(st);
    wisp_store_close(NULL);
}

static void expect_rev(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    int64_t r1 = 0, r2 = 0, rev = 0;

    /* 0: create only. */
    OK(put1(st, "k", "a", "{\"n\":1}", 0, &r1));
    assert_int_equal(put1(st, "k", "a", "{\"n\":9}", 0, NULL), WISP_EEXIST);
    /* > 0: the revision read. */
    OK(put1(st, "k", "a", "{\"n\":2}", r1, &r2));
    assert_true(r2 > r1);
    assert_int_equal(put1(st, "k", "a", "{\"n\":9}", r1, NULL), WISP_EABORTED);
    assert_int_equal(put1(st, "k", "absent", "{}", r1, NULL), WISP_ENOTFOUND);
    assert_int_equal(del1(st, "k", "a", r1), WISP_EABORTED);
    assert_int_equal(del1(st, "k", "absent", r2), WISP_ENOTFOUND);

    /* A refused compare-and-set changes nothing, takes no revision and leaves
     * the transaction usable. */
    OK(wisp_store_begin(st, 1, &txn));
    assert_int_equal(puts_(txn, "k", "a", "{\"n\":9}", r1, &rev), WISP_EABORTED);
    assert_int_equal(puts_(txn, "k", "a", "{\"n\":9}", 0, &rev), WISP_EEXIST);
    OK(wisp_store_revision(txn, &rev));
    assert_int_equal(rev, r2);
    OK(puts_(txn, "k", "b", "{}", 0, &rev));
    assert_int_equal(rev, r2 + 1);
    /* Within the transaction its own write is the current revision. */
    OK(puts_(txn, "k", "b", "{\"x\":1}", r2 + 1, &rev));
    assert_int_equal(rev, r2 + 1);
    OK(wisp_store_commit(txn));

    struct wisp_doc doc;
    OK(get1(st, "k", "a", &doc));
    assert_string_equal(doc.body, "{\"n\":2}");
    assert_int_equal(doc.rev, r2);
    wisp_store_doc_free(&doc);
    OK(del1(st, "k", "a", r2));
    assert_int_equal(get1(st, "k", "a", &doc), WISP_ENOTFOUND);
    /* Re-creating a deleted name with expect 0 works. */
    OK(put1(st, "k", "a", "{}", 0, NULL));
    wisp_store_close(st);
}

static void txn_shares_rev(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    struct wisp_doc doc;
    int64_t base = 0, ra = 0, rb = 0, rc = 0, now = 0, c = 0;

    OK(put1(st, "k", "c", "{}", -1, &base));

    OK(wisp_store_begin(st, 1, &txn));
    /* A counter is not a document write: no revision is taken for it. */
    OK(wisp_store_counter_next(txn, "uid", &c));
    OK(wisp_store_revision(txn, &now));
    assert_int_equal(now, base);
    OK(puts_(txn, "k", "a", "{}", -1, &ra));
    OK(puts_(txn, "other", "b", "{}", -1, &rb));
    OK(wisp_store_delete(txn, "k", "c", base));
    OK(puts_(txn, "k", "a", "{\"again\":true}", -1, &rc));
    assert_int_equal(ra, base + 1);
    assert_int_equal(rb, ra);
    assert_int_equal(rc, ra);
    OK(wisp_store_revision(txn, &now));
    assert_int_equal(now, ra);
    OK(wisp_store_commit(txn));

    assert_int_equal(revision1(st), ra);
    OK(get1(st, "other", "b", &doc));
    assert_int_equal(doc.rev, ra);
    wisp_store_doc_free(&doc);
    OK(get1(st, "k", "a", &doc));
    assert_int_equal(doc.rev, ra);
    assert_string_equal(doc.body, "{\"again\":true}");
    wisp_store_doc_free(&doc);

    /* The next transaction takes the next revision; a read one takes none. */
    OK(wisp_store_begin(st, 0, &txn));
    OK(wisp_store_commit(txn));
    OK(put1(st, "k", "d", "{}", -1, &rb));
    assert_int_equal(rb, ra + 1);
    wisp_store_close(st);
}

static void rollback_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    struct wisp_doc doc;
    int64_t base = 0, c = 0;

    OK(put1(st, "k", "keep", "{\"v\":1}", -1, &base));

    OK(wisp_store_begin(st, 1, &txn));
    OK(puts_(txn, "k", "new", "{}", -1, NULL));
    OK(puts_(txn, "k", "keep", "{\"v\":2}", base, NULL));
    OK(wisp_store_counter_next(txn, "c", &c));
    assert_int_equal(c, 1);
    /* The transaction sees its own writes... */
    OK(wisp_store_get(txn, "k", "new", &doc));
    wisp_store_doc_free(&doc);
    wisp_store_rollback(txn);

    /* ...and after rollback nobody does. */
    assert_int_equal(get1(st, "k", "new", &doc), WISP_ENOTFOUND);
    OK(get1(st, "k", "keep", &doc));
    assert_string_equal(doc.body, "{\"v\":1}");
    assert_int_equal(doc.rev, base);
    wisp_store_doc_free(&doc);
    assert_int_equal(revision1(st), base);
    OK(wisp_store_begin(st, 1, &txn));
    OK(wisp_store_counter_next(txn, "c", &c));
    assert_int_equal(c, 1);
    OK(wisp_store_delete(txn, "k", "keep", -1));
    wisp_store_rollback(txn);

    /* Closing a handle with a transaction open rolls it back. */
    OK(wisp_store_begin(st, 1, &txn));
    OK(puts_(txn, "k", "orphan", "{}", -1, NULL));
    wisp_store_close(st);
    st = open_ok(f);
    assert_int_equal(get1(st, "k", "orphan", &doc), WISP_ENOTFOUND);
    OK(get1(st, "k", "keep", &doc));
    wisp_store_doc_free(&doc);
    assert_int_equal(revision1(st), base);
    wisp_store_close(st);
}

/* A read transaction sees the database as of its begin, whatever commits
 * meanwhile on another handle. */
static void read_snapshot(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *a = open_ok(f), *b = open_ok(f);
    struct wisp_txn *ta = NULL;
    struct wisp_doc doc;
    int64_t r1 = 0, rev = 0;

    OK(put1(a, "k", "x", "{\"v\":1}", -1, &r1));
    OK(wisp_store_begin(a, 0, &ta));
    OK(put1(b, "k", "x", "{\"v\":2}", r1, NULL));
    OK(put1(b, "k", "y", "{}", 0, NULL));
    OK(wisp_store_get(ta, "k", "x", &doc));
    assert_string_equal(doc.body, "{\"v\":1}");
    wisp_store_doc_free(&doc);
    assert_int_equal(wisp_store_get(ta, "k", "y", &doc), WISP_ENOTFOUND);
    OK(wisp_store_revision(ta, &rev));
    assert_int_equal(rev, r1);
    OK(wisp_store_commit(ta));
    assert_int_equal(revision1(a), r1 + 2);
    wisp_store_close(a);
    wisp_store_close(b);
}

/* ---- Listing ------------------------------------------------------------ */

/* Names chosen so that LIKE, a missing escape or a wrong successor would
 * show: SQL wildcards, quotes, shared prefixes, 0xff bytes (the successor's
 * carry case) and UTF-8. */
/* clang-format off */
static const char *const list_names[] = {
    "a", "a%", "a%b", "a_", "a_b", "ab", "aB", "abc",
    "a'b", "a;b", "a\"b", "a\\b", "a\x7f", "a\xff", "a\xff\xff", "a\xffz",
    "b", "ba", "\x01", "%", "_", "'", "\xff", "\xff\xff",
    "\xc3\xa9t\xc3\xa9", "ns/team-a/sa/reader", "ns/team-a/sa/writer", "ns/team-b/sa/x",
};
/* clang-format on */
#define N_LIST_NAMES (sizeof(list_names) / sizeof(list_names[0]))

struct collected {
    char *names[64]; /* from malloc() */
    size_t n;
    size_t stop_after; /* fn returns 1 after this many; 0: never */
};

static int collect(const struct wisp_doc *doc, void *ctx)
{
    struct collected *c = ctx;

    if (c->n < 64)
        c->names[c->n] = wisp_xstrdup(doc->name);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n && i < 64; i++)
        free(c->names[i]);
    memset(c, 0, sizeof(*c));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The model: filter and sort with strcmp, which compares as unsigned char,
 * i.e. byte order. */
static size_t model_list(const char *prefix, const char *start_after, size_t limit,
                         const char **out)
{
    const char *sorted[N_LIST_NAMES];
    size_t n = 0;

    memcpy(sorted, list_names, sizeof(sorted));
    qsort(sorted, N_LIST_NAMES, sizeof(sorted[0]), cmp_str);
    for (size_t i = 0; i < N_LIST_NAMES; i++) {
        if (strncmp(sorted[i], prefix, strlen(prefix)) != 0)
            continue;
        if (start_after && strcmp(sorted[i], start_after) <= 0)
            continue;
        if (limit && n == limit)
            break;
        out[n++] = sorted[i];
    }
    return n;
}

static void fill_list_names(struct wisp_store *st)
{
    struct wisp_txn *txn = NULL;

    OK(wisp_store_begin(st, 1, &txn));
    for (size_t i = 0; i < N_LIST_NAMES; i++) {
        OK(wisp_store_put(txn, "k", list_names[i], "{}", 2, 0, NULL));
        /* The same names under neighbouring kinds must never leak in. */
        OK(wisp_store_put(txn, "j", list_names[i], "{}", 2, 0, NULL));
        OK(wisp_store_put(txn, "k2", list_names[i], "{}", 2, 0, NULL));
    }
    OK(wisp_store_commit(txn));
}

static void list_expect(struct wisp_txn *txn, const char *prefix, const char *start_after,
                        size_t limit, const char *const *want, size_t n_want)
{
    struct collected c = {0};
    size_t n = 99;

    OK(wisp_store_list(txn, "k", prefix, start_after, limit, collect, &c, &n));
    assert_int_equal(n, n_want);
    assert_int_equal(c.n, n_want);
    for (size_t i = 0; i < n_want; i++)
        assert_string_equal(c.names[i], want[i]);
    collected_free(&c);
}

static void list_prefix(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;

    fill_list_names(st);
    OK(wisp_store_begin(st, 0, &txn));

    /* The cases a LIKE-based prefix would get wrong, spelled out. */
    static const char *const pct[] = {"a%", "a%b"};
    list_expect(txn, "a%", NULL, 0, pct, 2);
    static const char *const und[] = {"a_", "a_b"};
    list_expect(txn, "a_", NULL, 0, und, 2);
    static const char *const quote[] = {"a'b"};
    list_expect(txn, "a'", NULL, 0, quote, 1);
    static const char *const ff[] = {"a\xff", "a\xffz", "a\xff\xff"};
    list_expect(txn, "a\xff", NULL, 0, ff, 3);
    static const char *const top[] = {"\xff", "\xff\xff"};
    list_expect(txn, "\xff", NULL, 0, top, 2);
    static const char *const team_a[] = {"ns/team-a/sa/reader", "ns/team-a/sa/writer"};
    list_expect(txn, "ns/team-a/", NULL, 0, team_a, 2);
    list_expect(txn, "zzz", NULL, 0, NULL, 0);
    list_expect(txn, "a%bc", NULL, 0, NULL, 0);

    /* Every prefix (each name, each of its prefixes, and some extras) with
     * several start_after values and limits, against the model. */
    const char *prefixes[200];
    size_t n_prefixes = 0;
    static const char *const extra[] = {"", "%", "_", "a", "A", "'", "a\\", "\xfe", "ns/"};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        prefixes[n_prefixes++] = extra[i];
    char *owned[128];
    size_t n_owned = 0;
    for (size_t i = 0; i < N_LIST_NAMES; i++) {
        size_t len = strlen(list_names[i]);
        for (size_t l = 1; l <= len && l <= 3 && n_owned < 128; l++) {
            owned[n_owned] = wisp_xstrndup(list_names[i], l);
            prefixes[n_prefixes++] = owned[n_owned++];
        }
    }
    static const size_t limits[] = {0, 1, 2, 5};
    const char *want[N_LIST_NAMES];
    for (size_t p = 0; p < n_prefixes; p++) {
        for (size_t s = 0; s <= N_LIST_NAMES + 3; s++) {
            const char *after = s < N_LIST_NAMES        ? list_names[s]
                                : s == N_LIST_NAMES     ? NULL
                                : s == N_LIST_NAMES + 1 ? ""
                                : s == N_LIST_NAMES + 2 ? "a\x80"
                                                        : "\xff\xff\xff";
            for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
                size_t n_want =
                    model_list(prefixes[p], after && *after ? after : NULL, limits[l], want);
                list_expect(txn, prefixes[p], after, limits[l], want, n_want);
            }
        }
    }
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    OK(wisp_store_commit(txn));
    wisp_store_close(st);
}

static void list_paging(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    struct collected all = {0}, page = {0}, stop = {0};
    char last[64] = "";
    size_t n = 0, total = 0;

    fill_list_names(st);
    OK(wisp_store_begin(st, 0, &txn));
    OK(wisp_store_list(txn, "k", "", NULL, 0, collect, &all, &n));
    assert_int_equal(n, N_LIST_NAMES);

    /* Pages of 3, each starting after the last name of the previous one,
     * add up to the full listing in order. */
    for (;;) {
        OK(wisp_store_list(txn, "k", "", last, 3, collect, &page, &n));
        assert_true(n <= 3);
        for (size_t i = 0; i < page.n; i++)
            assert_string_equal(page.names[i], all.names[total + i]);
        total += page.n;
        if (n < 3) {
            collected_free(&page);
            break;
        }
        snprintf(last, sizeof(last), "%s", page.names[page.n - 1]);
        collected_free(&page);
    }
    assert_int_equal(total, N_LIST_NAMES);

    /* start_after before the prefix range starts at the prefix; after it,
     * nothing. */
    static const char *const b_all[] = {"b", "ba"};
    list_expect(txn, "b", "a\xff\xff\xff", 0, b_all, 2);
    static const char *const b_ba[] = {"ba"};
    list_expect(txn, "b", "b", 0, b_ba, 1);
    list_expect(txn, "b", "ba", 0, NULL, 0);
    list_expect(txn, "b", "c", 0, NULL, 0);

    /* fn stops early: n_out counts the documents passed, the last included. */
    stop.stop_after = 2;
    OK(wisp_store_list(txn, "k", "a", NULL, 0, collect, &stop, &n));
    assert_int_equal(n, 2);
    assert_int_equal(stop.n, 2);
    collected_free(&stop);

    /* An empty kind is invalid; an unknown kind is just empty. */
    assert_int_equal(wisp_store_list(txn, "", "", NULL, 0, collect, &stop, &n), WISP_EINVAL);
    OK(wisp_store_list(txn, "nope", "", NULL, 0, collect, &stop, NULL));
    assert_int_equal(stop.n, 0);
    OK(wisp_store_commit(txn));
    collected_free(&all);
    wisp_store_close(st);
}

/* A list callback may read, and even list again, on the same transaction. */
struct nested_ctx {
    struct wisp_txn *txn;
    size_t outer, inner;
    enum wisp_err err;
};

static int count_only(const struct wisp_doc *doc, void *ctx)
{
    (void)doc;
    (*(size_t *)ctx)++;
    return 0;
}

static int nested_fn(const struct wisp_doc *doc, void *vctx)
{
    struct nested_ctx *c = vctx;
    struct wisp_doc again;
    size_t n = 0;
    enum wisp_err err;

    c->outer++;
    err = wisp_store_list(c->txn, doc->kind, "", NULL, 0, count_only, &c->inner, &n);
    if (!err)
        err = wisp_store_get(c->txn, doc->kind, doc->name, &again);
    if (!err && strcmp(again.name, doc->name) != 0)
        err = WISP_ESTORE;
    wisp_store_doc_free(&again);
    if (err)
        c->err = err;
    return err != WISP_OK;
}

static void list_nested(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct nested_ctx c = {0};
    size_t n = 0;

    fill_list_names(st);
    OK(wisp_store_begin(st, 0, &c.txn));
    OK(wisp_store_list(c.txn, "k", "", NULL, 0, nested_fn, &c, &n));
    OK(c.err);
    assert_int_equal(c.outer, N_LIST_NAMES);
    assert_int_equal(c.inner, N_LIST_NAMES * N_LIST_NAMES);
    OK(wisp_store_commit(c.txn));
    wisp_store_close(st);
}

/* ---- Counters ----------------------------------------------------------- */

static void counters(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    int64_t v = 0;

    OK(wisp_store_begin(st, 1, &txn));
    for (int64_t i = 1; i <= 3; i++) {
        OK(wisp_store_counter_next(txn, "project-number", &v));
        assert_int_equal(v, i);
    }
    OK(wisp_store_counter_next(txn, "uid'; --%", &v));
    assert_int_equal(v, 1);
    OK(wisp_store_commit(txn));

    OK(wisp_store_begin(st, 1, &txn));
    OK(wisp_store_counter_next(txn, "project-number", &v));
    assert_int_equal(v, 4);
    wisp_store_rollback(txn);
    wisp_store_close(st);

    st = open_ok(f);
    OK(wisp_store_begin(st, 1, &txn));
    OK(wisp_store_counter_next(txn, "project-number", &v));
    assert_int_equal(v, 4);
    OK(wisp_store_counter_next(txn, "uid'; --%", &v));
    assert_int_equal(v, 2);
    OK(wisp_store_commit(txn));
    wisp_store_close(st);
}

/* ---- Opening and migrations --------------------------------------------- */

/* Runs one SQL command or query on a PostgreSQL store directly; the first
 * value of a query's first row as an integer, else -1. */
static int64_t raw_pg(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *res;
    int64_t v = -1;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(c);
    return v;
}

/* Runs one integer-valued SQL query on the store directly. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t v = -1;

    if (strncmp(path, "postgresql:", 11) == 0)
        return raw_pg(path, sql);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

static void raw_text_eq(const char *path, const char *sql, const char *want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), want);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    if (strncmp(path, "postgresql:", 11) == 0) {
        raw_pg(path, sql);
        return;
    }
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* SQLite's own check of the file; PostgreSQL's durability is the server's
 * (synchronous_commit, checked at open), so there is nothing to check. */
static void raw_integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    if (strncmp(path, "postgresql:", 11) == 0)
        return;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void migrations(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_doc doc;
    struct stat sb;
    int64_t version, n_tables;

    OK(put1(st, "k", "x", "{}", 0, NULL));
    wisp_store_close(st);
    version = raw_int(f->path, "PRAGMA user_version");
    n_tables = raw_int(f->path, "SELECT count(*) FROM sqlite_schema");
    assert_true(version >= 1);
    assert_int_equal(raw_int(f->path, "PRAGMA application_id"), 0x77697370);
    raw_text_eq(f->path, "PRAGMA journal_mode", "wal");

    /* Reopening migrates nothing twice and keeps the data. */
    for (int i = 0; i < 3; i++) {
        st = open_ok(f);
        OK(get1(st, "k", "x", &doc));
        wisp_store_doc_free(&doc);
        wisp_store_close(st);
    }
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), version);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"), n_tables);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM changes"), 1);
    raw_integrity_ok(f->path);

    /* The store holds keys: it is created owner-only. */
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* A store from a newer wisp is refused, and left as it was. */
    raw_exec(f->path, "PRAGMA user_version = 999");
    assert_int_equal(wisp_store_open(f->path, &st), WISP_EPRECOND);
    assert_null(st);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 999);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)version);
    raw_exec(f->path, sql);
    st = open_ok(f);
    wisp_store_close(st);
}

/* Every document write leaves one (rev, kind, name, op, body) row in the
 * change log, in the same transaction: the final operation per document per
 * revision. Read directly, then through wisp_store_changes(). */
static int collect_change(const struct wisp_change *c, void *ctx)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%lld:%s:%s:%.*s ", (long long)c->rev, c->name,
             c->deleted ? "delete" : "put", (int)c->body_len, c->body);
    return 0;
}

/* The change log's rows, read with SQLite's SQL (the change feed below
 * reads the same history on either backend). */
static void change_log_sqlite_rows(const char *path)
{
    raw_text_eq(path, "SELECT group_concat(name || ':' || op, ',') FROM changes WHERE rev = 1",
                "a:put");
    raw_text_eq(path,
                "SELECT group_concat(name || ':' || op, ',') FROM "
                "(SELECT * FROM changes WHERE rev = 2 ORDER BY name)",
                "a:delete,b:put");
    raw_text_eq(path,
                "SELECT group_concat(name || ':' || op, ',') FROM "
                "(SELECT * FROM changes WHERE rev = 3 ORDER BY name)",
                "b:put,c:delete");
}

static void change_log(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_txn *txn = NULL;
    int64_t r1 = 0, r2 = 0, r3 = 0;

    OK(put1(st, "k", "a", "{}", 0, &r1));
    OK(wisp_store_begin(st, 1, &txn));
    OK(puts_(txn, "k", "b", "{}", 0, &r2));
    OK(wisp_store_delete(txn, "k", "a", r1));
    OK(wisp_store_commit(txn));
    OK(wisp_store_begin(st, 1, &txn));
    OK(puts_(txn, "k", "c", "{}", 0, &r3));
    OK(wisp_store_delete(txn, "k", "c", r3));
    OK(puts_(txn, "k", "b", "{\"v\":2}", r2, NULL));
    OK(wisp_store_commit(txn));
    /* Rolled back or refused writes leave no trace. */
    OK(wisp_store_begin(st, 1, &txn));
    OK(puts_(txn, "k", "d", "{}", 0, NULL));
    wisp_store_rollback(txn);
    assert_int_equal(put1(st, "k", "b", "{}", 0, NULL), WISP_EEXIST);
    wisp_store_close(st);

    assert_int_equal(r2, r1 + 1);
    assert_int_equal(r3, r2 + 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM changes"), 5);
    if (!is_pg(f))
        change_log_sqlite_rows(f->path);
    assert_int_equal(raw_int(f->path, "SELECT max(rev) FROM changes"),
                     raw_int(f->path, "SELECT rev FROM meta"));

    /* The same history through the change feed, with bodies: a delete
     * carries the body as it was. */
    char got[512];
    st = open_ok(f);
    OK(wisp_store_begin(st, 0, &txn));
    got[0] = '\0';
    OK(wisp_store_changes(txn, "k", "", 0, 0, collect_change, got, NULL));
    assert_string_equal(got, "1:a:put:{} 2:a:delete:{} 2:b:put:{} 3:b:put:{\"v\":2} 3:c:delete:{} ");
    got[0] = '\0';
    OK(wisp_store_changes(txn, "k", "b", 0, 0, collect_change, got, NULL));
    assert_string_equal(got, "2:b:put:{} 3:b:put:{\"v\":2} ");
    got[0] = '\0';
    OK(wisp_store_changes(txn, "k", "", 2, 1, collect_change, got, NULL));
    assert_string_equal(got, "3:b:put:{\"v\":2} ");
    got[0] = '\0';
    OK(wisp_store_changes(txn, "other", "", 0, 0, collect_change, got, NULL));
    assert_string_equal(got, "");
    wisp_store_rollback(txn);
    wisp_store_close(st);

    /* A write transaction knows its revision before it writes. */
    int64_t wr = 0, wr2 = 0, put_rev = 0, now = 0;
    st = open_ok(f);
    OK(wisp_store_begin(st, 1, &txn));
    OK(wisp_store_write_rev(txn, &wr));
    OK(wisp_store_write_rev(txn, &wr2));
    assert_int_equal(wr, wr2);
    OK(puts_(txn, "k", "e", "{}", 0, &put_rev));
    assert_int_equal(put_rev, wr);
    OK(wisp_store_commit(txn));
    OK(wisp_store_begin(st, 0, &txn));
    OK(wisp_store_revision(txn, &now));
    assert_int_equal(now, wr);
    assert_int_not_equal(wisp_store_write_rev(txn, &wr), WISP_OK); /* not in a read txn */
    wisp_store_rollback(txn);
    wisp_store_close(st);

    /* History before the compaction horizon is gone, and says so. */
    raw_exec(f->path, "UPDATE meta SET compacted = 2");
    st = open_ok(f);
    OK(wisp_store_begin(st, 0, &txn));
    assert_int_equal(wisp_store_changes(txn, "k", "", 1, 0, collect_change, got, NULL), WISP_EGONE);
    got[0] = '\0';
    OK(wisp_store_changes(txn, "k", "", 2, 0, collect_change, got, NULL));
    assert_string_equal(got, "3:b:put:{\"v\":2} 3:c:delete:{} 4:e:put:{} ");
    wisp_store_rollback(txn);
    wisp_store_close(st);
}

static void open_urls(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = NULL;
    char url[400], cwd[512], p[400];
    FILE *fp;

    snprintf(url, sizeof(url), "sqlite:%s", f->path);
    OK(wisp_store_open(url, &st));
    OK(put1(st, "k", "x", "{}", 0, NULL));
    wisp_store_close(st);
    st = open_ok(f); /* the same file as a plain path */
    assert_int_equal(put1(st, "k", "x", "{}", 0, NULL), WISP_EEXIST);
    wisp_store_close(st);

    assert_int_equal(wisp_store_open("mysql://u@db/wisp", &st), WISP_EINVAL);
    assert_int_equal(wisp_store_open("", &st), WISP_EINVAL);
    assert_int_equal(wisp_store_open("sqlite:", &st), WISP_EINVAL);
    assert_int_equal(wisp_store_open(NULL, &st), WISP_EINVAL);
    assert_null(st);
    snprintf(p, sizeof(p), "%s/missing-dir/x.db", f->dir);
    assert_int_equal(wisp_store_open(p, &st), WISP_EIO);

    /* Relative names are files, even SQLite's special ones. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    OK(wisp_store_open(":memory:", &st));
    wisp_store_close(st);
    OK(wisp_store_open("sqlite:file:rel.db", &st));
    wisp_store_close(st);
    assert_int_equal(chdir(cwd), 0);
    snprintf(p, sizeof(p), "%s/:memory:", f->dir);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/file:rel.db", f->dir);
    assert_int_equal(access(p, F_OK), 0);

    /* Not a SQLite file, or someone else's SQLite file: refused, untouched. */
    snprintf(p, sizeof(p), "%s/text.db", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("this is not a database, just some text that is long enough to be a header\n", fp);
    fclose(fp);
    assert_int_equal(wisp_store_open(p, &st), WISP_ESTORE);
    snprintf(p, sizeof(p), "%s/other.db", f->dir);
    raw_exec(p, "CREATE TABLE meta (x); INSERT INTO meta VALUES (1);");
    assert_int_equal(wisp_store_open(p, &st), WISP_ESTORE);
    assert_int_equal(raw_int(p, "PRAGMA user_version"), 0);
    raw_exec(p, "PRAGMA user_version = 1");
    assert_int_equal(wisp_store_open(p, &st), WISP_ESTORE);
    assert_null(st);
}

/* The PostgreSQL schema: versioned in wisp_schema, migrated once, refused
 * when newer than this wisp or when the database holds someone else's
 * tables. */
static void migrations_pg(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    struct wisp_doc doc;
    const char *n_tables_sql = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()";
    int64_t version, n_tables;
    char sql[80];

    OK(put1(st, "k", "x", "{}", 0, NULL));
    wisp_store_close(st);
    version = raw_int(f->path, "SELECT version FROM wisp_schema");
    n_tables = raw_int(f->path, n_tables_sql);
    assert_true(version >= 1);
    assert_int_equal(n_tables, 5);
    /* Names and bodies are bytea: byte order, any byte. */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM information_schema.columns WHERE "
                                      "table_name = 'documents' AND data_type = 'bytea'"),
                     3);
    for (int i = 0; i < 3; i++) {
        st = open_ok(f);
        OK(get1(st, "k", "x", &doc));
        wisp_store_doc_free(&doc);
        wisp_store_close(st);
    }
    assert_int_equal(raw_int(f->path, "SELECT version FROM wisp_schema"), version);
    assert_int_equal(raw_int(f->path, n_tables_sql), n_tables);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM changes"), 1);

    raw_exec(f->path, "UPDATE wisp_schema SET version = 999");
    assert_int_equal(wisp_store_open(f->path, &st), WISP_EPRECOND);
    assert_null(st);
    assert_int_equal(raw_int(f->path, "SELECT version FROM wisp_schema"), 999);
    snprintf(sql, sizeof(sql), "UPDATE wisp_schema SET version = %lld", (long long)version);
    raw_exec(f->path, sql);
    st = open_ok(f);
    wisp_store_close(st);

    /* Tables like ours without wisp_schema: not ours to migrate. */
    raw_exec(f->path, "ALTER TABLE wisp_schema RENAME TO not_wisp");
    assert_int_equal(wisp_store_open(f->path, &st), WISP_ESTORE);
    assert_int_equal(raw_int(f->path, n_tables_sql), n_tables);
    raw_exec(f->path, "ALTER TABLE not_wisp RENAME TO wisp_schema");
    st = open_ok(f);
    wisp_store_close(st);
}

static void open_urls_pg(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = NULL;
    char url[400];

    /* Both schemes, with the socket directory as a query parameter. */
    snprintf(url, sizeof(url), "postgres:///%s?host=%s&user=wisp", f->db, pg.dir);
    OK(wisp_store_open(url, &st));
    OK(put1(st, "k", "x", "{}", 0, NULL));
    wisp_store_close(st);
    st = open_ok(f);
    assert_int_equal(put1(st, "k", "x", "{}", 0, NULL), WISP_EEXIST);
    wisp_store_close(st);
    /* No such database, no such server: an I/O error, not a crash. */
    snprintf(url, sizeof(url), "postgresql:///no_such_db?host=%s&user=wisp", pg.dir);
    assert_int_equal(wisp_store_open(url, &st), WISP_EIO);
    snprintf(url, sizeof(url), "postgresql:///x?host=%s/nowhere&user=wisp", f->dir);
    assert_int_equal(wisp_store_open(url, &st), WISP_EIO);
    assert_null(st);
}

/* ---- Lost updates ------------------------------------------------------- */

#define INCREMENTS 200
/* Rounds in which both threads read, meet, then both write: a race forced
 * by a barrier rather than by luck. SQLite's busy handler polls with sleeps
 * and is not fair, so left alone one thread tends to run all its increments
 * while the other waits, and races happen only at the edges. */
#define LOCKSTEP_ROUNDS 50

struct incr_thread {
    const char *path;
    pthread_barrier_t *bar; /* shared by both threads */
    int done;               /* successful increments */
    int lockstep_ok;        /* successes in the lock-step rounds */
    int conflicts;          /* EABORTED / EBUSY retries */
    int lockstep_conflicts; /* of which in the lock-step rounds */
    enum wisp_err err;      /* first unexpected error */
    int64_t revs[INCREMENTS + LOCKSTEP_ROUNDS]; /* revisions of its wins */
};

/* Reads the counter document: its value and revision. */
static enum wisp_err incr_read(struct wisp_store *st, long long *v, int64_t *rev)
{
    struct wisp_txn *txn = NULL;
    struct wisp_doc doc = {0};
    enum wisp_err err = wisp_store_begin(st, 0, &txn);

    if (!err) {
        err = wisp_store_get(txn, "k", "counter", &doc);
        wisp_store_rollback(txn);
    }
    if (!err && sscanf(doc.body, "{\"n\":%lld}", v) != 1)
        err = WISP_ESTORE;
    *rev = doc.rev;
    wisp_store_doc_free(&doc);
    return err;
}

/* Writes v + 1 if the document is still at rev; *won gets the new one. */
static enum wisp_err incr_write(struct wisp_store *st, long long v, int64_t rev, int64_t *won)
{
    struct wisp_txn *txn = NULL;
    char body[64];
    enum wisp_err err;

    snprintf(body, sizeof(body), "{\"n\":%lld}", v + 1);
    err = wisp_store_begin(st, 1, &txn);
    if (err)
        return err;
    err = wisp_store_put(txn, "k", "counter", body, strlen(body), rev, won);
    if (err) {
        wisp_store_rollback(txn);
        return err;
    }
    return wisp_store_commit(txn);
}

/* Counts one attempt; returns 0 if the thread must stop. */
static int incr_account(struct incr_thread *t, enum wisp_err err, int lockstep, int64_t won)
{
    if (err == WISP_OK) {
        if (t->done < INCREMENTS + LOCKSTEP_ROUNDS)
            t->revs[t->done] = won;
        t->done++;
        t->lockstep_ok += lockstep;
    } else if (err == WISP_EABORTED || err == WISP_EBUSY) {
        t->conflicts++;
        t->lockstep_conflicts += lockstep;
    } else if (!t->err) {
        t->err = err;
    }
    return t->err == WISP_OK;
}

/* Read-modify-write the way an API client does: read the counter document
 * and its revision in one transaction, write value + 1 with that revision as
 * expect_rev in another, retry on a lost race. cmocka's asserts are not for
 * other threads, so results are recorded and checked by the main thread;
 * and a thread keeps meeting the barrier even after an error, so that the
 * other never waits for ever. */
static void *incr_main(void *arg)
{
    struct incr_thread *t = arg;
    struct wisp_store *st = NULL;
    enum wisp_err err;
    long long v = 0;
    int64_t rev = 0, won = 0;

    t->err = wisp_store_open(t->path, &st);
    pthread_barrier_wait(t->bar);
    for (int round = 0; round < LOCKSTEP_ROUNDS; round++) {
        err = t->err ? t->err : incr_read(st, &v, &rev);
        pthread_barrier_wait(t->bar); /* both have read the same revision */
        if (!t->err && !err)
            err = incr_write(st, v, rev, &won);
        incr_account(t, err, 1, won);
        pthread_barrier_wait(t->bar); /* both writes are over */
    }
    while (!t->err && t->done < INCREMENTS) {
        /* Each lost race is the other thread's success, so a bounded number
         * of retries suffices; the bound turns a CAS bug into a failure, not
         * a hang. */
        if (t->conflicts > 100 * INCREMENTS) {
            t->err = WISP_EABORTED;
            break;
        }
        err = incr_read(st, &v, &rev);
        if (!err)
            err = incr_write(st, v, rev, &won);
        incr_account(t, err, 0, won);
    }
    wisp_store_close(st);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct feed_check {
    int64_t next; /* the revision the next change must carry */
    int bad;      /* changes out of order or with the wrong value */
};

static int feed_fn(const struct wisp_change *c, void *ctx)
{
    struct feed_check *fc = ctx;
    long long v = -1;

    if (c->rev != fc->next || c->deleted || sscanf(c->body, "{\"n\":%lld}", &v) != 1 ||
        v != c->rev - 1)
        fc->bad++;
    fc->next++;
    return 0;
}

static void feed_in_order(struct wisp_store *st)
{
    struct feed_check fc = {.next = 1};
    struct wisp_txn *txn = NULL;
    size_t n = 0;

    OK(wisp_store_begin(st, 0, &txn));
    OK(wisp_store_changes(txn, "k", "counter", 0, 0, feed_fn, &fc, &n));
    wisp_store_rollback(txn);
    assert_int_equal(n, 1 + 2 * INCREMENTS);
    assert_int_equal(fc.bad, 0);
}

/* Two handles (two replicas: two connections on PostgreSQL) increment one
 * document by compare-and-set. */
static void lost_update(void **state)
{
    struct fixture *f = *state;
    struct wisp_store *st = open_ok(f);
    pthread_barrier_t bar;
    struct incr_thread t[2] = {{.path = f->path, .bar = &bar}, {.path = f->path, .bar = &bar}};
    pthread_t tid[2];
    struct wisp_doc doc;
    long long v = -1;

    OK(put1(st, "k", "counter", "{\"n\":0}", 0, NULL));
    assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, incr_main, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < 2; i++) {
        OK(t[i].err);
        assert_int_equal(t[i].done, INCREMENTS);
    }
    /* In every forced race exactly one writer won and the other was told. */
    assert_int_equal(t[0].lockstep_ok + t[1].lockstep_ok, LOCKSTEP_ROUNDS);
    assert_int_equal(t[0].lockstep_conflicts + t[1].lockstep_conflicts, LOCKSTEP_ROUNDS);
    print_message("lost_update: %d and %d conflicts retried\n", t[0].conflicts, t[1].conflicts);

    OK(get1(st, "k", "counter", &doc));
    assert_int_equal(sscanf(doc.body, "{\"n\":%lld}", &v), 1);
    assert_int_equal(v, 2 * INCREMENTS);
    /* Each successful increment was exactly one revision. */
    assert_int_equal(doc.rev, 1 + 2 * INCREMENTS);
    wisp_store_doc_free(&doc);

    /* The two writers' wins are distinct revisions: together exactly
     * 2 .. 2 * INCREMENTS + 1, each thread's strictly increasing. */
    int64_t all[2 * INCREMENTS];
    size_t n_all = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < t[i].done; k++) {
            if (k > 0)
                assert_true(t[i].revs[k] > t[i].revs[k - 1]);
            all[n_all++] = t[i].revs[k];
        }
    assert_int_equal(n_all, 2 * INCREMENTS);
    qsort(all, n_all, sizeof(all[0]), cmp_i64);
    for (size_t k = 0; k < n_all; k++)
        assert_int_equal(all[k], (int64_t)k + 2);

    /* Either handle's change feed has every change in order: the value
     * written at revision r is r - 1. */
    struct wisp_store *other = open_ok(f);
    feed_in_order(st);
    feed_in_order(other);
    wisp_store_close(other);
    wisp_store_close(st);
}

/* ---- Durability across kill -9 ------------------------------------------ */

#define KILL_ROUNDS 3
#define WRITES_PER_CHILD 5000

struct ack {
    int64_t i;   /* the write's number */
    int64_t rev; /* the revision it committed at */
};

/* The child: opens the store itself (never inherit a connection across
 * fork), then commits one transaction per write, each putting doc-i and
 * overwriting "last", and reports each commit on the pipe only after commit
 * returned. It runs until killed, or exits after WRITES_PER_CHILD. */
static void writer_child(const char *path, int64_t base, int fd)
{
    struct wisp_store *st = NULL;
    struct wisp_txn *txn = NULL;
    struct ack a;
    char name[32], body[64];

    if (wisp_store_open(path, &st))
        _exit(2);
    for (int64_t i = base; i < base + WRITES_PER_CHILD; i++) {
        snprintf(name, sizeof(name), "doc-%lld", (long long)i);
        snprintf(body, sizeof(body), "{\"i\":%lld}", (long long)i);
        if (wisp_store_begin(st, 1, &txn))
            _exit(3);
        if (wisp_store_put(txn, "k", name, body, strlen(body), 0, &a.rev) ||
            wisp_store_put(txn, "k", "last", body, strlen(body), -1, NULL) ||
            wisp_store_commit(txn))
            _exit(4);
        a.i = i;
        if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
            _exit(5);
    }
    _exit(0);
}

/* Reads one ack; 0 at end of file. A 16-byte write to a pipe is atomic, but
 * a read may still be split by a signal, so loop. */
static int read_ack(int fd, struct ack *a)
{
    size_t got = 0;

    while (got < sizeof(*a)) {
        ssize_t r = read(fd, (char *)a + got, sizeof(*a) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

static void kill9_durability(void **state)
{
    struct fixture *f = *state;
    /* Acknowledged writes of all rounds so far; checked after every round. */
    struct ack *acks = wisp_xcalloc((size_t)KILL_ROUNDS * WRITES_PER_CHILD, sizeof(*acks));
    size_t n_acks = 0;
    static const size_t kill_after[KILL_ROUNDS] = {1, 37, 150};

    for (int round = 0; round < KILL_ROUNDS; round++) {
        int fds[2], status = 0;
        size_t n_round = 0;
        pid_t pid;
        struct ack a;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer_child(f->path, (int64_t)round * WRITES_PER_CHILD, fds[1]);
        }
        close(fds[1]);
        while (n_round < kill_after[round] && read_ack(fds[0], &a)) {
            acks[n_acks++] = a;
            n_round++;
        }
        /* Most likely mid-commit: the child writes as fast as it can. */
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* Acks the child sent before it died count too. */
        while (read_ack(fds[0], &a))
            acks[n_acks++] = a;
        close(fds[0]);
        assert_true(n_round >= kill_after[round]);
        if (WIFEXITED(status))
            assert_int_equal(WEXITSTATUS(status), 0);

        raw_integrity_ok(f->path);
        struct wisp_store *st = open_ok(f);
        struct wisp_txn *txn = NULL;
        struct wisp_doc doc;
        char name[32], body[64];
        int64_t rev = 0;
        long long last = -1;

        OK(wisp_store_begin(st, 0, &txn));
        for (size_t k = 0; k < n_acks; k++) {
            snprintf(name, sizeof(name), "doc-%lld", (long long)acks[k].i);
            snprintf(body, sizeof(body), "{\"i\":%lld}", (long long)acks[k].i);
            OK(wisp_store_get(txn, "k", name, &doc));
            assert_string_equal(doc.body, body);
            assert_int_equal(doc.rev, acks[k].rev);
            wisp_store_doc_free(&doc);
        }
        /* Atomicity of the write in flight at the kill: "last" names the
         * newest doc-i, which is the last ack or the one after it, and the
         * revision is that transaction's. */
        OK(wisp_store_get(txn, "k", "last", &doc));
        assert_int_equal(sscanf(doc.body, "{\"i\":%lld}", &last), 1);
        assert_true(last == acks[n_acks - 1].i || last == acks[n_acks - 1].i + 1);
        snprintf(name, sizeof(name), "doc-%lld", (long long)acks[n_acks - 1].i + 1);
        struct wisp_doc next;
        enum wisp_err next_err = wisp_store_get(txn, "k", name, &next);
        assert_int_equal(next_err, last == acks[n_acks - 1].i ? WISP_ENOTFOUND : WISP_OK);
        OK(wisp_store_revision(txn, &rev));
        assert_int_equal(rev, doc.rev);
        assert_true(rev >= acks[n_acks - 1].rev);
        wisp_store_doc_free(&next);
        wisp_store_doc_free(&doc);
        OK(wisp_store_commit(txn));
        wisp_store_close(st);
        print_message("kill9 round %d: %zu acks in total, last write %lld\n", round, n_acks, last);
    }
    raw_integrity_ok(f->path);
    free(acks);
}

/* ---- The private PostgreSQL server ------------------------------------- */

/* Runs argv, as the postgres user when root (the server refuses to run as
 * root), with output to the server's log; its exit status, or -1. */
static int pg_run(const char *const *argv)
{
    const char *full[16];
    char log[300];
    int n = 0, status = 0, fd;
    pid_t pid;

    if (geteuid() == 0) {
        full[n++] = "runuser";
        full[n++] = "-u";
        full[n++] = "postgres";
        full[n++] = "--";
    }
    for (int i = 0; argv[i] && n < 15; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    snprintf(log, sizeof(log), "%s/setup.log", pg.dir);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(full[0], (char *const *)full);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Stops the server fast and removes its directory. */
static void pg_destroy(void)
{
    char ctl[300], data[300], cmd[400];

    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg.bin);
    snprintf(data, sizeof(data), "%s/data", pg.dir);
    const char *stop[] = {ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL};
    if (access(data, F_OK) == 0)
        pg_run(stop);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pg.dir);
}

/* A child in its own session that waits for this process's end (the pipe's
 * EOF: a normal exit, a crash, a timeout's kill) and then stops the server
 * and removes its directory, so no server outlives the test. */
static int pg_watchdog(void)
{
    int fds[2];
    char c;

    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pg.watchdog = fork();
    if (pg.watchdog < 0)
        return -1;
    if (pg.watchdog == 0) {
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(fds[1]);
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        pg_destroy();
        _exit(0);
    }
    close(fds[0]);
    pg.watchdog_fd = fds[1];
    return 0;
}

/* initdb + pg_ctl start into a fresh directory, listening only on a Unix
 * socket in that directory, superuser "wisp" trusted there. fsync stays on:
 * the backend refuses a server without it. */
static int pg_group_setup(void **state)
{
    char data[300], log[300], opts[400], initdb[300], ctl[300];
    struct passwd *pw = getpwnam("postgres");

    (void)state;
    /* Always /tmp, not $TMPDIR: the postgres user must be able to reach
     * the directory, and the socket's path must fit in sun_path. */
    snprintf(pg.dir, sizeof(pg.dir), "/tmp/wisp-pg-XXXXXX");
    if (!mkdtemp(pg.dir))
        return -1;
    if (geteuid() == 0 && (!pw || chown(pg.dir, pw->pw_uid, pw->pw_gid) != 0)) {
        fprintf(stderr, "running as root needs a postgres user to own %s\n", pg.dir);
        rmdir(pg.dir);
        return -1;
    }
    if (pg_watchdog() != 0)
        return -1;
    snprintf(data, sizeof(data), "%s/data", pg.dir);
    snprintf(log, sizeof(log), "%s/server.log", pg.dir);
    snprintf(initdb, sizeof(initdb), "%s/initdb", pg.bin);
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg.bin);
    snprintf(opts, sizeof(opts), "-k %s -h '' -c max_connections=40", pg.dir);
    const char *init[] = {initdb, "-D", data, "-U", "wisp", "-A", "trust", "-E", "UTF8",
                          "--no-locale", "--no-sync", NULL};
    const char *start[] = {ctl, "-D", data, "-l", log, "-o", opts, "-w", "-t", "120", "start",
                           NULL};
    if (pg_run(init) != 0 || pg_run(start) != 0) {
        fprintf(stderr, "could not start PostgreSQL in %s (see setup.log, server.log)\n", pg.dir);
        return -1;
    }
    pg.running = 1;
    return 0;
}

static int pg_group_teardown(void **state)
{
    (void)state;
    pg.running = 0;
    /* The watchdog sees EOF and removes the server; wait for it. */
    close(pg.watchdog_fd);
    pg.watchdog_fd = -1;
    if (pg.watchdog > 0)
        waitpid(pg.watchdog, NULL, 0);
    return 0;
}

/* The directory with PostgreSQL's initdb and pg_ctl: $WISP_PG_BIN, else
 * Debian's newest /usr/lib/postgresql/N/bin. 0 if found. */
static int pg_find_bin(void)
{
    const char *env = getenv("WISP_PG_BIN");
    glob_t g;
    int rc = -1;

    if (env && *env) {
        snprintf(pg.bin, sizeof(pg.bin), "%s", env);
    } else if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
        /* glob sorts; the last is the newest major version (same width). */
        snprintf(pg.bin, sizeof(pg.bin), "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - 7),
                 g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
    }
    if (pg.bin[0]) {
        char p[300];
        snprintf(p, sizeof(p), "%s/initdb", pg.bin);
        rc = access(p, X_OK);
    }
    return rc;
}

int main(void)
{
/* The suite, with the tests that differ per backend as parameters. */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define STORE_SUITE(migrations_test, open_urls_test)                                         \
    {T(crud),        T(bad_arguments), T(expect_rev),      T(txn_shares_rev),                  \
     T(rollback_leaves_nothing), T(read_snapshot), T(list_prefix), T(list_paging),             \
     T(list_nested), T(counters),      T(migrations_test), T(change_log),                      \
     T(open_urls_test), T(lost_update), T(kill9_durability)}
    const struct CMUnitTest tests[] = STORE_SUITE(migrations, open_urls);
    const struct CMUnitTest pg_tests[] = STORE_SUITE(migrations_pg, open_urls_pg);
    const char *ci = getenv("CI");
    int failed = cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);

    if (pg_find_bin() != 0) {
        /* CI installs postgresql (scripts/packages.txt): missing there is a
         * failure, elsewhere a loud skip. */
        fprintf(stderr, "%s: PostgreSQL backend tests: no initdb in /usr/lib/postgresql/*/bin "
                        "or $WISP_PG_BIN (apt-get install postgresql)\n",
                ci && strcmp(ci, "true") == 0 ? "FAILED" : "SKIPPED");
        return failed + (ci && strcmp(ci, "true") == 0);
    }
    return failed + cmocka_run_group_tests_name("store_postgres", pg_tests, pg_group_setup,
                                                pg_group_teardown);
}
