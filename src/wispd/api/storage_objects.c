/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud Storage objects: upload (media, multipart, resumable), metadata and
 * media reads (with Range), list, delete, and the generation preconditions.
 * Bytes are written durably to a blob file before the metadata document
 * that names them is committed (storage_blob.c). */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "wisp/log.h"
#include "wisp/url.h"
#include "storage_int.h"

/* Objects larger than one request body (8 MiB) arrive by resumable upload;
 * this caps them, since a download is answered from memory. */
#define MAX_OBJECT (64ull << 20)
#define MAX_CUSTOM_METADATA 8192 /* bytes of keys and values, Google's limit */
#define MAX_FIELD 1024           /* contentType, cacheControl, ... */
#define NO_OBJECT "No such object: %s/%s"

static const struct wisp_jfield object_fields[] = {
    {"name", WISP_J_STRING},
    {"bucket", WISP_J_STRING},
    {"contentType", WISP_J_STRING},
    {"contentEncoding", WISP_J_STRING},
    {"contentDisposition", WISP_J_STRING},
    {"contentLanguage", WISP_J_STRING},
    {"cacheControl", WISP_J_STRING},
    {"metadata", WISP_J_OBJECT},
    {"md5Hash", WISP_J_STRING},
    {"crc32c", WISP_J_STRING},
    {"storageClass", WISP_J_STRING},
    {"customTime", WISP_J_STRING},
    {NULL}};

/* Client-settable string fields kept as given. */
static const char *const plain_fields[] = {"contentEncoding", "contentDisposition",
                                          "contentLanguage", "cacheControl", "customTime", NULL};

/* --- rendering --------------------------------------------------------------- */

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        p[n++] = (unsigned char)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* Google's object etag: base64 of the protobuf {1: generation,
 * 2: metageneration}. */
static char *object_etag(const char *gen, const char *metagen)
{
    unsigned char buf[32];
    size_t n = 0;
    buf[n++] = 0x08;
    n += put_varint(buf + n, strtoull(gen, NULL, 10));
    buf[n++] = 0x10;
    n += put_varint(buf + n, strtoull(metagen, NULL, 10));
    return wisp_b64_encode(buf, n);
}

/* base is stg_link_base(req), computed once per request. */
static json_t *object_render(const char *base, const json_t *doc)
{
    json_t *o = json_deep_copy(doc);
    json_object_del(o, "blob");
    const char *bucket = json_string_value(json_object_get(doc, "bucket"));
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *gen = json_string_value(json_object_get(doc, "generation"));
    const char *mg = json_string_value(json_object_get(doc, "metageneration"));
    if (!bucket || !name || !gen || !mg)
        return o;
    char *esc = wisp_url_escape(name);
    int google = strcmp(base, "https://storage.googleapis.com") == 0;
    char *id = wisp_xasprintf("%s/%s/%s", bucket, name, gen);
    char *self = wisp_xasprintf("%s/storage/v1/b/%s/o/%s",
                                google ? "https://www.googleapis.com" : base, bucket, esc);
    char *media = wisp_xasprintf("%s/download/storage/v1/b/%s/o/%s?generation=%s&alt=media", base,
                                 bucket, esc, gen);
    char *etag = object_etag(gen, mg);
    json_object_set_new(o, "kind", json_string("storage#object"));
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "selfLink", json_string(self));
    json_object_set_new(o, "mediaLink", json_string(media));
    json_object_set_new(o, "etag", json_string(etag));
    free(esc);
    free(id);
    free(self);
    free(media);
    free(etag);
    return o;
}

/* --- preconditions --------------------------------------------------------------- */

/* Parses query parameter key as a non-negative int64: 1 and *out when
 * present, 0 when absent, -1 (after answering 400) when malformed. */
static int query_i64(struct wisp_http_req *req, const char *key, int64_t *out)
{
    const char *v = wisp_http_query(req, key);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0) {
        wisp_api_error(req, 400, NULL, "Invalid value for parameter '%s': '%.32s'", key, v);
        return -1;
    }
    *out = n;
    return 1;
}

struct preconds {
    int has_gen, has_not_gen, has_mg, has_not_mg;
    int64_t gen, not_gen, mg, not_mg;
};

/* Reads the if(Meta)generation(Not)Match parameters; 0 after answering 400. */
static int preconds_parse(struct wisp_http_req *req, struct preconds *p)
{
    memset(p, 0, sizeof(*p));
    if ((p->has_gen = query_i64(req, "ifGenerationMatch", &p->gen)) < 0 ||
        (p->has_not_gen = query_i64(req, "ifGenerationNotMatch", &p->not_gen)) < 0 ||
        (p->has_mg = query_i64(req, "ifMetagenerationMatch", &p->mg)) < 0 ||
        (p->has_not_mg = query_i64(req, "ifMetagenerationNotMatch", &p->not_mg)) < 0)
        return 0;
    return 1;
}

static int64_t doc_i64(const json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? strtoll(s, NULL, 10) : 0;
}

/* Checks p against the current object (NULL: none; generation 0 then).
 * Answers 412 and returns 0 when one does not hold. */
