/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes protobuf request bodies (Content-Type
 * application/vnd.kubernetes.protobuf) as the JSON the same object would
 * have been sent as. kubectl 1.32 sends `create namespace`, `create
 * serviceaccount` and `create token` this way with no JSON fallback. Decoding is protobuf-c's,
 * from wisp's own proto/k8s.proto; docs/deps/protobuf-c.md says what it
 * covers. */
#ifndef WISP_KUBE_PB_H
#define WISP_KUBE_PB_H

#include <stddef.h>
#include <jansson.h>
#include "wisp/err.h"

/* Limits. A body longer than WISP_KUBE_PB_MAX_BODY is refused before any
 * decoding (kube-apiserver's own request limit is 3 MiB). protobuf-c's
 * allocations for one body may total at most WISP_KUBE_PB_MAX_DECODED
 * bytes: 2 wire bytes can stand for a 200-byte empty container, so the
 * body limit alone does not bound memory. */
#define WISP_KUBE_PB_MAX_BODY (3u << 20)
#define WISP_KUBE_PB_MAX_DECODED (32u << 20)

/* Decodes buf (len bytes: "k8s\0" + runtime.Unknown) into *out, a new JSON
 * object the caller owns: apiVersion and kind from the envelope, then the
 * object's fields under their JSON names, left out where Kubernetes' JSON
 * leaves them out (empty strings, false and 0 of omitempty fields, empty
 * lists and maps, the zero creationTimestamp); pointer fields (e.g.
 * automountServiceAccountToken) appear whenever they were sent. Times are
 * RFC 3339 in UTC, quantities their strings. The status of a Pod or a
 * TokenRequest is not read (the server sets it). Kinds: v1 Namespace,
 * ServiceAccount, Pod; authentication.k8s.io/v1 TokenRequest (kubectl
 * create token).
 *
 * Returns WISP_OK, or with *out NULL and a one-line reason in err (which
 * may be NULL): WISP_EINVAL for a body that is not one of those objects
 * (bad magic, truncated or malformed protobuf, naming the field; another
 * kind: "protobuf bodies for KIND are not supported; send JSON"; a string
 * that is not UTF-8; a field wisp does not decode that carries a value,
 * rather than dropping it), WISP_ETOOBIG over the limits above,
 * WISP_ENOMEM when jansson runs out of memory. */
enum wisp_err wisp_kube_pb_to_json(const void *buf, size_t len, json_t **out, char *err,
                                   size_t errlen);

#endif
