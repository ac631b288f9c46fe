/* SPDX-License-Identifier: Apache-2.0 */
/* The three PATCH body types kubectl sends, as pure functions on jansson
 * values: JSON merge patch (RFC 7386), Kubernetes strategic merge patch for
 * core/v1 objects, and JSON patch (RFC 6902). No I/O, no schema beyond a
 * small table of merge keys; docs/internals/KUBE_PATCH.md lists what is and
 * is not implemented. */
#ifndef WISP_KUBE_PATCH_H
#define WISP_KUBE_PATCH_H

#include <stddef.h>
#include <jansson.h>

/* Limits. Every function refuses, with a reason, a patch that nests objects
 * and arrays more than WISP_KUBE_PATCH_MAX_DEPTH levels ({} is one level).
 * A JSON patch may hold at most WISP_KUBE_PATCH_MAX_OPS operations, may not
 * place a value deeper than WISP_KUBE_PATCH_MAX_DEPTH levels below the root,
 * and its copy operations together may duplicate at most
 * WISP_KUBE_PATCH_MAX_COPY JSON values (else 10,000 copies of the root would
 * double the document 10,000 times). A strategic merge list (merged by key
 * or as a set of primitives) may hold at most WISP_KUBE_PATCH_MAX_LIST
 * elements in the document and in the patch. */
#define WISP_KUBE_PATCH_MAX_DEPTH 64
#define WISP_KUBE_PATCH_MAX_OPS 10000
#define WISP_KUBE_PATCH_MAX_COPY 100000
#define WISP_KUBE_PATCH_MAX_LIST 4096

/* Each function returns a new value (the caller owns it and frees it with
 * json_decref) and leaves doc and patch untouched; the result shares no
 * value with either. On failure it returns NULL and writes a one-line
 * reason (no CR/LF, truncated to errlen) to err, which may be NULL.
 * Failures are bad patches (kube-apiserver answers 422 for those), patches
 * over the limits above, and out of memory ("out of memory").
 *
 * The caller parses the body; parse it with JSON_REJECT_DUPLICATES, as
 * RFC 6902 A.13 and Kubernetes' strict decoding expect. */

/* RFC 7386: null deletes a member, objects merge recursively, anything else
 * (arrays included) replaces; a patch that is not an object replaces the
 * whole document. doc may be any JSON value. */
json_t *wisp_kube_merge_patch(const json_t *doc, const json_t *patch, char *err, size_t errlen);

/* Kubernetes strategic merge patch, as the API server applies it to core/v1
 * objects (and to the pod templates of workload objects): maps merge and
 * null deletes; lists that Kubernetes marks patchStrategy=merge merge by
 * their patch merge key (containers by name, ports by containerPort, ...)
 * or, for lists of primitives (metadata.finalizers), as sets; every other
 * list replaces. Directives: $patch (replace, delete, merge) in a map or a
 * list element, $setElementOrder/FIELD, $deleteFromPrimitiveList/FIELD and
 * $retainKeys. Any other key starting with '$' is an error. No directive is
 * left in the result. doc and patch must be objects. */
json_t *wisp_kube_strategic_patch(const json_t *doc, const json_t *patch, char *err, size_t errlen);

/* RFC 6902: ops is an array of operations (add, remove, replace, move,
 * copy, test) with RFC 6901 pointers, applied in order to a copy of doc;
 * the first failing operation fails the whole patch, and its reason names
 * the operation's index (from 0), op and path:
 * "op 2 (replace /spec/x): no such member". */
json_t *wisp_kube_json_patch(const json_t *doc, const json_t *ops, char *err, size_t errlen);

#endif