static int preconds_hold(struct wisp_http_req *req, const struct preconds *p, const json_t *cur)
{
    int64_t gen = cur ? doc_i64(cur, "generation") : 0;
    int64_t mg = cur ? doc_i64(cur, "metageneration") : 0;
    int ok = (!p->has_gen || p->gen == gen) && (!p->has_not_gen || p->not_gen != gen) &&
             (!p->has_mg || (cur && p->mg == mg)) && (!p->has_not_mg || !cur || p->not_mg != mg);
    if (!ok)
        wisp_api_error(req, 412, "FAILED_PRECONDITION",
                       "At least one of the pre-conditions you specified did not hold.");
    return ok;
}

/* --- list ------------------------------------------------------------------------ */

struct list_ctx {
    const char *base; /* stg_link_base */
    json_t *items;
};

static int list_item(const char *name, const struct wisp_doc *doc, void *ctx)
{
    (void)name;
    struct list_ctx *lc = ctx;
    json_t *d = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (!d)
        return 1;
    json_array_append_new(lc->items, object_render(lc->base, d));
    json_decref(d);
    return 0;
}

static int bool_param(struct wisp_http_req *req, const char *key)
{
    const char *v = wisp_http_query(req, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "1") == 0);
}

void stg_objects_list(struct wisp_http_req *req, const char *bucket)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    struct stg_list l = {0};
    struct list_ctx lc = {stg_link_base(req), json_array()};
    char *after = NULL;
    if (!c)
        goto out;
    long max = wisp_api_page_size(wisp_http_query(req, "maxResults"), 1000, 1000);
    after = wisp_api_page_token_parse(wisp_http_query(req, "pageToken"));
    if (max < 0 || !after) {
        wisp_api_error(req, 400, NULL, "Invalid maxResults or pageToken.");
        goto out;
    }
    const char *prefix = wisp_http_query(req, "prefix");
    const char *delim = wisp_http_query(req, "delimiter");
    if ((prefix && strlen(prefix) > STG_MAX_OBJECT_NAME) || (delim && strlen(delim) > 64)) {
        wisp_api_error(req, 400, NULL, "Invalid prefix or delimiter.");
        goto out;
    }
    if (wisp_http_query(req, "matchGlob")) {
        wisp_api_error(req, 400, NULL, "matchGlob is not supported by this server; list with "
                                       "prefix and delimiter.");
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, bucket, "storage.objects.list", &b))
        goto out;
    l.bucket = bucket;
    l.prefix = prefix ? prefix : "";
    l.delimiter = delim;
    l.start_after = after;
    l.start_offset = wisp_http_query(req, "startOffset");
    l.end_offset = wisp_http_query(req, "endOffset");
    l.max = (size_t)max;
    l.include_trailing = bool_param(req, "includeTrailingDelimiter");
    l.on_item = list_item;
    l.ctx = &lc;
    err = stg_list_run(txn, &l);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    /* An empty listing is exactly {"kind": "storage#objects"}. */
    json_t *resp = json_pack("{s:s}", "kind", "storage#objects");
    if (l.next_after) {
        char *tok = wisp_api_page_token_make(l.next_after);
        json_object_set_new(resp, "nextPageToken", json_string(tok));
        free(tok);
    }
    if (json_array_size(l.prefixes))
        json_object_set(resp, "prefixes", l.prefixes);
    if (json_array_size(lc.items))
        json_object_set(resp, "items", lc.items);
    wisp_api_json(req, 200, resp);
out:
    json_decref(l.prefixes);
    free(l.next_after);
    json_decref(lc.items);
    free(after);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- get --------------------------------------------------------------------------- */

/* Parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" range against size.
 * 1: *off and *len set; 0: no usable Range (serve it all); -1: unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (end == p + 1 || *end || n == 0)
            return 0;
        if (size == 0)
            return -1;
        *len = n > size ? size : n;
        *off = size - *len;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long a = strtoull(p, &end, 10), b;
    if (*end != '-')
        return 0;
    p = end + 1;
    if (!*p) {
        b = size ? size - 1 : 0;
    } else {
        if (*p < '0' || *p > '9')
            return 0;
        b = strtoull(p, &end, 10);
        if (*end || b < a)
            return 0;
        if (b >= size)
            b = size ? size - 1 : 0;
    }
    if (a >= size)
        return -1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

static void add_header_json(struct wisp_http_req *req, const char *name, const json_t *doc,
                            const char *key)
{
    const char *v = json_string_value(json_object_get(doc, key));
    if (v && *v)
        wisp_http_add_header(req, name, v);
}

/* Answers with the object's bytes, or returns WISP_ENOTFOUND without
 * answering when its blob is gone (replaced or deleted since doc was
 * read). */
