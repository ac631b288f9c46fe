/* SPDX-License-Identifier: Apache-2.0 */
/* FNV-1a, 64 bits: the one hash for in-memory tables, cache slots and
 * ETags. Not cryptographic; a collision may only cost a table a slot. */
#ifndef WISP_HASH_H
#define WISP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define WISP_FNV1A_BASIS 0xcbf29ce484222325ULL

/* Continues hash h (WISP_FNV1A_BASIS to start) over n bytes at p. */
static inline uint64_t wisp_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* The hash of a NUL-terminated string (without its NUL). */
static inline uint64_t wisp_fnv1a_str(const char *s)
{
    uint64_t h = WISP_FNV1A_BASIS;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

#endif
