/* SPDX-License-Identifier: Apache-2.0 */
/* Google Kubernetes Engine (Container API v1) control plane: clusters, node
 * pools with their nodes, and the operations mutations return, in both the
 * locations/L and the older zones/Z URL forms, with the rules of Workload
 * Identity Federation for GKE (own-project pool only, GKE_METADATA pools
 * need it, Autopilot always has it, the organization policy that forbids
 * it) and each cluster's OIDC issuer. Layout: docs/internals/GKE.md. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "wisp/b64.h"
#include "wisp/log.h"
#include "wisp/pki.h"
#include "../wispd.h"

#define CLUSTER_KIND "gkecluster" /* "P/L/C"    {cluster, caCertPem, caKeyPem} */
#define POOL_KIND "gkenodepool"   /* "P/L/C/NP" {nodePool, suffix, nodes[]} */
#define OP_KIND "gkeoperation"    /* "P/L/OP"   the Operation */
#define GKE_VERSION "1.32.4-gke.1415000"
#define SELF "https://container.googleapis.com/v1/projects/"
#define WI_CONSTRAINT "constraints/iam.disableWorkloadIdentityClusterCreation"
#define SEG_MAX 128
#define MAX_SEGS 10
#define MAX_POOLS 32
#define MAX_POOL_NODES 100
/* Pod ranges: each cluster has 198.18.0.0/15, each node a /24 slot of it
 * whose first 2 x maxPodsPerNode addresses (rounded up to a power of two)
 * are its pod range, as GKE sizes a node's range. */
#define MAX_CLUSTER_NODES 512
#define MAX_PODS_DEFAULT 110 /* GKE's default for Standard clusters */
#define MAX_PODS_MIN 8       /* GKE's smallest: a /28 */
#define MAX_PODS_MAX 128     /* the most a /24 slot holds at 2 x (GKE goes to 256) */

/* --- request bodies ------------------------------------------------------ */