static enum wisp_err media_respond(struct wisp_http_req *req, const json_t *doc)
{
    uint64_t size = (uint64_t)doc_i64(doc, "size"), off = 0, len = size;
    char *buf = NULL;
    char tmp[160];
    const char *blob = json_string_value(json_object_get(doc, "blob"));
    int ranged = parse_range(wisp_http_header(req, "range"), size, &off, &len);
    if (ranged < 0) {
        snprintf(tmp, sizeof(tmp), "bytes */%" PRIu64, size);
        wisp_http_add_header(req, "Content-Range", tmp);
        wisp_api_error(req, 416, "OUT_OF_RANGE", "Request range not satisfiable");
        return WISP_OK;
    }
    enum wisp_err err = blob ? stg_blob_read(blob, off, (size_t)len, &buf) : WISP_ESTORE;
    if (err == WISP_ENOTFOUND)
        return err;
    if (err) {
        wisp_api_error(req, 500, NULL, "Cannot read the object's data.");
        return WISP_OK;
    }
    snprintf(tmp, sizeof(tmp), "crc32c=%s,md5=%s",
             json_string_value(json_object_get(doc, "crc32c")),
             json_string_value(json_object_get(doc, "md5Hash")));
    wisp_http_add_header(req, "X-Goog-Hash", tmp);
    add_header_json(req, "X-Goog-Generation", doc, "generation");
    add_header_json(req, "X-Goog-Metageneration", doc, "metageneration");
    add_header_json(req, "X-Goog-Stored-Content-Length", doc, "size");
    const char *enc = json_string_value(json_object_get(doc, "contentEncoding"));
    wisp_http_add_header(req, "X-Goog-Stored-Content-Encoding", enc && *enc ? enc : "identity");
    add_header_json(req, "X-Goog-Storage-Class", doc, "storageClass");
    add_header_json(req, "Cache-Control", doc, "cacheControl");
    add_header_json(req, "Content-Disposition", doc, "contentDisposition");
    add_header_json(req, "Content-Language", doc, "contentLanguage");
    char *etag = object_etag(json_string_value(json_object_get(doc, "generation")),
                             json_string_value(json_object_get(doc, "metageneration")));
    wisp_http_add_header(req, "ETag", etag);
    free(etag);
    wisp_http_add_header(req, "Accept-Ranges", "bytes");
    if (ranged > 0) {
        snprintf(tmp, sizeof(tmp), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off, off + len - 1,
                 size);
        wisp_http_add_header(req, "Content-Range", tmp);
    }
    const char *ct = json_string_value(json_object_get(doc, "contentType"));
    wisp_http_respond(req, ranged > 0 ? 206 : 200, ct && *ct ? ct : "application/octet-stream",
                      buf, (size_t)len);
    free(buf);
    return WISP_OK;
}

void stg_object_get(struct wisp_http_req *req, const char *bucket, const char *name, int media)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    struct preconds pc;
    json_t *doc = NULL;
    char *key = NULL;
    if (!c)
        return;
    int64_t want_gen = 0;
    int has_gen = query_i64(req, "generation", &want_gen);
    if (has_gen < 0 || !preconds_parse(req, &pc))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, bucket, "storage.objects.get", &b))
        goto out;
    key = wisp_xasprintf("%s/%s", bucket, name);
    /* A replacement can remove the bytes between reading the metadata and
     * reading them; then the metadata is read again, once. */
    for (int attempt = 0;; attempt++) {
        err = wispd_get_json(txn, STG_KIND_OBJECT, key, &doc, NULL);
        wisp_store_rollback(txn);
        txn = NULL;
        /* Only the live generation is kept: naming another is a 404. */
        if (err == WISP_ENOTFOUND ||
            (!err && has_gen && doc_i64(doc, "generation") != want_gen)) {
            wisp_api_error(req, 404, NULL, NO_OBJECT, bucket, name);
            goto out;
        }
        if (err) {
            wispd_store_error(req, err);
            goto out;
        }
        if (!preconds_hold(req, &pc, doc))
            goto out;
        if (!media) {
            wisp_api_json(req, 200, object_render(stg_link_base(req), doc));
            goto out;
        }
        if (media_respond(req, doc) == WISP_OK)
            goto out;
        json_decref(doc);
        doc = NULL;
        if (attempt == 1 || (err = wisp_store_begin(wispd_store(req), 0, &txn)) != WISP_OK) {
            if (err)
                wispd_store_error(req, err);
            else
                wisp_api_error(req, 404, NULL, NO_OBJECT, bucket, name);
            goto out;
        }
    }
out:
    free(key);
    json_decref(doc);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- delete ------------------------------------------------------------------------ */

void stg_object_delete(struct wisp_http_req *req, const char *bucket, const char *name)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    struct preconds pc;
    json_t *doc = NULL;
    char *key = NULL, *blob = NULL;
    int64_t rev = 0, want_gen = 0;
    if (!c)
        return;
    int has_gen = query_i64(req, "generation", &want_gen);
    if (has_gen < 0 || !preconds_parse(req, &pc))
        goto out;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, bucket, "storage.objects.delete", &b))
        goto out;
    key = wisp_xasprintf("%s/%s", bucket, name);
    err = wispd_get_json(txn, STG_KIND_OBJECT, key, &doc, &rev);
    if (err == WISP_ENOTFOUND || (!err && has_gen && doc_i64(doc, "generation") != want_gen)) {
        wisp_api_error(req, 404, NULL, NO_OBJECT, bucket, name);
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!preconds_hold(req, &pc, doc))
        goto out;
    const char *bl = json_string_value(json_object_get(doc, "blob"));
    blob = bl ? wisp_xstrdup(bl) : NULL;
    err = wisp_store_delete(txn, STG_KIND_OBJECT, key, rev);
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    /* The metadata is gone first; the bytes after. */
    stg_blob_unlink(blob);
    wisp_http_respond(req, 204, NULL, "", 0);
out:
    free(key);
    free(blob);
    json_decref(doc);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}

/* --- upload: shared ---------------------------------------------------------------- */

/* Checks an object resource a client sent (multipart JSON part, resumable
 * start body). 0 after answering 400. */
