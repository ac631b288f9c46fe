/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the Cloud Storage JSON API (src/wispd/api/storage*.c): the
 * bucket a call is about, object bytes in files under the state directory,
 * checksums, and the listing walk that the benchmark reuses. */
#ifndef WISPD_STORAGE_INT_H
#define WISPD_STORAGE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "wisp/store.h"
#include "../wispd.h"

/* Store kinds. A bucket is "bucket"/B (names are global), indexed per
 * project by "bucketidx"/"PROJECT/B"; an object's metadata is
 * "object"/"B/NAME", so the objects of B under a prefix are one range scan;
 * an unfinished resumable upload is "upload"/ID. */
#define STG_KIND_BUCKET "bucket"
#define STG_KIND_BUCKET_IDX "bucketidx"
#define STG_KIND_OBJECT "object"
#define STG_KIND_UPLOAD "upload"

/* Object names: 1-1024 bytes of UTF-8 (Google's limit). */
#define STG_MAX_OBJECT_NAME 1024

/* A bucket loaded for one request, with the resource its policy guards. */
struct stg_bucket {
    json_t *doc;              /* the stored document; owned */
    const char *project_id;   /* borrowed from doc */
    char resname[96];         /* projects/_/buckets/B */
    struct wispd_resource res;
};

/* Loads bucket name into b and checks permission on it. Answers 404 (no
 * such bucket), 403 or 500 and returns 0 on failure; 1 when allowed.
 * Free b with stg_bucket_free() either way. */
int stg_bucket_open(struct wisp_http_req *req, struct wisp_txn *txn, const struct wispd_caller *c,
                    const char *name, const char *permission, struct stg_bucket *b);
void stg_bucket_free(struct stg_bucket *b);

/* Percent-decodes a path segment (no "+" rule). NULL on a bad escape or an
 * encoded NUL. Caller frees. */
char *stg_path_decode(const char *s, size_t n);
/* 1 if name is a valid object name (UTF-8, 1-1024 bytes, no CR/LF, not "."
 * or ".."). Valid UTF-8 never holds the bytes 0xfe or 0xff, which the
 * listing walk relies on. */
int stg_object_name_valid(const char *name);
/* RFC 3339 UTC with milliseconds for a time in microseconds. */
void stg_time_format(int64_t us, char *out, size_t len);
int64_t stg_now_us(void);
/* The scheme and authority a response's links use: https://storage.googleapis.com
 * for requests that came to a googleapis.com host, else this server's own
 * address as the client called it. Request-scoped. */
const char *stg_link_base(struct wisp_http_req *req);

/* Handlers in storage_objects.c. bucket and name are decoded; name is NULL
 * for collection calls. */
void stg_objects_list(struct wisp_http_req *req, const char *bucket);
void stg_object_get(struct wisp_http_req *req, const char *bucket, const char *name, int media);
void stg_object_delete(struct wisp_http_req *req, const char *bucket, const char *name);
void stg_object_upload(struct wisp_http_req *req, const char *bucket);

/* --- object bytes (storage_blob.c) --------------------------------------- */

/* CRC32C (Castagnoli), as Cloud Storage reports it. Start with crc 0. */
uint32_t stg_crc32c(uint32_t crc, const void *p, size_t n);

/* Writes n bytes durably as a new blob file under STATE/objects: a temp
 * file, fsync'd, renamed to its final name, directory fsync'd. *id_out
 * (caller frees) names it for the metadata document. The metadata is
 * committed only after this returns, so no document ever points at bytes
 * that are not on disk. */
enum wisp_err stg_blob_write(const void *p, size_t n, char **id_out);
/* Reads len bytes at off of blob id into a new buffer (caller frees).
 * WISP_ENOTFOUND if the file is gone (deleted after the metadata was read). */
enum wisp_err stg_blob_read(const char *id, uint64_t off, size_t len, char **out);
/* 32 random lowercase hex digits: blob and upload-session IDs. */
void stg_random_id(char out[33]);
/* Removes a blob no document refers to any more. Best effort. */
void stg_blob_unlink(const char *id);
/* Appends n bytes to the staging file of a resumable upload, creating it
 * when off is 0; the bytes become a blob with stg_blob_seal. */
enum wisp_err stg_blob_stage_append(const char *upload_id, uint64_t off, const void *p, size_t n);
/* Checksums the staged file (md5 into md5[16], crc32c), fsyncs it and moves
 * it to its final blob name. */
enum wisp_err stg_blob_seal(const char *upload_id, unsigned char md5[16], uint32_t *crc,
                            uint64_t *size, char **id_out);
void stg_blob_stage_unlink(const char *upload_id);
/* Inflates a gzip request body (Content-Encoding: gzip, as gcloud's
 * --gzip-in-flight sends) into a new buffer of at most max bytes (caller
 * frees). WISP_EINVAL if malformed, WISP_ETOOBIG past max. */
enum wisp_err stg_gunzip(const char *in, size_t n, size_t max, char **out, size_t *out_len);

/* --- listing (storage_list.c) -------------------------------------------- */

/* One page of objects of a bucket, as objects.list defines it. Items are the
 * stored documents, handed to on_item; common prefixes (with delimiter) go
 * to prefixes. The walk is a range scan of "object" documents named
 * "BUCKET/PREFIX..."; each common prefix costs one more scan starting past
 * every name under it, so a page costs O(entries returned), whatever the
 * bucket's size. */
struct stg_list {
    const char *bucket;       /* required */
    const char *prefix;       /* "" for all */
    const char *delimiter;    /* NULL or "" for none */
    const char *start_after;  /* object name to continue after (page token); may be NULL */
    const char *start_offset; /* lexicographic lower bound (inclusive); may be NULL */
    const char *end_offset;   /* upper bound (exclusive); may be NULL */
    size_t max;               /* entries (items + prefixes) per page, >= 1 */
    int include_trailing;     /* includeTrailingDelimiter */
    /* Called for each item with the object's name (without "BUCKET/") and
     * its document; returns non-zero on failure (the walk stops with
     * WISP_EIO). */
    int (*on_item)(const char *name, const struct wisp_doc *doc, void *ctx);
    void *ctx;
    /* Out: common prefixes (a new array, caller decrefs) and, when there is
     * more, the object name to continue after (caller frees); else NULL. */
    json_t *prefixes;
    char *next_after;
};
enum wisp_err stg_list_run(struct wisp_txn *txn, struct stg_list *l);

#endif
