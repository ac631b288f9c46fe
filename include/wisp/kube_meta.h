/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes API's static surfaces, as pure builders of jansson values:
 * /version, discovery (legacy and aggregated v2), OpenAPI v3 for the core
 * group, and the meta.k8s.io/v1 Table that kubectl get prints. No I/O, no
 * store: the server feeds objects in and sends what comes out.
 * docs/internals/KUBE_META.md says what kubectl needs from each. */
#ifndef WISP_KUBE_META_H
#define WISP_KUBE_META_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* What /version reports. The gcloud kubectl dispatcher execs
 * kubectl.1.<minor>, so the minor picks the client. The git version is the
 * Container API's master version with a "v". */
#define WISP_KUBE_MAJOR "1"
#define WISP_KUBE_MINOR "32"
#define WISP_KUBE_GIT_VERSION "v1.32.4-gke.1415000"

/* The Content-Type of an aggregated discovery answer. client-go takes the
 * body as an APIGroupDiscoveryList only when the reply carries exactly
 * these parameters; with plain application/json it parses the legacy
 * shapes, whatever the body holds. */
#define WISP_KUBE_DISCOVERY_V2_TYPE                                                            \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

/* 1 when an Accept header asks for WISP_KUBE_DISCOVERY_V2_TYPE: one of its
 * media ranges is application/json with g=apidiscovery.k8s.io, v=v2 and
 * as=APIGroupDiscoveryList. kubectl 1.27-1.29 ask for v2beta1 only and must
 * get the legacy shapes (a v2 body under a content type they did not ask
 * for makes them find no resources at all), so a substring test for
 * "as=APIGroupDiscoveryList" is not enough. accept may be NULL. */
int wisp_kube_wants_discovery_v2(const char *accept);

/* Every function below returns a new value the caller owns (json_decref);
 * NULL only when out of memory. */

/* /version: major, minor, gitVersion, gitCommit, gitTreeState, buildDate,
 * goVersion, compiler, platform, as GKE answers. */
json_t *wisp_kube_version(void);

/* /api as legacy APIVersions: versions ["v1"] and one
 * serverAddressByClientCIDRs entry (0.0.0.0/0 → server_address, e.g.
 * "127.0.0.1:16443"). server_address NULL leaves the list empty. */
json_t *wisp_kube_api_versions(const char *server_address);

/* /apis as legacy APIGroupList. wisp serves no named group, so it is empty:
 * nothing the seed's kubectl commands run needs one (TokenRequest is the
 * serviceaccounts/token subresource of the core group). */
json_t *wisp_kube_api_groups(void);

/* /api/v1 as APIResourceList: namespaces, nodes, pods (+ exec, status),
 * serviceaccounts (+ token), each with singularName, namespaced, kind,
 * verbs, shortNames, categories and storageVersionHash as kube-apiserver
 * 1.32 lists them, and only the verbs wisp serves. */
json_t *wisp_kube_core_resources(void);

/* Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList), the
 * answer to an Accept that asks for it: apis 0 is /api (the core group with
 * the resources above, subresources nested), apis 1 is /apis (no items).
 * Send it with Content-Type WISP_KUBE_DISCOVERY_V2_TYPE. */
json_t *wisp_kube_discovery_v2(int apis);

/* /openapi/v3: {"paths":{"api/v1":{"serverRelativeURL":
 * "/openapi/v3/api/v1?hash=H"}}} with H = wisp_kube_openapi_hash(). */
json_t *wisp_kube_openapi_index(void);

/* /openapi/v3/api/v1: an OpenAPI 3.0 document with a PATCH operation per
 * kind (x-kubernetes-group-version-kind, and the fieldValidation query
 * parameter that makes kubectl leave validation to the server) and
 * component schemas for Pod, ServiceAccount, Namespace and Node with the
 * fields a user writes, their x-kubernetes-patch-strategy/merge-key, and
 * the GVK extension `kubectl explain` looks for. */
json_t *wisp_kube_openapi_core(void);

/* The document's hash: uppercase hex SHA-512 of its compact, key-sorted
 * dump (kube-apiserver's format), computed once per process. Static
 * storage; thread-safe. The server may compare it with ?hash= and send it
 * as the ETag. */
const char *wisp_kube_openapi_hash(void);

/* ---- Table -------------------------------------------------------------- */

/* What each row's `object` holds: the includeObject query parameter. */
enum wisp_kube_include {
    WISP_KUBE_INCLUDE_METADATA = 0, /* "Metadata" (the default): PartialObjectMetadata */
    WISP_KUBE_INCLUDE_OBJECT = 1,   /* "Object": the whole object */
    WISP_KUBE_INCLUDE_NONE = 2,     /* "None": null */
};

/* includeObject's value (NULL or "" is Metadata) as an enum
 * wisp_kube_include, or -1 for anything else. kube-apiserver answers -1's
 * case with 400 BadRequest: "Unable to convert to Table as requested:
 * includeObject: Unsupported value: \"X\": supported values: \"Metadata\",
 * \"None\", \"Object\"". */
int wisp_kube_include_parse(const char *value);

/* A meta.k8s.io/v1 Table of items (an array of objects of one resource,
 * borrowed), as kube-apiserver's printers make it: every column, wide ones
 * (priority 1) included, since kubectl picks by priority.
 *   pods            NAME READY STATUS RESTARTS AGE | IP NODE NOMINATED-NODE READINESS-GATES
 *   namespaces      NAME STATUS AGE
 *   serviceaccounts NAME SECRETS AGE
 *   nodes           NAME STATUS ROLES AGE VERSION | INTERNAL-IP EXTERNAL-IP OS-IMAGE
 *                   KERNEL-VERSION CONTAINER-RUNTIME
 *   anything else   NAME, CREATED AT (kube-apiserver's default table)
 * now is the server's clock (Unix seconds) for AGE. resource_version goes
 * to metadata.resourceVersion (NULL leaves it out); a paged list's
 * metadata.continue is the caller's to add. include_object is an enum
 * wisp_kube_include. Pods that succeeded or failed carry the row condition
 * Completed, as kube-apiserver sets it. */
json_t *wisp_kube_table(const char *resource, const json_t *items, int64_t now,
                        const char *resource_version, int include_object);

/* The object of one watch event in Table form (kubectl get -w): a Table of
 * one row for obj (borrowed), with metadata.resourceVersion taken from the
 * object. kube-apiserver sends the column definitions with the first event
 * only (headers 1) and null after (headers 0); kubectl keeps the last ones
 * it saw. Sending them every time also works. */
json_t *wisp_kube_table_event(const char *resource, const json_t *obj, int64_t now,
                              int include_object, int headers);

/* AGE as kube-apiserver prints it (duration.HumanDuration): seconds
 * elapsed → "0s", "59s", "119s", "2m", "3m12s", "10m", "179m", "3h",
 * "7h59m", "8h", "47h", "2d", "7d23h", "8d", "729d", "2y", "2y3d", "8y";
 * below -1 "<invalid>". Writes at most len bytes, NUL-terminated. */
void wisp_kube_human_duration(int64_t seconds, char *out, size_t len);

/* An RFC 3339 timestamp as Go's time.Parse(time.RFC3339) reads it
 * ("2026-11-28T09:19:19Z", fraction and numeric offset allowed, years
 * 1-9999) as Unix seconds in *out. Returns 0, or -1 if s is not one (then
 * *out is untouched). */
int wisp_kube_time_parse(const char *s, int64_t *out);

/* Internal to lib/kube: "create get" as ["create","get"] (words split on
 * single or repeated spaces). */
json_t *wisp__kube_words(const char *words);

#endif
