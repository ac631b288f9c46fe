/* SPDX-License-Identifier: Apache-2.0 */
/* bench/objects: objects.list cost against bucket size. Populates buckets
 * straight through the store (as wispd lays objects out: "object" documents
 * named "BUCKET/NAME"), then times the listing code path wispd runs
 * (src/wispd/api/storage_list.c, linked in) and, optionally, the same call
 * over HTTPS against a running wispd with libcurl keep-alive.
 * Usage:
 *   bench populate DB PROJECT BUCKET N   objects d{0..9}/obj/NNNNNNN, N/10 per d
 *   bench list DB ROUNDS ITER BUCKET...  prints µs/call per bucket and query
 *   bench http CAFILE TOKEN ROUNDS ITER URL...  prints µs/call per URL */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/store.h"
#include "../../src/wispd/api/storage_int.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int die(const char *what, enum wisp_err err)
{
    fprintf(stderr, "bench: %s: %s\n", what, wisp_strerror(err));
    return 1;
}

static int populate(const char *db, const char *project, const char *bucket, long n)
{
    struct wisp_store *st = NULL;
    struct wisp_txn *txn = NULL;
    enum wisp_err err = wisp_store_open(db, &st);
    if (err)
        return die("open", err);
    char buf[1024], name[512];
    /* The bucket, as bucket insert writes it. */
    snprintf(buf, sizeof(buf),
             "{\"location\":\"US\",\"locationType\":\"multi-region\",\"lockedTime\":"
             "\"2026-01-01T00:00:00.000Z\",\"metageneration\":\"1\",\"name\":\"%s\","
             "\"projectId\":\"%s\",\"projectNumber\":\"123456789012\",\"storageClass\":"
             "\"STANDARD\",\"timeCreated\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
             "\"2026-01-01T00:00:00.000Z\"}",
             bucket, project);
    snprintf(name, sizeof(name), "%s/%s", project, bucket);
    err = wisp_store_begin(st, 1, &txn);
    if (!err)
        err = wisp_store_put(txn, STG_KIND_BUCKET, bucket, buf, strlen(buf), -1, NULL);
    if (!err)
        err = wisp_store_put(txn, STG_KIND_BUCKET_IDX, name, "{}", 2, -1, NULL);
    long per_dir = n / 10 ? n / 10 : 1;
    for (long i = 0; !err && i < n; i++) {
        /* A realistic metadata document (about 450 bytes). */
        snprintf(name, sizeof(name), "%s/d%ld/obj/%07ld", bucket, i / per_dir, i);
        snprintf(buf, sizeof(buf),
                 "{\"blob\":\"00000000000000000000000000000000\",\"bucket\":\"%s\","
                 "\"contentType\":\"application/octet-stream\",\"crc32c\":\"AAAAAA==\","
                 "\"generation\":\"1767225600000000\",\"md5Hash\":\"1B2M2Y8AsgTpgAmY7PhCfg==\","
                 "\"metageneration\":\"1\",\"name\":\"d%ld/obj/%07ld\",\"size\":\"0\","
                 "\"storageClass\":\"STANDARD\",\"timeCreated\":\"2026-01-01T00:00:00.000Z\","
                 "\"timeStorageClassUpdated\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
                 "\"2026-01-01T00:00:00.000Z\"}",
                 bucket, i / per_dir, i);
        err = wisp_store_put(txn, STG_KIND_OBJECT, name, buf, strlen(buf), -1, NULL);
        if (!err && i % 20000 == 19999) {
            err = wisp_store_commit(txn);
            txn = NULL;
            if (!err)
                err = wisp_store_begin(st, 1, &txn);
        }
    }
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    wisp_store_close(st);
    return err ? die("populate", err) : 0;
}

/* What wispd does per listed item, minus rendering: parse the document. */
static int on_item(const char *name, const struct wisp_doc *doc, void *ctx)
{
    (void)name;
    json_t *d = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (!d)
        return 1;
    json_decref(d);
    (*(size_t *)ctx)++;
    return 0;
}

struct query {
    const char *label, *prefix, *delimiter;
};
static const struct query queries[] = {
    {"prefix matching 10 objects", "d0/obj/000001", NULL},
    {"delimiter / at the top (10 prefixes)", "", "/"},
};
#define N_QUERIES (sizeof(queries) / sizeof(queries[0]))

