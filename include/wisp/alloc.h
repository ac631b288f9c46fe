/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation. wisp follows h2o and redis here: the HTTP library it is built
 * on dies on OOM, so wisp does too, in one place, with a message. Every
 * allocation in wisp goes through these wrappers so that a fault-injection
 * build can fail the Nth one (WISP_ALLOC_FAIL_AT, debug builds only). */
#ifndef WISP_ALLOC_H
#define WISP_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

/* Never return NULL: on failure they log and abort(). */
void *wisp_xmalloc(size_t n);
void *wisp_xcalloc(size_t n, size_t size);
void *wisp_xrealloc(void *p, size_t n);
char *wisp_xstrdup(const char *s);
char *wisp_xstrndup(const char *s, size_t n);
/* Copies n strings into one allocation and points *dst[i] at the copy of
 * src[i] (NULL stays NULL); returns the block, which frees them all. For
 * records of several short strings kept by the thousand: one block costs
 * one malloc header instead of n, each rounded up to 32 bytes. */
char *wisp_xpack(size_t n, const char *const src[], char **const dst[]);
/* printf into a fresh string; caller frees with free(). */
char *wisp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees p and sets it to NULL, so a second free is harmless. */
#define WISP_FREE(p)                                                                               \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

/* Wipes a secret (key, token) before freeing it. n may be 0 for strlen. */
void wisp_secret_free(void *p, size_t n);

#endif