static int meta_valid(struct wisp_http_req *req, const json_t *meta)
{
    char msg[512];
    if (wisp_api_check(meta, object_fields, "", msg, sizeof(msg)) != WISP_OK) {
        wisp_api_error(req, 400, NULL, "%s", msg);
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (json_is_string(v) && strlen(json_string_value(v)) > MAX_FIELD) {
            wisp_api_error(req, 400, NULL, "The value of '%s' is too long.", key);
            return 0;
        }
    }
    size_t total = 0;
    json_object_foreach(json_object_get(meta, "metadata"), key, v) {
        if (!json_is_string(v) && !json_is_null(v)) {
            wisp_api_error(req, 400, NULL, "Invalid value at 'metadata.%.64s': not a string.",
                           key);
            return 0;
        }
        total += strlen(key) + (json_is_string(v) ? strlen(json_string_value(v)) : 0);
    }
    if (total > MAX_CUSTOM_METADATA) {
        wisp_api_error(req, 400, NULL, "Custom metadata is larger than %d bytes.",
                       MAX_CUSTOM_METADATA);
        return 0;
    }
    const char *sc = json_string_value(json_object_get(meta, "storageClass"));
    if (sc && strcmp(sc, "STANDARD") && strcmp(sc, "NEARLINE") && strcmp(sc, "COLDLINE") &&
        strcmp(sc, "ARCHIVE")) {
        wisp_api_error(req, 400, NULL, "Invalid argument: storage class '%.32s'.", sc);
        return 0;
    }
    return 1;
}

/* The object name of an upload: the name parameter, else the resource's. */
static const char *upload_name(struct wisp_http_req *req, const json_t *meta)
{
    const char *n = wisp_http_query(req, "name");
    if (!n)
        n = json_string_value(json_object_get(meta, "name"));
    if (!n) {
        wisp_api_error(req, 400, NULL, "Required parameter: name");
        return NULL;
    }
    if (!stg_object_name_valid(n)) {
        wisp_api_error(req, 400, NULL, "The specified object name is not valid.");
        return NULL;
    }
    return n;
}

/* Compares hashes the client declared with the ones computed; 0 after
 * answering 400 on a mismatch. */
static int hashes_match(struct wisp_http_req *req, const json_t *meta, const char *md5_b64,
                        const char *crc_b64)
{
    const char *m = json_string_value(json_object_get(meta, "md5Hash"));
    const char *c = json_string_value(json_object_get(meta, "crc32c"));
    if (m && strcmp(m, md5_b64) != 0) {
        wisp_api_error(req, 400, NULL,
                       "Provided MD5 hash \"%.64s\" doesn't match calculated MD5 hash \"%s\".", m,
                       md5_b64);
        return 0;
    }
    if (c && strcmp(c, crc_b64) != 0) {
        wisp_api_error(req, 400, NULL,
                       "Provided CRC32C \"%.64s\" doesn't match calculated CRC32C \"%s\".", c,
                       crc_b64);
        return 0;
    }
    return 1;
}

static char *crc_b64(uint32_t crc)
{
    unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
    return wisp_b64_encode(be, 4);
}

/* What a finished upload carries into object_commit. */
struct upload {
    const char *bucket, *name;
    const json_t *meta;       /* client's object resource, or NULL */
    const char *content_type; /* from the media part / header, or NULL */
    char *blob;               /* owned until committed */
    char *md5, *crc;          /* base64 */
    uint64_t size;
    const char *session_key;  /* resumable: "upload" document to remove */
};

/* Commits the metadata of a blob already on disk, replacing any live
 * generation, and answers with the object. On any failure the new blob is
 * removed again; on success the replaced one is. Returns 1 if committed.
 * u->blob is the caller's to free either way. */
static int object_commit(struct wisp_http_req *req, const struct wispd_caller *c,
                         const struct preconds *pc, struct upload *u)
{
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    json_t *cur = NULL, *doc = NULL;
    char *key = wisp_xasprintf("%s/%s", u->bucket, u->name), *old_blob = NULL;
    int64_t rev = 0;
    int committed = 0;
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, u->bucket, "storage.objects.create", &b))
        goto out;
    err = wispd_get_json(txn, STG_KIND_OBJECT, key, &cur, &rev);
    if (err && err != WISP_ENOTFOUND) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!preconds_hold(req, pc, cur))
        goto out;
    /* Replacing an object deletes its live generation (Google's rule: an
     * objectCreator cannot overwrite). */
    if (cur && !wispd_check(req, txn, c, "storage.objects.delete", &b.res))
        goto out;
    int64_t gen = stg_now_us();
    if (cur && doc_i64(cur, "generation") >= gen)
        gen = doc_i64(cur, "generation") + 1;
    char gens[24], sizes[24], now[40];
    snprintf(gens, sizeof(gens), "%" PRId64, gen);
    snprintf(sizes, sizeof(sizes), "%" PRIu64, u->size);
    stg_time_format(gen, now, sizeof(now));
    const char *ct = json_string_value(json_object_get(u->meta, "contentType"));
    if (!ct || !*ct)
        ct = u->content_type && *u->content_type ? u->content_type : "application/octet-stream";
    const char *sc = json_string_value(json_object_get(u->meta, "storageClass"));
    if (!sc)
        sc = json_string_value(json_object_get(b.doc, "storageClass"));
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name",
                    u->name, "bucket", u->bucket, "generation", gens, "metageneration", "1",
                    "contentType", ct, "size", sizes, "md5Hash", u->md5, "crc32c", u->crc,
                    "timeCreated", now, "updated", now, "timeStorageClassUpdated", now,
                    "storageClass", sc ? sc : "STANDARD", "blob", u->blob);
    for (int i = 0; plain_fields[i]; i++) {
        json_t *v = json_object_get(u->meta, plain_fields[i]);
        if (json_is_string(v))
            json_object_set(doc, plain_fields[i], v);
    }
    json_t *custom = json_object_get(u->meta, "metadata");
    if (json_object_size(custom)) {
        json_t *m = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(custom, k, v) {
            if (json_is_string(v))
                json_object_set(m, k, v);
        }
        json_object_set_new(doc, "metadata", m);
    }
    err = wispd_put_json(txn, STG_KIND_OBJECT, key, doc, cur ? rev : 0, NULL);
    if (!err && u->session_key) {
        err = wisp_store_delete(txn, STG_KIND_UPLOAD, u->session_key, -1);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    committed = 1;
    const char *ob = json_string_value(json_object_get(cur, "blob"));
    old_blob = ob ? wisp_xstrdup(ob) : NULL;
    wisp_api_json(req, 200, object_render(stg_link_base(req), doc));
out:
    wisp_store_rollback(txn);
    if (!committed)
        stg_blob_unlink(u->blob);
    stg_blob_unlink(old_blob);
    free(old_blob);
    free(key);
    json_decref(cur);
    json_decref(doc);
    stg_bucket_free(&b);
    return committed;
}