/* One list call: a read transaction, the walk, rollback. Returns entries. */
static size_t list_once(struct wisp_store *st, const char *bucket, const struct query *q)
{
    struct wisp_txn *txn = NULL;
    size_t items = 0;
    struct stg_list l = {.bucket = bucket, .prefix = q->prefix, .delimiter = q->delimiter,
                         .max = 1000, .on_item = on_item, .ctx = &items};
    if (wisp_store_begin(st, 0, &txn) != WISP_OK)
        return 0;
    enum wisp_err err = stg_list_run(txn, &l);
    wisp_store_rollback(txn);
    size_t n = err ? 0 : items + json_array_size(l.prefixes);
    json_decref(l.prefixes);
    free(l.next_after);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int list_bench(const char *db, int rounds, int iter, int nb, char **buckets)
{
    struct wisp_store *st = NULL;
    enum wisp_err err = wisp_store_open(db, &st);
    if (err)
        return die("open", err);
    double *t = wisp_xcalloc((size_t)(nb * (int)N_QUERIES * rounds), sizeof(double));
    size_t *entries = wisp_xcalloc((size_t)(nb * (int)N_QUERIES), sizeof(size_t));
    /* Rounds alternate between buckets so drift hits both alike. */
    for (int r = 0; r < rounds; r++) {
        for (int b = 0; b < nb; b++) {
            for (size_t q = 0; q < N_QUERIES; q++) {
                entries[b * (int)N_QUERIES + (int)q] = list_once(st, buckets[b], &queries[q]);
                double t0 = now_us();
                for (int i = 0; i < iter; i++)
                    list_once(st, buckets[b], &queries[q]);
                t[(b * (int)N_QUERIES + (int)q) * rounds + r] = (now_us() - t0) / iter;
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        for (size_t q = 0; q < N_QUERIES; q++) {
            double *v = &t[(b * (int)N_QUERIES + (int)q) * rounds];
            qsort(v, (size_t)rounds, sizeof(double), cmp_double);
            printf("inproc\t%s\t%s\t%zu\t%.2f\n", buckets[b], queries[q].label,
                   entries[b * (int)N_QUERIES + (int)q], v[rounds / 2]);
        }
    }
    free(t);
    free(entries);
    wisp_store_close(st);
    return 0;
}

static size_t sink(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    *(size_t *)ctx += size * n;
    return size * n;
}

static int http_bench(const char *ca, const char *token, int rounds, int iter, int nu, char **urls)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char *auth = wisp_xasprintf("Authorization: Bearer %s", token);
    size_t got = 0;
    long code = 0;
    int rc = 0;
    double *t = wisp_xcalloc((size_t)(nu * rounds), sizeof(double));
    hdrs = curl_slist_append(hdrs, auth);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    for (int r = 0; r < rounds && !rc; r++) {
        for (int u = 0; u < nu && !rc; u++) {
            curl_easy_setopt(h, CURLOPT_URL, urls[u]);
            double t0 = 0;
            for (int i = -1; i < iter; i++) { /* i = -1: warm the connection */
                if (i == 0)
                    t0 = now_us();
                if (curl_easy_perform(h) != CURLE_OK ||
                    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
                    code != 200) {
                    fprintf(stderr, "bench: GET %s failed (HTTP %ld)\n", urls[u], code);
                    rc = 1;
                    break;
                }
            }
            t[u * rounds + r] = (now_us() - t0) / iter;
        }
    }
    for (int u = 0; u < nu && !rc; u++) {
        qsort(&t[u * rounds], (size_t)rounds, sizeof(double), cmp_double);
        printf("http\t%s\t%.2f\n", urls[u], t[u * rounds + rounds / 2]);
    }
    free(t);
    free(auth);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "populate") == 0)
        return populate(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc >= 6 && strcmp(argv[1], "list") == 0)
        return list_bench(argv[2], atoi(argv[3]), atoi(argv[4]), argc - 5, argv + 5);
    if (argc >= 7 && strcmp(argv[1], "http") == 0)
        return http_bench(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argc - 6, argv + 6);
    fprintf(stderr, "usage: bench populate DB PROJECT BUCKET N\n"
                    "       bench list DB ROUNDS ITER BUCKET...\n"
                    "       bench http CAFILE TOKEN ROUNDS ITER URL...\n");
    return 100;
}
