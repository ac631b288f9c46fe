/* SPDX-License-Identifier: Apache-2.0 */
/* Private to wispd: compiled IAM policies cached per worker thread, so a
 * decision costs the same whatever the size of the policies it reads
 * (docs/internals/AUTHORIZE.md, "Caching indexes in wispd"). */
#ifndef WISPD_AUTHZ_CACHE_H
#define WISPD_AUTHZ_CACHE_H

#include <stddef.h>
#include "wisp/iam.h"
#include "wisp/store.h"
#include "wispd.h"

/* Bounds of one thread's cache: entries (a policy document, or a project's
 * parent), and bytes of compiled indexes and custom roles. The least
 * recently used entries go first. WISPD_AUTHZ_CACHE_ENTRIES in the
 * environment overrides the first (0 turns caching off: every decision
 * walks the stored JSON, the old path; bench/authz/wispd.sh compares both). */
#define WISPD_AUTHZ_CACHE_ENTRIES 4096
#define WISPD_AUTHZ_CACHE_BYTES ((size_t)256 << 20)

/* Longest policy-document name a chain holds (the names wispd uses are
 * far shorter: a bucket's is at most 242 bytes). */
#define WISPD_POLICY_NAME_MAX 300

struct wispd_authz_cache;

/* A cache of at most max_entries (at least 8) and about max_bytes. Caller
 * frees with wispd_authz_cache_free(). Not thread-safe: one per thread. */
struct wispd_authz_cache *wispd_authz_cache_new(size_t max_entries, size_t max_bytes);
void wispd_authz_cache_free(struct wispd_authz_cache *c);

/* The calling thread's cache, made on first use and freed when the thread
 * exits; NULL when caching is off. */
struct wispd_authz_cache *wispd_authz_cache_thread(void);

/* Names the policy documents of r's chain, nearest first, into names: r's
 * own (unless r is the project), its project's, and, when the project
 * document exists (have_project), its organization's ("organizations/-"
 * when it has no parent id, whose policy is always empty). Returns how
 * many. Shared by the cached and the JSON paths so both read one chain. */
int wispd_authz_chain_names(const struct wispd_resource *r, int have_project, const char *org,
                            char names[3][WISPD_POLICY_NAME_MAX]);

/* wisp_authorize over r's chain, with each policy compiled once and reused
 * for as long as its store revision, and the revisions of the custom roles
 * it binds, stay the same. txn must not have written anything
 * (wisp_store_txn_dirty), so that everything cached was committed. *allowed
 * and why as in wisp_authorize, identical to the linear walk. WISP_EIO on a
 * store failure. */
enum wisp_err wispd_authz_decide(struct wispd_authz_cache *c, struct wisp_txn *txn,
                                 const struct wisp_caller *who, const char *permission,
                                 const struct wispd_resource *r,
                                 const struct wisp_cond_env *env, int *allowed, char *why,
                                 size_t whylen);

struct wispd_authz_cache_stats {
    size_t entries, bytes;
    size_t hits, builds, evictions; /* since the cache was made */
};
void wispd_authz_cache_stats(const struct wispd_authz_cache *c,
                             struct wispd_authz_cache_stats *out);

#endif