static const struct wisp_jfield wmc_fields[] = {{"mode", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield wic_fields[] = {{"workloadPool", WISP_J_STRING}, {NULL}};
static const struct wisp_jfield autopilot_fields[] = {
    {"enabled", WISP_J_BOOL}, {"workloadPolicyConfig", WISP_J_OBJECT},
    {"privilegedAdmissionConfig", WISP_J_OBJECT}, {NULL}};

/* NodeConfig: every v1 field is accepted; only workloadMetadataConfig has
 * an effect in wisp, the rest is kept as given. */
static const struct wisp_jfield node_config_fields[] = {
    {"machineType", WISP_J_STRING}, {"diskSizeGb", WISP_J_INT},
    {"oauthScopes", WISP_J_ARRAY, WISP_J_STRING}, {"serviceAccount", WISP_J_STRING},
    {"metadata", WISP_J_OBJECT}, {"imageType", WISP_J_STRING}, {"labels", WISP_J_OBJECT},
    {"localSsdCount", WISP_J_INT}, {"tags", WISP_J_ARRAY, WISP_J_STRING},
    {"preemptible", WISP_J_BOOL}, {"accelerators", WISP_J_ARRAY}, {"diskType", WISP_J_STRING},
    {"minCpuPlatform", WISP_J_STRING},
    {"workloadMetadataConfig", WISP_J_OBJECT, 0, wmc_fields}, {"taints", WISP_J_ARRAY},
    {"sandboxConfig", WISP_J_OBJECT}, {"nodeGroup", WISP_J_STRING},
    {"reservationAffinity", WISP_J_OBJECT}, {"shieldedInstanceConfig", WISP_J_OBJECT},
    {"linuxNodeConfig", WISP_J_OBJECT}, {"kubeletConfig", WISP_J_OBJECT},
    {"bootDiskKmsKey", WISP_J_STRING}, {"gcfsConfig", WISP_J_OBJECT},
    {"advancedMachineFeatures", WISP_J_OBJECT}, {"gvnic", WISP_J_OBJECT}, {"spot", WISP_J_BOOL},
    {"confidentialNodes", WISP_J_OBJECT}, {"fastSocket", WISP_J_OBJECT},
    {"resourceLabels", WISP_J_OBJECT}, {"loggingConfig", WISP_J_OBJECT},
    {"windowsNodeConfig", WISP_J_OBJECT}, {"localNvmeSsdBlockConfig", WISP_J_OBJECT},
    {"ephemeralStorageLocalSsdConfig", WISP_J_OBJECT}, {"soleTenantConfig", WISP_J_OBJECT},
    {"containerdConfig", WISP_J_OBJECT}, {"resourceManagerTags", WISP_J_OBJECT},
    {"enableConfidentialStorage", WISP_J_BOOL}, {"secondaryBootDisks", WISP_J_ARRAY},
    {"storagePools", WISP_J_ARRAY}, {"maxRunDuration", WISP_J_STRING},
    {"localSsdEncryptionMode", WISP_J_STRING}, {"effectiveCgroupMode", WISP_J_STRING},
    {"flexStart", WISP_J_BOOL}, {"bootDisk", WISP_J_OBJECT}, {NULL}};

static const struct wisp_jfield pool_fields[] = {
    {"name", WISP_J_STRING}, {"config", WISP_J_OBJECT, 0, node_config_fields},
    {"initialNodeCount", WISP_J_INT}, {"locations", WISP_J_ARRAY, WISP_J_STRING},
    {"networkConfig", WISP_J_OBJECT}, {"selfLink", WISP_J_STRING}, {"version", WISP_J_STRING},
    {"instanceGroupUrls", WISP_J_ARRAY}, {"status", WISP_J_STRING},
    {"statusMessage", WISP_J_STRING}, {"autoscaling", WISP_J_OBJECT},
    {"management", WISP_J_OBJECT}, {"maxPodsConstraint", WISP_J_OBJECT},
    {"conditions", WISP_J_ARRAY}, {"podIpv4CidrSize", WISP_J_INT},
    {"upgradeSettings", WISP_J_OBJECT}, {"placementPolicy", WISP_J_OBJECT},
    {"updateInfo", WISP_J_OBJECT}, {"etag", WISP_J_STRING},
    {"queuedProvisioning", WISP_J_OBJECT}, {"bestEffortProvisioning", WISP_J_OBJECT},
    {"autopilotConfig", WISP_J_OBJECT}, {NULL}};

/* Cluster: every v1 field is accepted and kept; output-only ones are
 * replaced by wisp's own values. */
static const struct wisp_jfield cluster_fields[] = {
    {"name", WISP_J_STRING}, {"description", WISP_J_STRING}, {"initialNodeCount", WISP_J_INT},
    {"nodeConfig", WISP_J_OBJECT, 0, node_config_fields}, {"masterAuth", WISP_J_OBJECT},
    {"loggingService", WISP_J_STRING}, {"monitoringService", WISP_J_STRING},
    {"network", WISP_J_STRING}, {"clusterIpv4Cidr", WISP_J_STRING},
    {"addonsConfig", WISP_J_OBJECT}, {"subnetwork", WISP_J_STRING},
    {"nodePools", WISP_J_ARRAY, WISP_J_OBJECT, pool_fields},
    {"locations", WISP_J_ARRAY, WISP_J_STRING}, {"enableKubernetesAlpha", WISP_J_BOOL},
    {"resourceLabels", WISP_J_OBJECT}, {"labelFingerprint", WISP_J_STRING},
    {"legacyAbac", WISP_J_OBJECT}, {"networkPolicy", WISP_J_OBJECT},
    {"ipAllocationPolicy", WISP_J_OBJECT}, {"masterAuthorizedNetworksConfig", WISP_J_OBJECT},
    {"maintenancePolicy", WISP_J_OBJECT}, {"binaryAuthorization", WISP_J_OBJECT},
    {"autoscaling", WISP_J_OBJECT}, {"networkConfig", WISP_J_OBJECT},
    {"defaultMaxPodsConstraint", WISP_J_OBJECT}, {"resourceUsageExportConfig", WISP_J_OBJECT},
    {"authenticatorGroupsConfig", WISP_J_OBJECT}, {"privateClusterConfig", WISP_J_OBJECT},
    {"databaseEncryption", WISP_J_OBJECT}, {"verticalPodAutoscaling", WISP_J_OBJECT},
    {"shieldedNodes", WISP_J_OBJECT}, {"releaseChannel", WISP_J_OBJECT},
    {"workloadIdentityConfig", WISP_J_OBJECT, 0, wic_fields},
    {"meshCertificates", WISP_J_OBJECT}, {"costManagementConfig", WISP_J_OBJECT},
    {"notificationConfig", WISP_J_OBJECT}, {"confidentialNodes", WISP_J_OBJECT},
    {"identityServiceConfig", WISP_J_OBJECT}, {"selfLink", WISP_J_STRING},
    {"zone", WISP_J_STRING}, {"endpoint", WISP_J_STRING},
    {"initialClusterVersion", WISP_J_STRING}, {"currentMasterVersion", WISP_J_STRING},
    {"currentNodeVersion", WISP_J_STRING}, {"createTime", WISP_J_STRING},
    {"status", WISP_J_STRING}, {"statusMessage", WISP_J_STRING},
    {"nodeIpv4CidrSize", WISP_J_INT}, {"servicesIpv4Cidr", WISP_J_STRING},
    {"instanceGroupUrls", WISP_J_ARRAY}, {"currentNodeCount", WISP_J_INT},
    {"expireTime", WISP_J_STRING}, {"location", WISP_J_STRING}, {"enableTpu", WISP_J_BOOL},
    {"tpuIpv4CidrBlock", WISP_J_STRING}, {"conditions", WISP_J_ARRAY},
    {"autopilot", WISP_J_OBJECT, 0, autopilot_fields}, {"id", WISP_J_STRING},
    {"nodePoolDefaults", WISP_J_OBJECT}, {"loggingConfig", WISP_J_OBJECT},
    {"monitoringConfig", WISP_J_OBJECT}, {"nodePoolAutoConfig", WISP_J_OBJECT},
    {"etag", WISP_J_STRING}, {"fleet", WISP_J_OBJECT}, {"securityPostureConfig", WISP_J_OBJECT},
    {"enableK8sBetaApis", WISP_J_OBJECT}, {"enterpriseConfig", WISP_J_OBJECT},
    {"secretManagerConfig", WISP_J_OBJECT}, {"compliancePostureConfig", WISP_J_OBJECT},
    {"satisfiesPzs", WISP_J_BOOL}, {"satisfiesPzi", WISP_J_BOOL},
    {"userManagedKeysConfig", WISP_J_OBJECT}, {"rbacBindingConfig", WISP_J_OBJECT},
    {"gkeAutoUpgradeConfig", WISP_J_OBJECT}, {"controlPlaneEndpointsConfig", WISP_J_OBJECT},
    {"parentProductConfig", WISP_J_OBJECT}, {"anonymousAuthenticationConfig", WISP_J_OBJECT},
    {"podAutoscaling", WISP_J_OBJECT}, {NULL}};

static const struct wisp_jfield create_cluster_fields[] = {
    {"cluster", WISP_J_OBJECT, 0, cluster_fields}, {"parent", WISP_J_STRING},
    {"projectId", WISP_J_STRING}, {"zone", WISP_J_STRING}, {NULL}};
/* ClusterUpdate is checked field by field in cluster_update(), so that a
 * real field wisp cannot apply is named as such, not as unknown. */
static const struct wisp_jfield update_cluster_fields[] = {
    {"name", WISP_J_STRING}, {"projectId", WISP_J_STRING}, {"zone", WISP_J_STRING},
    {"clusterId", WISP_J_STRING}, {"update", WISP_J_OBJECT}, {NULL}};
static const struct wisp_jfield create_pool_fields[] = {
    {"nodePool", WISP_J_OBJECT, 0, pool_fields}, {"parent", WISP_J_STRING},
    {"projectId", WISP_J_STRING}, {"zone", WISP_J_STRING}, {"clusterId", WISP_J_STRING},
    {NULL}};
static const struct wisp_jfield update_pool_fields[] = {
    {"name", WISP_J_STRING}, {"projectId", WISP_J_STRING}, {"zone", WISP_J_STRING},
    {"clusterId", WISP_J_STRING}, {"nodePoolId", WISP_J_STRING},
    {"workloadMetadataConfig", WISP_J_OBJECT, 0, wmc_fields}, {"nodeVersion", WISP_J_STRING},
    {"imageType", WISP_J_STRING}, {"etag", WISP_J_STRING}, {NULL}};

/* --- paths --------------------------------------------------------------- */

enum gke_what {
    W_CLUSTERS, W_CLUSTER, W_POOLS, W_POOL, W_POOL_UPDATE, W_OPS, W_OP, W_DISCOVERY, W_JWKS
};

struct gke_path {
    enum gke_what what;
    char project[SEG_MAX], location[SEG_MAX], cluster[SEG_MAX], pool[SEG_MAX], op[SEG_MAX];
};

static int seg_is(const char *s, const char *lit)
{
    return strcmp(s, lit) == 0;
}

/* /v1/projects/P/{locations,zones}/L/{clusters[/C[/nodePools[/NP[/update]]|
 * /.well-known/openid-configuration|/jwks]]|operations[/OP]}. Returns 0 when
 * the path names no method. */
static int parse_path(const char *path, struct gke_path *gp)
{
    char segs[MAX_SEGS][SEG_MAX];
    int n = 0;
    const char *p = path;
    memset(gp, 0, sizeof(*gp));
    while (*p == '/') {
        p++;
        size_t len = strcspn(p, "/");
        if (n == MAX_SEGS || len == 0 || len >= SEG_MAX)
            return 0;
        memcpy(segs[n], p, len);
        segs[n][len] = 0;
        n++;
        p += len;
    }
    if (*p || n < 6 || !seg_is(segs[0], "v1") || !seg_is(segs[1], "projects") ||
        !(seg_is(segs[3], "locations") || seg_is(segs[3], "zones")))
        return 0;
    for (int i = 0; i < n; i++)
        if (strchr(segs[i], ':'))
            return 0;
    snprintf(gp->project, SEG_MAX, "%s", segs[2]);
    snprintf(gp->location, SEG_MAX, "%s", segs[4]);
    if (seg_is(segs[5], "operations")) {
        if (n == 6)
            gp->what = W_OPS;
        else if (n == 7)
            gp->what = W_OP, snprintf(gp->op, SEG_MAX, "%s", segs[6]);
        else
            return 0;
        return 1;
    }
    if (!seg_is(segs[5], "clusters"))
        return 0;
    if (n == 6) {
        gp->what = W_CLUSTERS;
        return 1;
    }
    snprintf(gp->cluster, SEG_MAX, "%s", segs[6]);
    if (n == 7)
        gp->what = W_CLUSTER;
    else if (n == 9 && seg_is(segs[7], ".well-known") && seg_is(segs[8], "openid-configuration"))
        gp->what = W_DISCOVERY;
    else if (n == 8 && seg_is(segs[7], "jwks"))
        gp->what = W_JWKS;
    else if (seg_is(segs[7], "nodePools") && n <= 10) {
        if (n == 8)
            gp->what = W_POOLS;
        else if (n == 9)
            gp->what = W_POOL;
        else if (seg_is(segs[9], "update"))
            gp->what = W_POOL_UPDATE;
        else
            return 0;
        if (n >= 9)
            snprintf(gp->pool, SEG_MAX, "%s", segs[8]);
    } else {
        return 0;
    }
    return 1;
}

/* GKE's rule for cluster and node pool names. */
static int name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 40 || !(s[0] >= 'a' && s[0] <= 'z') || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* A region (us-central1) or a zone (us-central1-a). */
static int location_valid(const char *s)
{
    const char *p = s;
    size_t a = strspn(p, "abcdefghijklmnopqrstuvwxyz");
    if (a == 0 || p[a] != '-')
        return 0;
    p += a + 1;
    size_t b = strspn(p, "abcdefghijklmnopqrstuvwxyz");
    size_t d = strspn(p + b, "0123456789");
    if (b == 0 || d == 0)
        return 0;
    p += b + d;
    if (!*p)
        return 1;
    return p[0] == '-' && p[1] >= 'a' && p[1] <= 'z' && !p[2];
}

/* --- small helpers --------------------------------------------------------- */

static void now_rfc3339(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    RAND_bytes(r, (int)nbytes);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* One request's context once the caller, project and permission are known. */
struct gke_ctx {
    struct wisp_http_req *req;
    struct wispd_caller *c;
    struct wisp_txn *txn;
    struct gke_path gp;
    char *pid; /* the project ID */
};

static void ctx_end(struct gke_ctx *x)
{
    wisp_store_rollback(x->txn);
    x->txn = NULL;
    free(x->pid);
    x->pid = NULL;
    wispd_caller_free(x->c);
    x->c = NULL;
}

/* Authenticates, checks the location and names, opens a transaction,
 * resolves the project and checks permission on it. Answers and returns 0
 * on any failure. */
static int ctx_begin(struct gke_ctx *x, int write, const char *perm, int any_location)
{
    struct wisp_http_req *req = x->req;
    x->c = wispd_authenticate(req);
    if (!x->c)
        return 0;
    if (!(any_location && strcmp(x->gp.location, "-") == 0) && !location_valid(x->gp.location)) {
        wisp_api_error(req, 400, NULL,
                       "Location \"%.100s\" is not a valid region or zone (like us-central1 or "
                       "us-central1-a).",
                       x->gp.location);
        return 0;
    }
    enum wisp_err err = wisp_store_begin(wispd_store(req), write, &x->txn);
    if (err) {
        wispd_store_error(req, err);
        return 0;
    }
    x->pid = wispd_project_id(x->txn, x->gp.project);
    if (!x->pid) {
        char name[200];
        snprintf(name, sizeof(name), "projects/%.100s", x->gp.project);
        wisp_api_denied(req, x->c->principal, perm, name);
        return 0;
    }
    return wispd_check_project(req, x->txn, x->c, perm, x->pid);
}

static char *cluster_key(const struct gke_ctx *x)
{
    return wisp_xasprintf("%s/%s/%s", x->pid, x->gp.location, x->gp.cluster);
}

static void not_found_cluster(struct gke_ctx *x)
{
    wisp_api_error(x->req, 404, NULL, "Not found: projects/%s/locations/%s/clusters/%s.", x->pid,
                   x->gp.location, x->gp.cluster);
}

/* Loads the cluster the path names; answers 404 when absent. */
static json_t *load_cluster(struct gke_ctx *x, int64_t *rev)
{
    char *key = cluster_key(x);
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(x->txn, CLUSTER_KIND, key, &doc, rev);
    free(key);
    if (err == WISP_ENOTFOUND)
        not_found_cluster(x);
    else if (err)
        wispd_store_error(x->req, err);
    return err ? NULL : doc;
}

static const char *cluster_pool(const json_t *doc)
{
    const char *p = json_string_value(json_object_get(
        json_object_get(json_object_get(doc, "cluster"), "workloadIdentityConfig"),
        "workloadPool"));
    return p && p[0] ? p : NULL;
}

static int is_autopilot(const json_t *doc)
{
    return json_is_true(json_object_get(
        json_object_get(json_object_get(doc, "cluster"), "autopilot"), "enabled"));
}

static const char *pool_mode(const json_t *pooldoc)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(pooldoc, "nodePool"), "config"),
                        "workloadMetadataConfig"),
        "mode"));
}

