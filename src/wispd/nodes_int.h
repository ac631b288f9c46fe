/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the node supervisor (nodes.c): the node identity of
 * GCE_METADATA pools (nodes_gce.c), the account and the key file its
 * wisp-metadata signs JWT-bearer grants with. */
#ifndef WISPD_NODES_INT_H
#define WISPD_NODES_INT_H

#include <jansson.h>
#include <stddef.h>
#include "wisp/store.h"

/* The pool's node account: config.serviceAccount, or for "default" and
 * none the project's Compute Engine default account, as GKE does. Caller
 * frees. */
char *wispd_nodes_gce_email(const json_t *pool_config, const char *project_number);

/* Where a pool's key file lives: DIR/node-sa-POOL.json. */
void wispd_nodes_gce_key_path(const char *dir, const char *pool, char *out, size_t len);

enum wispd_gce_key {
    WISPD_GCE_KEY_READY,      /* the file holds a live key of the account */
    WISPD_GCE_KEY_MAKE,       /* a key (and maybe the default account) is to be made */
    WISPD_GCE_KEY_NO_ACCOUNT, /* a named account that does not exist or is disabled */
};

/* Looks at the key file and the store (txn, read). */
enum wispd_gce_key wispd_nodes_gce_key_check(struct wisp_txn *txn, const char *path,
                                             const char *email, const char *project_number);

/* With no transaction open on st: creates the Compute Engine default
 * account if it is the one missing, mints a key, writes the file (0600) and
 * deletes the key it replaces. 0 on success. */
int wispd_nodes_gce_key_make(struct wisp_store *st, const char *project_id,
                             const char *project_number, const char *email, const char *path);

/* Deletes every pool key under dir, from the store and the disk. */
void wispd_nodes_gce_keys_drop(struct wisp_store *st, const char *dir);

#endif