/* Checksums and stores bytes held in memory, then commits them. */
static void upload_bytes(struct wisp_http_req *req, const struct wispd_caller *c,
                         const struct preconds *pc, const char *bucket, const char *name,
                         const json_t *meta, const char *content_type, const char *data,
                         size_t len)
{
    unsigned char md5[16];
    unsigned int mdlen = sizeof(md5);
    struct upload u = {.bucket = bucket, .name = name, .meta = meta,
                       .content_type = content_type, .size = len};
    if (!EVP_Digest(data, len, md5, &mdlen, EVP_md5(), NULL)) {
        wisp_api_error(req, 500, NULL, "Cannot hash the object's data.");
        return;
    }
    u.md5 = wisp_b64_encode(md5, sizeof(md5));
    u.crc = crc_b64(stg_crc32c(0, data, len));
    if (!hashes_match(req, meta, u.md5, u.crc))
        goto out;
    if (stg_blob_write(data, len, &u.blob) != WISP_OK) {
        wisp_api_error(req, 500, NULL, "Cannot store the object's data.");
        goto out;
    }
    object_commit(req, c, pc, &u);
out:
    free(u.blob);
    free(u.md5);
    free(u.crc);
}

/* --- upload: multipart/related ---------------------------------------------------- */

struct part {
    const char *body;
    size_t len;
    char ctype[256]; /* the part's Content-Type, "" if none */
};

/* The boundary parameter of a multipart Content-Type, unquoted ("..." or,
 * as apitools writes it, '...'). */