struct collect {
    json_t *arr;
};

static int collect_one(const struct wisp_doc *doc, void *arg)
{
    struct collect *c = arg;
    json_t *j = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (j)
        json_array_append_new(c->arr, j);
    return 0;
}

/* Every pool document of the cluster, in name order; NULL on a store
 * failure. */
static json_t *load_pools(struct wisp_txn *txn, const char *ckey)
{
    char *prefix = wisp_xasprintf("%s/", ckey);
    struct collect c = {json_array()};
    enum wisp_err err = wisp_store_list(txn, POOL_KIND, prefix, NULL, 0, collect_one, &c, NULL);
    free(prefix);
    if (err) {
        json_decref(c.arr);
        return NULL;
    }
    return c.arr;
}

/* The Cluster as the API shows it: the stored fields, the endpoint, the
 * node pools and the node count. */
static json_t *cluster_view(struct wisp_txn *txn, const char *ckey, const json_t *doc)
{
    json_t *cl = json_deep_copy(json_object_get(doc, "cluster"));
    char ep[40];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d",
             (int)json_integer_value(json_object_get(doc, "kubePort")));
    json_object_set_new(cl, "endpoint", json_string(ep));
    json_t *pools = load_pools(txn, ckey);
    json_t *np = json_array();
    size_t i, nodes = 0;
    json_t *pd;
    json_array_foreach(pools, i, pd) {
        json_array_append(np, json_object_get(pd, "nodePool"));
        nodes += json_array_size(json_object_get(pd, "nodes"));
    }
    json_decref(pools);
    json_object_set_new(cl, "nodePools", np);
    json_object_set_new(cl, "currentNodeCount", json_integer((json_int_t)nodes));
    return cl;
}

/* Records a finished operation and returns it (caller decrefs). */
static json_t *op_record(struct gke_ctx *x, const char *type, const char *target)
{
    char id[64], hex[9], now[80];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    random_hex(hex, 4);
    snprintf(id, sizeof(id), "operation-%lld-%s",
             (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, hex);
    now_rfc3339(now, sizeof(now));
    char *self = wisp_xasprintf(SELF "%s/locations/%s/operations/%s", x->pid, x->gp.location, id);
    json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", id, "zone",
                           x->gp.location, "operationType", type, "status", "DONE", "selfLink",
                           self, "targetLink", target, "startTime", now, "endTime", now);
    free(self);
    char *key = wisp_xasprintf("%s/%s/%s", x->pid, x->gp.location, id);
    enum wisp_err err = wispd_put_json(x->txn, OP_KIND, key, op, 0, NULL);
    free(key);
    if (err) {
        json_decref(op);
        return NULL;
    }
    return op;
}

