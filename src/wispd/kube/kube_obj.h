/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by objects.c, validate.c, sched.c and watch.c: loading objects,
 * and the per-kind rules a write must pass. */
#ifndef WISPD_KUBE_OBJ_H
#define WISPD_KUBE_OBJ_H

#include "kube.h"

void kube_uid(char out[37]);
enum wisp_err kube_load(struct wisp_txn *txn, const struct kube_req *k,
                        const struct kube_res *res, const char *ns, const char *name,
                        json_t **out, int64_t *rev);

/* Checks and completes a new object (name, namespace, uid, timestamps,
 * defaults, strict fields); on refusal answers and returns 0. */
int kube_validate_create(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                         const char *ns, json_t *o);
/* What a create does besides writing o, in the same transaction: a new
 * namespace gets its "default" ServiceAccount, a new pod a node. 0 after
 * answering. */
int kube_after_create(struct kube_req *k, struct wisp_txn *txn, const struct kube_res *res,
                      const char *ns, json_t *o);
/* Checks an update of cur to new (sub "status" or NULL) and makes new the
 * object to store: identity fields kept, status or spec carried over. */
int kube_validate_update(struct kube_req *k, const struct kube_res *res, const char *name,
                         const json_t *cur, json_t *new, const char *sub);
/* Before deleting cur: a namespace deletes its objects; a pod a node runs
 * is only marked (*marked = 1, cur updated). */
enum wisp_err kube_before_delete(struct kube_req *k, struct wisp_txn *txn,
                                 const struct kube_res *res, const char *ns, const char *name,
                                 json_t *cur, int *marked);
/* Binds pod to a node whose labels match its nodeSelector, or records why
 * none does. */
enum wisp_err kube_schedule(struct wisp_txn *txn, const struct kube_req *k, json_t *pod);
/* Writes the namespaces every cluster has (default, kube-system,
 * kube-public, kube-node-lease), each with its default ServiceAccount, if
 * missing. */
enum wisp_err kube_seed(struct wisp_txn *txn, const char *issuer);

#endif
