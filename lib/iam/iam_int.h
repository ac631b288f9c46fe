/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libwisp: the pieces the authorization index (lib/iam/index*.c)
 * and the decision (lib/iam/authorize.c) share. Match keys turn "does this
 * member match this caller?" into string equality; see AUTHORIZE.md. */
#ifndef WISP_IAM_INT_H
#define WISP_IAM_INT_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/iam.h"

/* Longest match key: a key is at most one byte longer than the canonical
 * member it comes from, and members are at most WISP_MEMBER_MAX_LEN bytes. A
 * caller fact that would make a longer key matches no member, so the key is
 * not built at all. */
#define WISP__IAM_KEY_MAX (WISP_MEMBER_MAX_LEN + 2)

/* The byte that separates the parts of a key. Members are printable ASCII,
 * so no member part contains it; a caller part that does yields a key with
 * more separators than any member key of its type, which equals none. */
#define WISP__IAM_KEY_SEP '\x01'

/* Writes the match key of member m into buf (cap bytes, NUL-terminated) and
 * returns its length, or 0 if m can never match any caller (deleted,
 * workforce, agent, folder/organization sets, non-GKE subjects...) or the
 * key would not fit. The contract the index rests on: wisp_member_matches(m,
 * c) is 1 iff m's key is one of the keys of wisp__iam_keyset_init(c). */
size_t wisp__iam_member_key(const struct wisp_member *m, char *buf, size_t cap);

/* The keys a caller could match, each with its hash: one per member form
 * the caller could be named by. Built once per decision; owns its memory. */
struct wisp__iam_key {
    size_t off;    /* into buf */
    size_t len;    /* bytes, no NUL */
    uint64_t hash; /* wisp__iam_hash(key) */
};
struct wisp__iam_keyset {
    size_t n;
    size_t cap;
    struct wisp__iam_key *keys; /* keys_inline or from malloc() */
    char *buf;                  /* buf_inline or from malloc() */
    size_t buf_len, buf_cap;
    struct wisp__iam_key keys_inline[12];
    char buf_inline[1024];
};

/* Fills ks with the keys of caller c (NULL: anonymous). Release with
 * wisp__iam_keyset_cleanup(). Never fails (allocation failure aborts, as
 * wisp_xmalloc does everywhere). */
void wisp__iam_keyset_init(struct wisp__iam_keyset *ks, const struct wisp_caller *c);
void wisp__iam_keyset_cleanup(struct wisp__iam_keyset *ks);

/* 64-bit hash of len bytes (word-at-a-time, murmur3 finalizer). */
uint64_t wisp__iam_hash(const char *s, size_t len);

/* Whether role grants permission for this target: predefined roles from
 * data/roles.json, custom ones from t->custom_roles. Implemented in authorize.c, shared by every path so that
 * the linear and the indexed decision resolve roles the same way. */
int wisp__iam_role_grants(const struct wisp_iam_target *t, const char *role,
                          const char *permission);

/* The first binding (lowest index in the policy) of ix that grants
 * permission to a caller with keys ks: a member key in ks, a role granting
 * permission, and no condition or one that is true under t->env. Returns
 * its index, or -1. *role_out (if not NULL) gets its role (owned by ix). */
long wisp__iam_index_first_grant(const struct wisp_iam_index *ix,
                                 const struct wisp__iam_keyset *ks, const char *permission,
                                 const struct wisp_iam_target *t, const char **role_out);

#endif