/* Commits the transaction and answers the operation; 1 when committed. */
static int finish(struct gke_ctx *x, const char *type, const char *target)
{
    json_t *op = op_record(x, type, target);
    enum wisp_err err = op ? WISP_OK : WISP_EIO;
    if (!err) {
        err = wisp_store_commit(x->txn);
        x->txn = NULL;
    }
    if (err) {
        json_decref(op);
        wispd_store_error(x->req, err);
        return 0;
    }
    wisp_api_json(x->req, 200, op);
    return 1;
}

/* --- Workload Identity rules ------------------------------------------------ */

/* The only pool a cluster may use is its own project's. */
static int pool_ok(struct gke_ctx *x, const char *pool)
{
    char want[200];
    snprintf(want, sizeof(want), "%s.svc.id.goog", x->pid);
    if (strcmp(pool, want) == 0)
        return 1;
    wisp_api_error(x->req, 400, NULL,
                   "Invalid value for field 'workloadIdentityConfig.workloadPool': \"%.200s\". "
                   "The workload pool must be the cluster project's own, \"%s\".",
                   pool, want);
    return 0;
}

static int wi_allowed(struct gke_ctx *x)
{
    if (!wispd_orgpolicy_enforced(x->txn, x->pid, WI_CONSTRAINT))
        return 1;
    wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                   "Constraint %s violated for projects/%s: Workload Identity Federation for "
                   "GKE cannot be enabled on clusters in this project.",
                   WI_CONSTRAINT, x->pid);
    return 0;
}

/* The pool's metadata mode for a cluster with workload pool wpool: mode
 * as asked (NULL: the default). Answers 400 and returns NULL when not
 * allowed. */
static const char *mode_for(struct gke_ctx *x, const char *pool_name, const char *mode,
                            const char *wpool, int autopilot)
{
    if (mode && strcmp(mode, "MODE_UNSPECIFIED") == 0)
        mode = NULL;
    if (mode && strcmp(mode, "GKE_METADATA") != 0 && strcmp(mode, "GCE_METADATA") != 0) {
        wisp_api_error(x->req, 400, NULL,
                       "Invalid value for field 'nodePool.config.workloadMetadataConfig.mode': "
                       "\"%.40s\". Must be GCE_METADATA or GKE_METADATA.",
                       mode);
        return NULL;
    }
    if (!mode)
        return wpool ? "GKE_METADATA" : "GCE_METADATA";
    if (strcmp(mode, "GKE_METADATA") == 0 && !wpool) {
        wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                       "Workload Identity must be enabled on the cluster to use the GKE "
                       "Metadata Server (GKE_METADATA) on node pool \"%s\".",
                       pool_name);
        return NULL;
    }
    if (strcmp(mode, "GCE_METADATA") == 0 && autopilot) {
        wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                       "Workload Identity Federation for GKE is always enabled on Autopilot "
                       "clusters: node pool \"%s\" cannot use GCE_METADATA.",
                       pool_name);
        return NULL;
    }
    return mode;
}

/* --- nodes ----------------------------------------------------------------- */

static void node_labels(json_t *node, const char *pool, const char *mode)
{
    json_t *l = json_pack("{s:s, s:s}", "cloud.google.com/gke-nodepool", pool,
                          "kubernetes.io/hostname", json_string_value(json_object_get(node, "name")));
    if (strcmp(mode, "GKE_METADATA") == 0)
        json_object_set_new(l, "iam.gke.io/gke-metadata-server-enabled", json_string("true"));
    json_object_set_new(node, "labels", l);
}

/* Marks the /24 indexes used by existing pools' nodes. */
static void mark_used(const json_t *pools, unsigned char used[MAX_CLUSTER_NODES])
{
    size_t i, j;
    json_t *pd, *node;
    json_array_foreach(pools, i, pd) {
        json_array_foreach(json_object_get(pd, "nodes"), j, node) {
            json_int_t k = json_integer_value(json_object_get(node, "index"));
            if (k >= 0 && k < MAX_CLUSTER_NODES)
                used[k] = 1;
        }
    }
}

/* Builds the pool document for np (already validated) with count nodes,
 * taking free pod ranges from used. NULL when the cluster's range is full. */
static json_t *pool_doc(struct gke_ctx *x, const char *cluster, json_t *np, const char *mode,
                        json_int_t count, json_int_t max_pods,
                        unsigned char used[MAX_CLUSTER_NODES])
{
    int prefix = 32;
    while ((1 << (32 - prefix)) < 2 * max_pods)
        prefix--;
    const char *name = json_string_value(json_object_get(np, "name"));
    char suffix[9];
    random_hex(suffix, 4);
    json_t *nodes = json_array();
    int k = 0;
    for (json_int_t n = 0; n < count; n++) {
        while (k < MAX_CLUSTER_NODES && used[k])
            k++;
        if (k == MAX_CLUSTER_NODES) {
            json_decref(nodes);
            return NULL;
        }
        used[k] = 1;
        char nname[200], cidr[32];
        snprintf(nname, sizeof(nname), "gke-%s-%s-%s-%lld", cluster, name, suffix, (long long)n);
        snprintf(cidr, sizeof(cidr), "198.%d.%d.0/%d", 18 + k / 256, k % 256, prefix);
        json_t *node = json_pack("{s:s, s:s, s:i, s:I}", "name", nname, "podCIDR", cidr, "index",
                                 k, "created", (json_int_t)time(NULL));
        node_labels(node, name, mode);
        json_array_append_new(nodes, node);
    }
    json_t *cfg = json_object_get(np, "config");
    if (!cfg) {
        cfg = json_object();
        json_object_set_new(np, "config", cfg);
    }
    json_object_set_new(cfg, "workloadMetadataConfig", json_pack("{s:s}", "mode", mode));
    char *self = wisp_xasprintf(SELF "%s/locations/%s/clusters/%s/nodePools/%s", x->pid,
                                x->gp.location, cluster, name);
    json_object_set_new(np, "selfLink", json_string(self));
    free(self);
    json_object_set_new(np, "initialNodeCount", json_integer(count));
    json_object_set_new(np, "status", json_string("RUNNING"));
    json_object_set_new(np, "version", json_string(GKE_VERSION));
    json_object_set_new(np, "podIpv4CidrSize", json_integer(prefix));
    char mp[24]; /* int64 fields are JSON strings in Google's APIs */
    snprintf(mp, sizeof(mp), "%lld", (long long)max_pods);
    json_object_set_new(np, "maxPodsConstraint", json_pack("{s:s}", "maxPodsPerNode", mp));
    json_object_del(np, "statusMessage");
    return json_pack("{s:O, s:s, s:o}", "nodePool", np, "suffix", suffix, "nodes", nodes);
}

/* Validates a NodePool from a request; returns its node count or -1 after
 * answering 400. */
static json_int_t pool_check(struct gke_ctx *x, const json_t *np)
{
    const char *name = json_string_value(json_object_get(np, "name"));
    if (!name || !name_valid(name)) {
        wisp_api_error(x->req, 400, NULL,
                       "Invalid value for field 'nodePool.name': \"%.100s\". Must be a match of "
                       "regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and "
                       "'-' allowed, must start with a letter and end with an alphanumeric, and "
                       "must be no longer than 40 characters).",
                       name ? name : "");
        return -1;
    }
    json_t *c = json_object_get(np, "initialNodeCount");
    json_int_t count = c ? json_integer_value(c) : 3;
    if (count < 0 || count > MAX_POOL_NODES) {
        wisp_api_error(x->req, 400, NULL,
                       "Invalid value for field 'nodePool.initialNodeCount': %lld. Must be "
                       "between 0 and %d in wisp.",
                       (long long)count, MAX_POOL_NODES);
        return -1;
    }
    return count;
}

