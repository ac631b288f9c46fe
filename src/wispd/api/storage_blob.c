/* SPDX-License-Identifier: Apache-2.0 */
/* Object bytes live in files, not in the store: STATE/objects/XX/ID, where
 * ID is 32 random hex digits and XX its first two. A blob is written to
 * STATE/objects/tmp, fsync'd, renamed into place and its directory fsync'd
 * before the metadata naming it is committed, so a crash can leave an
 * unreferenced file but never metadata without bytes. Also CRC32C. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "storage_int.h"

/* --- CRC32C ---------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    }
}

/* Slicing-by-8: eight table lookups per 8 bytes. */
uint32_t stg_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = p;
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][b[4]] ^
              crc_table[2][b[5]] ^ crc_table[1][b[6]] ^ crc_table[0][b[7]];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

/* --- files ------------------------------------------------------------------ */

static int id_valid(const char *id)
{
    return strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

static char *blob_path(const char *id)
{
    return wisp_xasprintf("%s/objects/%.2s/%s", wispd.state_dir, id, id);
}

static char *stage_path(const char *upload_id)
{
    return wisp_xasprintf("%s/objects/tmp/up-%s", wispd.state_dir, upload_id);
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Creates dir (0700) if missing; when it was created, fsyncs its parent so
 * the new entry is durable too. */
static int ensure_dir(const char *dir, const char *parent)
{
    if (mkdir(dir, 0700) == 0)
        return fsync_dir(parent);
    return errno == EEXIST ? 0 : -1;
}

static int ensure_dirs(const char *id)
{
    char *objects = wisp_xasprintf("%s/objects", wispd.state_dir);
    char *tmp = wisp_xasprintf("%s/tmp", objects);
    char *sub = id ? wisp_xasprintf("%s/%.2s", objects, id) : NULL;
    int rc = ensure_dir(objects, wispd.state_dir);
    if (!rc)
        rc = ensure_dir(tmp, objects);
    if (!rc && sub)
        rc = ensure_dir(sub, objects);
    if (rc)
        wisp_log_err("storage", "cannot create %s: %s", sub ? sub : tmp, strerror(errno));
    free(objects);
    free(tmp);
    free(sub);
    return rc;
}

void stg_random_id(char out[33])
{
    unsigned char r[16];
    static const char hex[] = "0123456789abcdef";
    RAND_bytes(r, sizeof(r));
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[32] = '\0';
}

static int write_all(int fd, const char *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Moves the fsync'd file at tmp to blob id's place, durably. */
static enum wisp_err install(const char *tmp, const char *id)
{
    char *dst = blob_path(id);
    char *dir = wisp_xasprintf("%s/objects/%.2s", wispd.state_dir, id);
    enum wisp_err err = WISP_OK;
    if (rename(tmp, dst) != 0 || fsync_dir(dir) != 0) {
        wisp_log_err("storage", "cannot install blob %s: %s", id, strerror(errno));
        unlink(tmp);
        unlink(dst);
        err = WISP_EIO;
    }
    free(dst);
    free(dir);
    return err;
}

enum wisp_err stg_blob_write(const void *p, size_t n, char **id_out)
{
    char id[33];
    stg_random_id(id);
    *id_out = NULL;
    if (ensure_dirs(id))
        return WISP_EIO;
    char *tmp = wisp_xasprintf("%s/objects/tmp/%s", wispd.state_dir, id);
    enum wisp_err err = WISP_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        wisp_log_err("storage", "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, p, n, 0) != 0 || fsync(fd) != 0) {
        wisp_log_err("storage", "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    err = install(tmp, id);
    if (!err)
        *id_out = wisp_xstrdup(id);
out:
    free(tmp);
    return err;
}

enum wisp_err stg_blob_read(const char *id, uint64_t off, size_t len, char **out)
{
    *out = NULL;
    if (!id_valid(id))
        return WISP_ESTORE;
    char *path = blob_path(id);
    enum wisp_err err = WISP_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno == ENOENT ? WISP_ENOTFOUND : WISP_EIO;
        goto out;
    }
    char *buf = wisp_xmalloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            wisp_log_err("storage", "short read of blob %s", id);
            err = WISP_EIO;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (err)
        free(buf);
    else
        *out = buf;
out:
    free(path);
    return err;
}

void stg_blob_unlink(const char *id)
{
    if (!id || !id_valid(id))
        return;
    char *path = blob_path(id);
    if (unlink(path) != 0 && errno != ENOENT)
        wisp_log_warn("storage", "cannot remove %s: %s", path, strerror(errno));
    free(path);
}

enum wisp_err stg_blob_stage_append(const char *upload_id, uint64_t off, const void *p, size_t n)
{
    if (!id_valid(upload_id) || ensure_dirs(NULL))
        return WISP_EIO;
    char *path = stage_path(upload_id);
    enum wisp_err err = WISP_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (off == 0 ? O_TRUNC : 0), 0600);
    if (fd < 0) {
        err = WISP_EIO;
        goto out;
    }
    /* Bytes past what the session recorded were never acknowledged (a
     * crash between write and commit): they are overwritten. Fewer bytes
     * than recorded means the file was lost: refuse rather than pad. */
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < off)
        err = WISP_EIO;
    else if (ftruncate(fd, (off_t)off) != 0 || write_all(fd, p, n, off) != 0 || fsync(fd) != 0)
        err = WISP_EIO;
    close(fd);
out:
    if (err)
        wisp_log_err("storage", "cannot stage upload %s: %s", upload_id, strerror(errno));
    free(path);
    return err;
}

enum wisp_err stg_blob_seal(const char *upload_id, unsigned char md5[16], uint32_t *crc,
                            uint64_t *size, char **id_out)
{
    char id[33];
    char *path = stage_path(upload_id);
    enum wisp_err err = WISP_EIO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = wisp_xmalloc(1 << 16);
    *id_out = NULL;
    *crc = 0;
    *size = 0;
    stg_random_id(id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !md || !EVP_DigestInit_ex(md, EVP_md5(), NULL) || ensure_dirs(id))
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 16);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        *crc = stg_crc32c(*crc, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    unsigned int mdlen = 16;
    if (!EVP_DigestFinal_ex(md, md5, &mdlen) || fsync(fd) != 0)
        goto out;
    err = install(path, id);
    if (!err)
        *id_out = wisp_xstrdup(id);
out:
    if (err)
        wisp_log_err("storage", "cannot seal upload %s: %s", upload_id, strerror(errno));
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    free(buf);
    free(path);
    return err;
}

void stg_blob_stage_unlink(const char *upload_id)
{
    if (!id_valid(upload_id))
        return;
    char *path = stage_path(upload_id);
    unlink(path);
    free(path);
}

enum wisp_err stg_gunzip(const char *in, size_t n, size_t max, char **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    *out = NULL;
    *out_len = 0;
    /* 16 + MAX_WBITS: gzip framing only. */
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return WISP_ENOMEM;
    size_t cap = n * 2 + 1024 < max ? n * 2 + 1024 : max + 1;
    char *buf = wisp_xmalloc(cap);
    enum wisp_err err = WISP_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = 0;
    size_t in_left = n;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (z.total_out == cap) {
            if (cap > max) {
                err = WISP_ETOOBIG;
                break;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = wisp_xrealloc(buf, cap);
        }
        if (z.avail_in == 0) {
            /* zlib counts in uInt: feed at most 1 GiB at a time. */
            uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            z.avail_in = chunk;
            in_left -= chunk;
        }
        z.next_out = (Bytef *)buf + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            err = WISP_EINVAL;
            break;
        }
        if (rc == Z_OK && z.avail_in == 0 && in_left == 0 && z.avail_out != 0) {
            err = WISP_EINVAL; /* truncated stream */
            break;
        }
    }
    if (!err && z.total_out > max)
        err = WISP_ETOOBIG;
    if (err) {
        free(buf);
    } else {
        *out = buf;
        *out_len = z.total_out;
    }
    inflateEnd(&z);
    return err;
}