static int boundary_of(const char *ct, char *out, size_t outlen)
{
    const char *p = strcasestr(ct, "boundary=");
    if (!p)
        return 0;
    p += 9;
    size_t n;
    if (*p == '"' || *p == '\'') {
        const char *q = strchr(p + 1, *p);
        if (!q)
            return 0;
        n = (size_t)(q - p - 1);
        p++;
    } else {
        n = strcspn(p, "; \t");
    }
    if (n == 0 || n > 70 || n >= outlen)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

/* Splits a multipart/related body into its two parts (metadata, media).
 * Lines may end in CRLF or, as Python's email generator writes, LF. */
static int multipart_split(const char *body, size_t len, const char *boundary, struct part parts[2])
{
    char delim[80];
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    const char *end = body + len;
    const char *p = memmem(body, len, delim, (size_t)dl);
    if (!p)
        return 0;
    p += dl;
    int crlf = p + 1 < end && p[0] == '\r' && p[1] == '\n';
    const char *nl = crlf ? "\r\n" : "\n";
    size_t nll = crlf ? 2 : 1;
    for (int i = 0; i < 2; i++) {
        if ((size_t)(end - p) < nll || memcmp(p, nl, nll) != 0)
            return 0;
        p += nll;
        parts[i].ctype[0] = '\0';
        /* Headers, up to an empty line. */
        for (int h = 0;; h++) {
            const char *eol = memmem(p, (size_t)(end - p), nl, nll);
            if (!eol || h > 32)
                return 0;
            if (eol == p) {
                p += nll;
                break;
            }
            size_t hl = (size_t)(eol - p);
            if (hl > 13 && strncasecmp(p, "content-type:", 13) == 0) {
                const char *v = p + 13;
                while (v < eol && (*v == ' ' || *v == '\t'))
                    v++;
                size_t vl = (size_t)(eol - v);
                if (vl >= sizeof(parts[i].ctype))
                    return 0;
                memcpy(parts[i].ctype, v, vl);
                parts[i].ctype[vl] = '\0';
            } else if (hl > 26 && strncasecmp(p, "content-transfer-encoding:", 26) == 0) {
                const char *v = p + 26;
                while (v < eol && *v == ' ')
                    v++;
                if (strncasecmp(v, "binary", 6) && strncasecmp(v, "8bit", 4) &&
                    strncasecmp(v, "7bit", 4))
                    return 0;
            }
            p = eol + nll;
        }
        /* The body runs to the line break before the next delimiter. */
        const char *q = p;
        const char *next = NULL;
        while (q < end) {
            const char *hit = memmem(q, (size_t)(end - q), delim, (size_t)dl);
            if (!hit)
                return 0;
            if ((size_t)(hit - p) >= nll && memcmp(hit - nll, nl, nll) == 0) {
                next = hit;
                break;
            }
            q = hit + 1;
        }
        if (!next)
            return 0;
        parts[i].body = p;
        parts[i].len = (size_t)(next - nll - p);
        p = next + dl;
    }
    return (size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-';
}

static void upload_multipart(struct wisp_http_req *req, const struct wispd_caller *c,
                             const struct preconds *pc, const char *bucket, const char *body,
                             size_t body_len)
{
    struct part parts[2];
    char boundary[80];
    json_t *meta = NULL;
    const char *ct = wisp_http_header(req, "content-type");
    if (!ct || strncasecmp(ct, "multipart/related", 17) != 0 ||
        !boundary_of(ct, boundary, sizeof(boundary))) {
        wisp_api_error(req, 400, NULL, "A multipart upload needs Content-Type multipart/related "
                                       "with a boundary.");
        return;
    }
    if (!multipart_split(body, body_len, boundary, parts)) {
        wisp_api_error(req, 400, NULL, "Malformed multipart body.");
        return;
    }
    json_error_t jerr;
    meta = json_loadb(parts[0].body, parts[0].len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(meta)) {
        wisp_api_error(req, 400, NULL, "Invalid JSON payload in the metadata part.");
        goto out;
    }
    if (!meta_valid(req, meta))
        goto out;
    const char *name = upload_name(req, meta);
    if (name)
        upload_bytes(req, c, pc, bucket, name, meta, parts[1].ctype, parts[1].body, parts[1].len);
out:
    json_decref(meta);
}

/* --- upload: resumable ------------------------------------------------------------ */

/* Starts a session: records name, resource, preconditions and expected
 * size, and answers its URI in Location. */
static void resumable_start(struct wisp_http_req *req, const struct wispd_caller *c,
                            const char *bucket)
{
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    json_t *meta = NULL, *doc = NULL;
    char *key = NULL, *loc = NULL, *esc_b = NULL, *esc_n = NULL;
    if (!(meta = wisp_api_body(req, object_fields)) || !meta_valid(req, meta))
        goto out;
    const char *name = upload_name(req, meta);
    if (!name)
        goto out;
    int64_t total = -1;
    const char *xl = wisp_http_header(req, "x-upload-content-length");
    if (xl) {
        char *end;
        errno = 0;
        long long n = strtoll(xl, &end, 10);
        if (!*xl || *end || errno || n < 0) {
            wisp_api_error(req, 400, NULL, "Invalid X-Upload-Content-Length.");
            goto out;
        }
        total = n;
    }
    if (total > (int64_t)MAX_OBJECT) {
        wisp_api_error(req, 400, NULL, "Objects are limited to %llu bytes on this server.",
                       (unsigned long long)MAX_OBJECT);
        goto out;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    if (!stg_bucket_open(req, txn, c, bucket, "storage.objects.create", &b))
        goto out;
    char id[33];
    stg_random_id(id);
    key = wisp_xasprintf("%s/%s", bucket, id);
    const char *xct = wisp_http_header(req, "x-upload-content-type");
    doc = json_pack("{s:s, s:O, s:s, s:I, s:I, s:s, s:s}", "name", name, "meta", meta,
                    "contentType", xct ? xct : "", "total", (json_int_t)total, "received",
                    (json_int_t)0, "principal", c->principal, "query", req->query);
    err = wispd_put_json(txn, STG_KIND_UPLOAD, key, doc, 0, NULL);
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    esc_b = wisp_url_escape(bucket);
    esc_n = wisp_url_escape(name);
    loc = wisp_xasprintf("%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s&upload_id=%s",
                         stg_link_base(req), esc_b, esc_n, id);
    wisp_http_add_header(req, "Location", loc);
    wisp_http_add_header(req, "X-GUploader-UploadID", id);
    wisp_http_respond(req, 200, "text/plain; charset=utf-8", "", 0);
out:
    free(key);
    free(loc);
    free(esc_b);
    free(esc_n);
    json_decref(meta);
    json_decref(doc);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
}

/* Content-Range of a chunk: "bytes A-B/T" or "bytes A-B/" followed by "*"
 * (total unknown), "bytes " "*" "/T" (a status query), or absent (the
 * whole object in one request). */
struct crange {
    int64_t first, last; /* -1: no bytes */
    int64_t total;       /* -1: unknown */
};

static int crange_parse(const char *h, size_t body_len, struct crange *r)
{
    if (!h) {
        r->first = body_len ? 0 : -1;
        r->last = (int64_t)body_len - 1;
        r->total = (int64_t)body_len;
        return 1;
    }
    if (strncmp(h, "bytes ", 6) != 0)
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '*') {
        r->first = r->last = -1;
        p++;
    } else {
        if (*p < '0' || *p > '9')
            return 0;
        r->first = strtoll(p, &end, 10);
        if (*end != '-' || end[1] < '0' || end[1] > '9')
            return 0;
        r->last = strtoll(end + 1, &end, 10);
        p = end;
        if (r->last < r->first || (uint64_t)(r->last - r->first + 1) != body_len)
            return 0;
    }
    if (*p != '/')
        return 0;
    p++;
    if (strcmp(p, "*") == 0) {
        r->total = -1;
        return r->first >= 0 || body_len == 0;
    }
    if (*p < '0' || *p > '9')
        return 0;
    r->total = strtoll(p, &end, 10);
    if (*end || r->total < 0 || (r->last >= 0 && r->last >= r->total))
        return 0;
    return r->first >= 0 || body_len == 0;
}

static void resume_incomplete(struct wisp_http_req *req, int64_t received)
{
    if (received > 0) {
        char range[48];
        snprintf(range, sizeof(range), "bytes=0-%" PRId64, received - 1);
        wisp_http_add_header(req, "Range", range);
    }
    wisp_http_respond(req, 308, "text/plain; charset=utf-8", "", 0);
}

static void resumable_continue(struct wisp_http_req *req, const struct wispd_caller *c,
                               const char *bucket, const char *upload_id, const char *body,
                               size_t body_len)
{
    struct wisp_txn *txn = NULL;
    json_t *doc = NULL;
    char *key = NULL;
    int64_t rev = 0;
    struct crange cr;
    struct upload u = {0};
    if (strlen(upload_id) != 32 || strspn(upload_id, "0123456789abcdef") != 32) {
        wisp_api_error(req, 404, NULL, "No such upload session.");
        return;
    }
    key = wisp_xasprintf("%s/%s", bucket, upload_id);
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (!err)
        err = wispd_get_json(txn, STG_KIND_UPLOAD, key, &doc, &rev);
    wisp_store_rollback(txn);
    txn = NULL;
    if (err == WISP_ENOTFOUND) {
        wisp_api_error(req, 404, NULL, "No such upload session.");
        goto out;
    }
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    /* The session URI is a capability, but only for whoever opened it. */
    if (strcmp(json_string_value(json_object_get(doc, "principal")), c->principal) != 0) {
        wisp_api_error(req, 403, NULL, "This upload session belongs to another principal.");
        goto out;
    }
    if (strcmp(req->method, "DELETE") == 0) {
        err = wisp_store_begin(wispd_store(req), 1, &txn);
        if (!err)
            err = wisp_store_delete(txn, STG_KIND_UPLOAD, key, rev);
        if (!err)
            err = wisp_store_commit(txn);
        txn = NULL;
        if (err && err != WISP_ENOTFOUND && err != WISP_EABORTED) {
            wispd_store_error(req, err);
            goto out;
        }
        stg_blob_stage_unlink(upload_id);
        wisp_http_respond(req, 499, "text/plain; charset=utf-8", "", 0);
        goto out;
    }
    if (!crange_parse(wisp_http_header(req, "content-range"), body_len, &cr)) {
        wisp_api_error(req, 400, NULL, "Invalid Content-Range.");
        goto out;
    }
    int64_t received = json_integer_value(json_object_get(doc, "received"));
    int64_t total = json_integer_value(json_object_get(doc, "total"));
    if (cr.total >= 0) {
        if ((total >= 0 && cr.total != total) || cr.total < received ||
            cr.total > (int64_t)MAX_OBJECT) {
            wisp_api_error(req, 400, NULL, "The upload's total size is inconsistent or above "
                                           "%llu bytes.", (unsigned long long)MAX_OBJECT);
            goto out;
        }
        total = cr.total;
    }
    if (cr.first > received) {
        /* A gap: tell the client what is persisted so it resends. */
        resume_incomplete(req, received);
        goto out;
    }
    if (cr.last >= received) {
        /* Bytes up to received are already stored; append the rest. */
        size_t skip = (size_t)(received - cr.first);
        if (received + (int64_t)(body_len - skip) > (int64_t)MAX_OBJECT) {
            wisp_api_error(req, 400, NULL, "Objects are limited to %llu bytes on this server.",
                           (unsigned long long)MAX_OBJECT);
            goto out;
        }
        if (stg_blob_stage_append(upload_id, (uint64_t)received, body + skip, body_len - skip) !=
            WISP_OK) {
            wisp_api_error(req, 500, NULL, "Cannot store the upload's data.");
            goto out;
        }
        received = cr.last + 1;
    } else if (received == 0 && total == 0) {
        /* An empty object: nothing to append, but the file must exist. */
        if (stg_blob_stage_append(upload_id, 0, "", 0) != WISP_OK) {
            wisp_api_error(req, 500, NULL, "Cannot store the upload's data.");
            goto out;
        }
    }
    if (total < 0 || received < total) {
        json_object_set_new(doc, "received", json_integer(received));
        json_object_set_new(doc, "total", json_integer(total));
        err = wisp_store_begin(wispd_store(req), 1, &txn);
        if (!err)
            err = wispd_put_json(txn, STG_KIND_UPLOAD, key, doc, rev, NULL);
        if (!err)
            err = wisp_store_commit(txn);
        txn = NULL;
        if (err == WISP_EABORTED || err == WISP_ENOTFOUND) {
            wisp_api_error(req, 409, "ABORTED", "Another request changed this upload session; "
                                                "query its status and resume.");
            goto out;
        }
        if (err) {
            wispd_store_error(req, err);
            goto out;
        }
        resume_incomplete(req, received);
        goto out;
    }
    /* Complete: seal the staged bytes and commit the object, with the
     * preconditions and resource given when the session started. */
    unsigned char md5[16];
    uint32_t crc;
    uint64_t size;
    if (stg_blob_seal(upload_id, md5, &crc, &size, &u.blob) != WISP_OK) {
        wisp_api_error(req, 500, NULL, "Cannot store the upload's data.");
        goto out;
    }
    u.bucket = bucket;
    u.name = json_string_value(json_object_get(doc, "name"));
    u.meta = json_object_get(doc, "meta");
    u.content_type = json_string_value(json_object_get(doc, "contentType"));
    u.size = size;
    u.md5 = wisp_b64_encode(md5, sizeof(md5));
    u.crc = crc_b64(crc);
    u.session_key = key;
    struct preconds pc = {0};
    const char *q = json_string_value(json_object_get(doc, "query"));
    const char *names[4] = {"ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch",
                            "ifMetagenerationNotMatch"};
    int *has[4] = {&pc.has_gen, &pc.has_not_gen, &pc.has_mg, &pc.has_not_mg};
    int64_t *val[4] = {&pc.gen, &pc.not_gen, &pc.mg, &pc.not_mg};
    for (int i = 0; i < 4; i++) {
        char *v = q ? wisp_form_get(q, strlen(q), names[i]) : NULL;
        if (v) {
            *has[i] = 1;
            *val[i] = strtoll(v, NULL, 10);
            free(v);
        }
    }
    if (size != (uint64_t)total) {
        wisp_api_error(req, 500, NULL, "The staged upload has the wrong size.");
        stg_blob_unlink(u.blob);
    } else if (!hashes_match(req, u.meta, u.md5, u.crc)) {
        stg_blob_unlink(u.blob);
    } else if (object_commit(req, c, &pc, &u)) {
        goto out;
    }
    /* The staged bytes are gone (sealed, then dropped): so is the session,
     * as on Google, where a failed finalization ends it. */
    err = wisp_store_begin(wispd_store(req), 1, &txn);
    if (!err)
        err = wisp_store_delete(txn, STG_KIND_UPLOAD, key, -1);
    if (!err)
        err = wisp_store_commit(txn);
    txn = NULL;
    if (err && err != WISP_ENOTFOUND)
        wisp_log_warn("storage", "cannot end upload session %s: %s", upload_id,
                      wisp_strerror(err));
out:
    free(u.blob);
    free(u.md5);
    free(u.crc);
    free(key);
    json_decref(doc);
    wisp_store_rollback(txn);
}

/* --- upload: entry ---------------------------------------------------------------- */

void stg_object_upload(struct wisp_http_req *req, const char *bucket)
{
    struct wispd_caller *c = wispd_authenticate(req);
    struct wisp_txn *txn = NULL;
    struct stg_bucket b = {0};
    struct preconds pc;
    char *inflated = NULL;
    if (!c)
        return;
    const char *type = wisp_http_query(req, "uploadType");
    const char *upload_id = wisp_http_query(req, "upload_id");
    const char *m = req->method;
    /* gcloud --gzip-in-flight compresses the request body only; what is
     * stored (and what Content-Range counts) is the inflated bytes. */
    const char *body = req->body;
    size_t body_len = req->body_len;
    const char *ce = wisp_http_header(req, "content-encoding");
    if (ce && strcasecmp(ce, "gzip") == 0) {
        enum wisp_err zerr = stg_gunzip(req->body, req->body_len, MAX_OBJECT, &inflated,
                                        &body_len);
        if (zerr) {
            wisp_api_error(req, 400, NULL, "The gzip request body is %s.",
                           zerr == WISP_ETOOBIG ? "too large once inflated" : "malformed");
            goto out;
        }
        body = inflated;
    } else if (ce && strcasecmp(ce, "identity") != 0) {
        wisp_api_error(req, 400, NULL, "Unsupported Content-Encoding '%.32s'.", ce);
        goto out;
    }
    if (upload_id) {
        if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "DELETE") == 0)
            resumable_continue(req, c, bucket, upload_id, body, body_len);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on an upload session.", m);
        goto out;
    }
    if (strcmp(m, "POST") != 0) {
        wisp_api_error(req, 405, NULL, "Method %s is not allowed on uploads.", m);
        goto out;
    }
    if (!type || (strcmp(type, "media") && strcmp(type, "multipart") &&
                  strcmp(type, "resumable"))) {
        wisp_api_error(req, 400, NULL, "Invalid or missing uploadType: use media, multipart or "
                                       "resumable.");
        goto out;
    }
    if (!preconds_parse(req, &pc))
        goto out;
    if (wisp_http_query(req, "predefinedAcl")) {
        wisp_api_error(req, 400, NULL, "Cannot insert legacy ACL for an object when uniform "
                                       "bucket-level access is enabled.");
        goto out;
    }
    if (strcmp(type, "resumable") == 0) {
        resumable_start(req, c, bucket);
        goto out;
    }
    /* Refuse early, before any bytes reach the disk. */
    enum wisp_err err = wisp_store_begin(wispd_store(req), 0, &txn);
    if (err) {
        wispd_store_error(req, err);
        goto out;
    }
    int ok = stg_bucket_open(req, txn, c, bucket, "storage.objects.create", &b);
    wisp_store_rollback(txn);
    txn = NULL;
    if (!ok)
        goto out;
    if (strcmp(type, "multipart") == 0) {
        upload_multipart(req, c, &pc, bucket, body, body_len);
    } else {
        const char *name = upload_name(req, NULL);
        if (name)
            upload_bytes(req, c, &pc, bucket, name, NULL, wisp_http_header(req, "content-type"),
                         body, body_len);
    }
out:
    free(inflated);
    stg_bucket_free(&b);
    wisp_store_rollback(txn);
    wispd_caller_free(c);
}