/* The maxPodsPerNode of a MaxPodsConstraint c (an int64: a JSON string or
 * number), else dflt when c or the field is absent; -1 after answering 400
 * for a value wisp cannot size. field names it in the error. */
static json_int_t max_pods(struct gke_ctx *x, const json_t *c, json_int_t dflt, const char *field)
{
    const json_t *v = json_object_get(c, "maxPodsPerNode");
    if (!v)
        return dflt;
    json_int_t n = -1;
    char shown[48] = "(not an integer)";
    if (json_is_integer(v)) {
        n = json_integer_value(v);
        snprintf(shown, sizeof(shown), "%lld", (long long)n);
    } else if (json_is_string(v)) {
        char *end;
        long long l = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && !*end)
            n = l;
        snprintf(shown, sizeof(shown), "%.40s", json_string_value(v));
    }
    if (n < MAX_PODS_MIN || n > MAX_PODS_MAX) {
        wisp_api_error(x->req, 400, NULL,
                       "Invalid value for field '%s.maxPodsPerNode': %s. Must be between %d "
                       "and %d in wisp.",
                       field, shown, MAX_PODS_MIN, MAX_PODS_MAX);
        return -1;
    }
    return n;
}

/* --- clusters -------------------------------------------------------------- */

static void cluster_create(struct gke_ctx *x)
{
    json_t *body = NULL, *cl = NULL, *doc = NULL, *pools = NULL;
    char *ca = NULL, *cakey = NULL, *ckey = NULL;
    body = wisp_api_body(x->req, create_cluster_fields);
    if (!body || !ctx_begin(x, 1, "container.clusters.create", 0))
        goto out;
    cl = json_deep_copy(json_object_get(body, "cluster"));
    const char *name = json_string_value(json_object_get(cl, "name"));
    if (!cl || !name || !name_valid(name)) {
        wisp_api_error(x->req, 400, NULL,
                       "Invalid value for field 'cluster.name': \"%.100s\". Must be a match of "
                       "regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and "
                       "'-' allowed, must start with a letter and end with an alphanumeric, and "
                       "must be no longer than 40 characters).",
                       name ? name : "");
        goto out;
    }
    snprintf(x->gp.cluster, SEG_MAX, "%s", name);
    ckey = cluster_key(x);
    json_t *existing = NULL;
    if (wispd_get_json(x->txn, CLUSTER_KIND, ckey, &existing, NULL) == WISP_OK) {
        json_decref(existing);
        wisp_api_error(x->req, 409, "ALREADY_EXISTS",
                       "Already exists: projects/%s/locations/%s/clusters/%s.", x->pid,
                       x->gp.location, name);
        goto out;
    }
    int autopilot =
        json_is_true(json_object_get(json_object_get(cl, "autopilot"), "enabled"));
    const char *wpool = json_string_value(
        json_object_get(json_object_get(cl, "workloadIdentityConfig"), "workloadPool"));
    /* Copied: the body's copy is replaced below. */
    char own[200], asked_pool[SEG_MAX * 2];
    snprintf(own, sizeof(own), "%s.svc.id.goog", x->pid);
    snprintf(asked_pool, sizeof(asked_pool), "%.250s", wpool ? wpool : "");
    wpool = asked_pool[0] ? asked_pool : NULL;
    if (wpool && !pool_ok(x, wpool))
        goto out;
    if (autopilot)
        wpool = own; /* always on, and always the project's own pool */
    if (wpool && !wi_allowed(x))
        goto out;
    /* The pools to create: as asked, else a default-pool. */
    json_t *asked = json_object_get(cl, "nodePools");
    pools = asked && json_array_size(asked) ? json_deep_copy(asked) : json_array();
    if (!json_array_size(pools)) {
        json_t *n = json_object_get(cl, "initialNodeCount");
        json_array_append_new(pools, json_pack("{s:s, s:I}", "name", "default-pool",
                                               "initialNodeCount",
                                               n ? json_integer_value(n) : (json_int_t)3));
        if (json_object_get(cl, "nodeConfig"))
            json_object_set(json_array_get(pools, 0), "config", json_object_get(cl, "nodeConfig"));
    }
    if (json_array_size(pools) > MAX_POOLS) {
        wisp_api_error(x->req, 400, NULL, "Too many node pools: at most %d.", MAX_POOLS);
        goto out;
    }
    json_int_t dflt_pods = max_pods(x, json_object_get(cl, "defaultMaxPodsConstraint"),
                                    MAX_PODS_DEFAULT, "cluster.defaultMaxPodsConstraint");
    if (dflt_pods < 0)
        goto out;
    char dp[24]; /* shown as GKE shows a VPC-native cluster's default */
    snprintf(dp, sizeof(dp), "%lld", (long long)dflt_pods);
    json_object_set_new(cl, "defaultMaxPodsConstraint", json_pack("{s:s}", "maxPodsPerNode", dp));
    unsigned char used[MAX_CLUSTER_NODES] = {0};
    size_t i;
    json_t *np;
    json_array_foreach(pools, i, np) {
        json_int_t count = pool_check(x, np);
        if (count < 0)
            goto out;
        json_int_t pods = max_pods(x, json_object_get(np, "maxPodsConstraint"), dflt_pods,
                                   "nodePool.maxPodsConstraint");
        if (pods < 0)
            goto out;
        const char *pname = json_string_value(json_object_get(np, "name"));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(pname, json_string_value(json_object_get(json_array_get(pools, j),
                                                                "name"))) == 0) {
                wisp_api_error(x->req, 400, NULL, "Node pool \"%s\" is listed twice.", pname);
                goto out;
            }
        }
        const char *mode = mode_for(
            x, pname,
            json_string_value(json_object_get(
                json_object_get(json_object_get(np, "config"), "workloadMetadataConfig"), "mode")),
            wpool, autopilot);
        if (!mode)
            goto out;
        json_t *pd = pool_doc(x, name, np, mode, count, pods, used);
        if (!pd) {
            wisp_api_error(x->req, 400, NULL,
                           "The cluster's pod range 198.18.0.0/15 has room for %d nodes.",
                           MAX_CLUSTER_NODES);
            goto out;
        }
        char *pkey = wisp_xasprintf("%s/%s", ckey, pname);
        enum wisp_err err = wispd_put_json(x->txn, POOL_KIND, pkey, pd, 0, NULL);
        free(pkey);
        json_decref(pd);
        if (err) {
            wispd_store_error(x->req, err);
            goto out;
        }
    }
    /* A CA per cluster: its API server's certificate will chain to it. */
    char cn[100];
    snprintf(cn, sizeof(cn), "gke-%s-ca", name);
    if (wisp_pki_ca_new(cn, &ca, &cakey) != WISP_OK) {
        wispd_store_error(x->req, WISP_EIO);
        goto out;
    }
    char *ca64 = wisp_b64_encode((const unsigned char *)ca, strlen(ca));
    char now[80], id[33];
    now_rfc3339(now, sizeof(now));
    random_hex(id, 16);
    char *self = wisp_xasprintf(SELF "%s/locations/%s/clusters/%s", x->pid, x->gp.location, name);
    json_object_del(cl, "nodePools");
    json_object_del(cl, "statusMessage");
    json_object_del(cl, "endpoint");
    json_object_del(cl, "conditions");
    json_t *out_only = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, "
                                     "s:s, s:s, s:s}",
                                     "location", x->gp.location, "zone", x->gp.location, "id", id,
                                     "selfLink", self, "createTime", now, "status", "RUNNING",
                                     "currentMasterVersion", GKE_VERSION, "currentNodeVersion",
                                     GKE_VERSION, "initialClusterVersion", GKE_VERSION,
                                     "masterAuth", "clusterCaCertificate", ca64,
                                     "clusterIpv4Cidr", "198.18.0.0/15", "network", "default",
                                     "subnetwork", "default");
    json_object_update(cl, out_only);
    json_decref(out_only);
    free(self);
    free(ca64);
    if (wpool)
        json_object_set_new(cl, "workloadIdentityConfig",
                            json_pack("{s:s}", "workloadPool", wpool));
    else
        json_object_del(cl, "workloadIdentityConfig");
    /* The Kubernetes API endpoint opens now, so that get-credentials and
     * kubectl work as soon as the operation is DONE; it closes again if the
     * create does not commit. */
    char *issuer = wispd_issuer_url(x->pid, x->gp.location, name);
    int kport = 0;
    enum wisp_err err = wispd_kube_open(issuer, ca, cakey, 0, &kport);
    doc = json_pack("{s:O, s:s, s:s, s:i}", "cluster", cl, "caCertPem", ca, "caKeyPem", cakey,
                    "kubePort", kport);
    if (!err)
        err = wispd_put_json(x->txn, CLUSTER_KIND, ckey, doc, 0, NULL);
    if (!err)
        err = wispd_issuer_ensure(x->txn, x->pid, x->gp.location, name, wpool);
    if (!err)
        err = wispd_kube_seed(x->txn, issuer);
    if (err) {
        wispd_kube_close(issuer);
        free(issuer);
        wispd_store_error(x->req, err);
        goto out;
    }
    char *target = wisp_xasprintf(SELF "%s/locations/%s/clusters/%s", x->pid, x->gp.location,
                                  name);
    if (!finish(x, "CREATE_CLUSTER", target))
        wispd_kube_close(issuer);
    free(target);
    free(issuer);
out:
    if (cakey)
        wisp_secret_free(cakey, 0);
    free(ca);
    free(ckey);
    json_decref(doc);
    json_decref(pools);
    json_decref(cl);
    json_decref(body);
}

static void cluster_get(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.clusters.get", 0))
        return;
    json_t *doc = load_cluster(x, NULL);
    if (!doc)
        return;
    char *ckey = cluster_key(x);
    wisp_api_json(x->req, 200, cluster_view(x->txn, ckey, doc));
    free(ckey);
    json_decref(doc);
}

struct list_ctx {
    struct wisp_txn *txn;
    json_t *out;
};

static int list_cluster(const struct wisp_doc *d, void *arg)
{
    struct list_ctx *lc = arg;
    json_t *doc = json_loadb(d->body, d->body_len, 0, NULL);
    if (doc) {
        json_array_append_new(lc->out, cluster_view(lc->txn, d->name, doc));
        json_decref(doc);
    }
    return 0;
}

static void cluster_list(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.clusters.list", 1))
        return;
    char *prefix = strcmp(x->gp.location, "-") == 0
                       ? wisp_xasprintf("%s/", x->pid)
                       : wisp_xasprintf("%s/%s/", x->pid, x->gp.location);
    struct list_ctx lc = {x->txn, json_array()};
    enum wisp_err err =
        wisp_store_list(x->txn, CLUSTER_KIND, prefix, NULL, 0, list_cluster, &lc, NULL);
    free(prefix);
    if (err) {
        json_decref(lc.out);
        wispd_store_error(x->req, err);
        return;
    }
    json_t *resp = json_object();
    if (json_array_size(lc.out))
        json_object_set(resp, "clusters", lc.out);
    json_decref(lc.out);
    wisp_api_json(x->req, 200, resp);
}

static void cluster_delete(struct gke_ctx *x)
{
    if (!ctx_begin(x, 1, "container.clusters.delete", 0))
        return;
    json_t *doc = load_cluster(x, NULL);
    if (!doc)
        return;
    char *ckey = cluster_key(x);
    char *url = wispd_issuer_url(x->pid, x->gp.location, x->gp.cluster);
    json_t *pools = load_pools(x->txn, ckey);
    enum wisp_err err = pools ? WISP_OK : WISP_EIO;
    size_t i;
    json_t *pd;
    json_array_foreach(pools, i, pd) {
        if (err)
            break;
        char *pkey = wisp_xasprintf(
            "%s/%s", ckey,
            json_string_value(json_object_get(json_object_get(pd, "nodePool"), "name")));
        err = wisp_store_delete(x->txn, POOL_KIND, pkey, -1);
        free(pkey);
    }
    if (!err)
        err = wisp_store_delete(x->txn, CLUSTER_KIND, ckey, -1);
    if (!err) {
        err = wispd_issuer_delete(x->txn, url);
        if (err == WISP_ENOTFOUND)
            err = WISP_OK;
    }
    if (!err)
        err = wispd_kube_forget(x->txn, url);
    if (err) {
        wispd_store_error(x->req, err);
    } else {
        char *target = wisp_xasprintf(SELF "%s/locations/%s/clusters/%s", x->pid,
                                      x->gp.location, x->gp.cluster);
        if (finish(x, "DELETE_CLUSTER", target))
            wispd_kube_close(url);
        free(target);
    }
    json_decref(pools);
    free(url);
    free(ckey);
    json_decref(doc);
}

/* PUT clusters/C: desiredWorkloadIdentityConfig is the one ClusterUpdate
 * field wisp applies. */
static void cluster_update(struct gke_ctx *x)
{
    json_t *body = wisp_api_body(x->req, update_cluster_fields);
    json_t *doc = NULL, *pools = NULL;
    char *ckey = NULL, *url = NULL;
    if (!body || !ctx_begin(x, 1, "container.clusters.update", 0))
        goto out;
    json_t *upd = json_object_get(body, "update");
    const char *k;
    json_t *v;
    json_object_foreach(upd, k, v) {
        if (strcmp(k, "desiredWorkloadIdentityConfig") != 0) {
            wisp_api_error(x->req, 400, NULL,
                           "Cluster update field 'update.%.100s' is not supported by wisp; only "
                           "update.desiredWorkloadIdentityConfig is.",
                           k);
            goto out;
        }
    }
    json_t *dwi = json_object_get(upd, "desiredWorkloadIdentityConfig");
    char msg[300];
    if (!dwi) {
        wisp_api_error(x->req, 400, NULL, "Must specify a field to update.");
        goto out;
    }
    if (wisp_api_check(dwi, wic_fields, "update.desiredWorkloadIdentityConfig", msg,
                       sizeof(msg))) {
        wisp_api_error(x->req, 400, NULL, "%s", msg);
        goto out;
    }
    int64_t rev = 0;
    doc = load_cluster(x, &rev);
    if (!doc)
        goto out;
    ckey = cluster_key(x);
    const char *want = json_string_value(json_object_get(dwi, "workloadPool"));
    if (want && !want[0])
        want = NULL;
    json_t *cl = json_object_get(doc, "cluster");
    if (!want) {
        if (is_autopilot(doc)) {
            wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                           "Workload Identity Federation for GKE cannot be disabled on Autopilot "
                           "cluster \"%s\".",
                           x->gp.cluster);
            goto out;
        }
        /* GKE refuses while node pools still run the GKE metadata server:
         * they would lose their credentials. The seed disables them first. */
        pools = load_pools(x->txn, ckey);
        char names[400] = "";
        size_t i;
        json_t *pd;
        json_array_foreach(pools, i, pd) {
            const char *m = pool_mode(pd);
            if (m && strcmp(m, "GKE_METADATA") == 0) {
                size_t l = strlen(names);
                snprintf(names + l, sizeof(names) - l, "%s\"%s\"", l ? ", " : "",
                         json_string_value(json_object_get(json_object_get(pd, "nodePool"),
                                                           "name")));
            }
        }
        if (names[0]) {
            wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                           "Workload Identity cannot be disabled on cluster \"%s\" while node "
                           "pools use the GKE Metadata Server: %s. Update them to "
                           "--workload-metadata=GCE_METADATA first.",
                           x->gp.cluster, names);
            goto out;
        }
        json_object_del(cl, "workloadIdentityConfig");
    } else {
        if (!pool_ok(x, want) || !wi_allowed(x))
            goto out;
        /* Existing pools are left as they are; new pools default to
         * GKE_METADATA from now on. */
        json_object_set_new(cl, "workloadIdentityConfig", json_pack("{s:s}", "workloadPool", want));
    }
    url = wispd_issuer_url(x->pid, x->gp.location, x->gp.cluster);
    enum wisp_err err = wispd_put_json(x->txn, CLUSTER_KIND, ckey, doc, rev, NULL);
    if (!err)
        err = wispd_issuer_set_pool(x->txn, url, want);
    if (err) {
        wispd_store_error(x->req, err);
        goto out;
    }
    finish(x, "UPDATE_CLUSTER", json_string_value(json_object_get(cl, "selfLink")));
out:
    free(url);
    free(ckey);
    json_decref(pools);
    json_decref(doc);
    json_decref(body);
}

/* --- node pools ------------------------------------------------------------ */

static char *pool_key(const struct gke_ctx *x)
{
    return wisp_xasprintf("%s/%s/%s/%s", x->pid, x->gp.location, x->gp.cluster, x->gp.pool);
}

static json_t *load_pool(struct gke_ctx *x, int64_t *rev)
{
    char *key = pool_key(x);
    json_t *pd = NULL;
    enum wisp_err err = wispd_get_json(x->txn, POOL_KIND, key, &pd, rev);
    free(key);
    if (err == WISP_ENOTFOUND)
        wisp_api_error(x->req, 404, NULL,
                       "Not found: projects/%s/locations/%s/clusters/%s/nodePools/%s.", x->pid,
                       x->gp.location, x->gp.cluster, x->gp.pool);
    else if (err)
        wispd_store_error(x->req, err);
    return err ? NULL : pd;
}

static void pool_get(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.clusters.get", 0))
        return;
    json_t *doc = load_cluster(x, NULL);
    json_t *pd = doc ? load_pool(x, NULL) : NULL;
    if (pd)
        wisp_api_json(x->req, 200, json_incref(json_object_get(pd, "nodePool")));
    json_decref(pd);
    json_decref(doc);
}

static void pool_list(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.clusters.get", 0))
        return;
    json_t *doc = load_cluster(x, NULL);
    if (!doc)
        return;
    char *ckey = cluster_key(x);
    json_t *pools = load_pools(x->txn, ckey);
    free(ckey);
    if (!pools) {
        wispd_store_error(x->req, WISP_EIO);
    } else {
        json_t *arr = json_array();
        size_t i;
        json_t *pd;
        json_array_foreach(pools, i, pd)
            json_array_append(arr, json_object_get(pd, "nodePool"));
        wisp_api_json(x->req, 200, json_pack("{s:o}", "nodePools", arr));
    }
    json_decref(pools);
    json_decref(doc);
}

static void pool_create(struct gke_ctx *x)
{
    json_t *body = wisp_api_body(x->req, create_pool_fields);
    json_t *doc = NULL, *pools = NULL, *np = NULL, *pd = NULL;
    char *ckey = NULL;
    if (!body || !ctx_begin(x, 1, "container.clusters.update", 0))
        goto out;
    doc = load_cluster(x, NULL);
    if (!doc)
        goto out;
    np = json_deep_copy(json_object_get(body, "nodePool"));
    if (!np) {
        wisp_api_error(x->req, 400, NULL, "Invalid argument: nodePool is required.");
        goto out;
    }
    json_int_t count = pool_check(x, np);
    if (count < 0)
        goto out;
    if (is_autopilot(doc)) {
        wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                       "Node pools of Autopilot cluster \"%s\" are managed by GKE and cannot be "
                       "created.",
                       x->gp.cluster);
        goto out;
    }
    const char *pname = json_string_value(json_object_get(np, "name"));
    snprintf(x->gp.pool, SEG_MAX, "%s", pname);
    const char *mode = mode_for(
        x, pname,
        json_string_value(json_object_get(
            json_object_get(json_object_get(np, "config"), "workloadMetadataConfig"), "mode")),
        cluster_pool(doc), 0);
    if (!mode)
        goto out;
    ckey = cluster_key(x);
    pools = load_pools(x->txn, ckey);
    if (!pools) {
        wispd_store_error(x->req, WISP_EIO);
        goto out;
    }
    if (json_array_size(pools) >= MAX_POOLS) {
        wisp_api_error(x->req, 400, NULL, "Too many node pools: at most %d.", MAX_POOLS);
        goto out;
    }
    /* A pool without its own constraint takes the cluster's default. */
    json_int_t dflt_pods = max_pods(
        x, json_object_get(json_object_get(doc, "cluster"), "defaultMaxPodsConstraint"),
        MAX_PODS_DEFAULT, "cluster.defaultMaxPodsConstraint");
    json_int_t pods = dflt_pods < 0 ? -1
                                    : max_pods(x, json_object_get(np, "maxPodsConstraint"),
                                               dflt_pods, "nodePool.maxPodsConstraint");
    if (pods < 0)
        goto out;
    unsigned char used[MAX_CLUSTER_NODES] = {0};
    mark_used(pools, used);
    pd = pool_doc(x, x->gp.cluster, np, mode, count, pods, used);
    if (!pd) {
        wisp_api_error(x->req, 400, NULL,
                       "The cluster's pod range 198.18.0.0/15 has room for %d nodes.",
                       MAX_CLUSTER_NODES);
        goto out;
    }
    char *pkey = pool_key(x);
    enum wisp_err err = wispd_put_json(x->txn, POOL_KIND, pkey, pd, 0, NULL);
    free(pkey);
    if (err == WISP_EEXIST) {
        wisp_api_error(x->req, 409, "ALREADY_EXISTS",
                       "Already exists: projects/%s/locations/%s/clusters/%s/nodePools/%s.",
                       x->pid, x->gp.location, x->gp.cluster, pname);
        goto out;
    }
    if (err) {
        wispd_store_error(x->req, err);
        goto out;
    }
    finish(x, "CREATE_NODE_POOL",
           json_string_value(json_object_get(json_object_get(pd, "nodePool"), "selfLink")));
out:
    free(ckey);
    json_decref(pd);
    json_decref(np);
    json_decref(pools);
    json_decref(doc);
    json_decref(body);
}

static void pool_update(struct gke_ctx *x)
{
    json_t *body = wisp_api_body(x->req, update_pool_fields);
    json_t *doc = NULL, *pd = NULL;
    if (!body || !ctx_begin(x, 1, "container.clusters.update", 0))
        goto out;
    doc = load_cluster(x, NULL);
    int64_t rev = 0;
    pd = doc ? load_pool(x, &rev) : NULL;
    if (!pd)
        goto out;
    json_t *wmc = json_object_get(body, "workloadMetadataConfig");
    const char *nv = json_string_value(json_object_get(body, "nodeVersion"));
    if (json_object_get(body, "imageType") || (nv && nv[0] && strcmp(nv, "-") != 0 &&
                                               strcmp(nv, GKE_VERSION) != 0)) {
        wisp_api_error(x->req, 400, NULL,
                       "Node pool updates other than workloadMetadataConfig are not supported by "
                       "wisp.");
        goto out;
    }
    if (!wmc) {
        wisp_api_error(x->req, 400, NULL, "Must specify a field to update.");
        goto out;
    }
    const char *mode = mode_for(x, x->gp.pool, json_string_value(json_object_get(wmc, "mode")),
                                cluster_pool(doc), is_autopilot(doc));
    if (!mode)
        goto out;
    json_t *np = json_object_get(pd, "nodePool");
    json_t *cfg = json_object_get(np, "config");
    if (!cfg) {
        cfg = json_object();
        json_object_set_new(np, "config", cfg);
    }
    json_object_set_new(cfg, "workloadMetadataConfig", json_pack("{s:s}", "mode", mode));
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(pd, "nodes"), i, node)
        node_labels(node, x->gp.pool, mode);
    char *pkey = pool_key(x);
    enum wisp_err err = wispd_put_json(x->txn, POOL_KIND, pkey, pd, rev, NULL);
    free(pkey);
    if (err) {
        wispd_store_error(x->req, err);
        goto out;
    }
    finish(x, "UPGRADE_NODES", json_string_value(json_object_get(np, "selfLink")));
out:
    json_decref(pd);
    json_decref(doc);
    json_decref(body);
}

static void pool_delete(struct gke_ctx *x)
{
    if (!ctx_begin(x, 1, "container.clusters.update", 0))
        return;
    json_t *doc = load_cluster(x, NULL);
    json_t *pd = doc ? load_pool(x, NULL) : NULL;
    if (pd && is_autopilot(doc)) {
        wisp_api_error(x->req, 400, "FAILED_PRECONDITION",
                       "Node pools of Autopilot cluster \"%s\" are managed by GKE and cannot be "
                       "deleted.",
                       x->gp.cluster);
    } else if (pd) {
        char *pkey = pool_key(x);
        enum wisp_err err = wisp_store_delete(x->txn, POOL_KIND, pkey, -1);
        free(pkey);
        if (err)
            wispd_store_error(x->req, err);
        else
            finish(x, "DELETE_NODE_POOL",
                   json_string_value(json_object_get(json_object_get(pd, "nodePool"),
                                                     "selfLink")));
    }
    json_decref(pd);
    json_decref(doc);
}

/* --- operations ------------------------------------------------------------ */

static void op_get(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.operations.get", 0))
        return;
    char *key = wisp_xasprintf("%s/%s/%s", x->pid, x->gp.location, x->gp.op);
    json_t *op = NULL;
    enum wisp_err err = wispd_get_json(x->txn, OP_KIND, key, &op, NULL);
    free(key);
    if (err == WISP_ENOTFOUND)
        wisp_api_error(x->req, 404, NULL, "Not found: projects/%s/locations/%s/operations/%s.",
                       x->pid, x->gp.location, x->gp.op);
    else if (err)
        wispd_store_error(x->req, err);
    else
        wisp_api_json(x->req, 200, op);
}

static void op_list(struct gke_ctx *x)
{
    if (!ctx_begin(x, 0, "container.operations.list", 1))
        return;
    char *prefix = strcmp(x->gp.location, "-") == 0
                       ? wisp_xasprintf("%s/", x->pid)
                       : wisp_xasprintf("%s/%s/", x->pid, x->gp.location);
    struct collect c = {json_array()};
    enum wisp_err err = wisp_store_list(x->txn, OP_KIND, prefix, NULL, 0, collect_one, &c, NULL);
    free(prefix);
    if (err) {
        json_decref(c.arr);
        wispd_store_error(x->req, err);
        return;
    }
    wisp_api_json(x->req, 200, json_pack("{s:o}", "operations", c.arr));
}

/* --- routing --------------------------------------------------------------- */

void wispd_container(struct wisp_http_req *req, const char *path)
{
    struct gke_ctx x = {.req = req};
    const char *m = req->method;
    if (!parse_path(path, &x.gp)) {
        wisp_api_error(req, 404, NULL, "Unknown Kubernetes Engine method: %.200s", path);
        return;
    }
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, put = strcmp(m, "PUT") == 0,
        del = strcmp(m, "DELETE") == 0;
    /* The issuer's discovery and keys are public, as on GKE. */
    if (x.gp.what == W_DISCOVERY || x.gp.what == W_JWKS) {
        if (!get) {
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %.200s.", m, path);
            return;
        }
        char *url = wispd_issuer_url(x.gp.project, x.gp.location, x.gp.cluster);
        if (x.gp.what == W_DISCOVERY)
            wispd_issuer_discovery(req, url);
        else
            wispd_issuer_jwks(req, url);
        free(url);
        return;
    }
    /* A name that cannot exist is not found, except on create where the
     * body names it. */
    if ((x.gp.cluster[0] && !name_valid(x.gp.cluster)) ||
        (x.gp.pool[0] && !name_valid(x.gp.pool))) {
        wisp_api_error(req, 404, NULL, "Not found: projects/%s/locations/%s/clusters/%s%s%s.",
                       x.gp.project, x.gp.location, x.gp.cluster, x.gp.pool[0] ? "/nodePools/" : "",
                       x.gp.pool);
        return;
    }
    switch (x.gp.what) {
    case W_CLUSTERS:
        if (get)
            cluster_list(&x);
        else if (post)
            cluster_create(&x);
        else
            goto bad_method;
        break;
    case W_CLUSTER:
        if (get)
            cluster_get(&x);
        else if (put)
            cluster_update(&x);
        else if (del)
            cluster_delete(&x);
        else
            goto bad_method;
        break;
    case W_POOLS:
        if (get)
            pool_list(&x);
        else if (post)
            pool_create(&x);
        else
            goto bad_method;
        break;
    case W_POOL:
        if (get)
            pool_get(&x);
        else if (put)
            pool_update(&x);
        else if (del)
            pool_delete(&x);
        else
            goto bad_method;
        break;
    case W_POOL_UPDATE:
        if (post)
            pool_update(&x);
        else
            goto bad_method;
        break;
    case W_OPS:
        if (get)
            op_list(&x);
        else
            goto bad_method;
        break;
    case W_OP:
        if (get)
            op_get(&x);
        else
            goto bad_method;
        break;
    default:
        goto bad_method;
    }
    ctx_end(&x);
    return;
bad_method:
    wisp_api_error(req, 405, NULL, "Method %s is not allowed on %.200s.", m, path);
}
