/* SPDX-License-Identifier: Apache-2.0 */
/* The node agent (a kubelet for wisp): lists and watches the pods bound to
 * this node, builds a sandbox for each (lib/node), keeps its projected KSA
 * token fresh, reports status through pods/NAME/status, honours deletion
 * with the pod's grace period and deletes the pod once its processes are
 * gone. One thread: curl's multi handle, a signalfd and the pods' event
 * pipes share one poll, so every pod's state changes in one place; only a
 * new pod's first TokenRequest runs on a short-lived second thread, beside
 * its sandbox's construction. */
#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include "node.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

#define MAX_C 16
#define RETRY_MS 2000
#define KILL_SHUTDOWN_MS 10000

struct cstate {
    char *name, *image;
    int started, running, restarts, exited, will_restart;
    int code, last_code, has_last;
    char started_at[32], finished_at[32], last_started[32], last_finished[32];
};

struct apod {
    struct apod *next;
    char *ns, *name, *uid, *sa;
    json_t *obj;                 /* the latest object from the API */
    struct wisp_node_pod *sb;    /* NULL before start and after teardown */
    struct cstate c[MAX_C];
    size_t n_c;
    int automount, failed_start, deleting, done, reaped, net_released, gone;
    char start_time[32], ready_since[40]; /* ready_since: + or - then the time */
    int64_t retry_at, kill_at, token_at;
    char *message;               /* why the pod could not start */
};

struct agent {
    const struct agent_config *cfg;
    struct kube *k;
    struct kube tk;              /* the first-token thread's own connection */
    struct wisp_node *node;
    struct apod *pods;
    char *rv;                    /* the last resourceVersion seen */
    int relist;                  /* the watch said 410: list again */
    char *kube_ca_pem;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rfc3339(int64_t wall_ms, char out[32])
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    struct wisp_buf b;
    char chunk[4096];
    size_t n;
    if (!f)
        return NULL;
    wisp_buf_init(&b, 1u << 20);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (wisp_buf_append(&b, chunk, n) != WISP_OK)
            break;
    fclose(f);
    return wisp_buf_steal(&b);
}

static char *pod_path(const struct apod *p, const char *sub)
{
    char *ns = curl_easy_escape(NULL, p->ns, 0), *name = curl_easy_escape(NULL, p->name, 0);
    char *s = wisp_xasprintf("/api/v1/namespaces/%s/pods/%s%s", ns, name, sub);
    curl_free(ns);
    curl_free(name);
    return s;
}

/* ---- status ----------------------------------------------------------------------- */

static void container_id(const struct apod *p, size_t i, char out[80])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char in[256];
    snprintf(in, sizeof(in), "%s/%zu/%d", p->uid, i, p->c[i].restarts);
    SHA256((const unsigned char *)in, strlen(in), md);
    int n = snprintf(out, 80, "wisp://");
    for (int j = 0; j < 32; j++)
        n += snprintf(out + n, (size_t)(80 - n), "%02x", md[j]);
}

static json_t *terminated(int code, const char *started, const char *finished, const char *cid)
{
    json_t *t = json_pack("{s:i, s:s, s:s, s:s}", "exitCode", code, "reason",
                          code == 0 ? "Completed" : "Error", "startedAt", started, "finishedAt",
                          finished);
    if (code > 128 && code < 160)
        json_object_set_new(t, "signal", json_integer(code - 128));
    if (cid)
        json_object_set_new(t, "containerID", json_string(cid));
    return t;
}

static json_t *cond(const char *type, int ok, const char *since, const char *reason)
{
    json_t *c = json_pack("{s:s, s:s, s:n, s:s}", "type", type, "status", ok ? "True" : "False",
                          "lastProbeTime", "lastTransitionTime", since);
    if (!ok && reason)
        json_object_set_new(c, "reason", json_string(reason));
    return c;
}

/* Phase from the containers, as the kubelet decides it. */
static const char *phase_of(const struct apod *p)
{
    int all_done = 1, any_fail = 0;
    if (p->failed_start)
        return "Failed";
    if (!p->sb && !p->done)
        return "Pending";
    for (size_t i = 0; i < p->n_c; i++) {
        if (!p->c[i].exited || p->c[i].will_restart)
            all_done = 0;
        else if (p->c[i].code != 0)
            any_fail = 1;
    }
    if (p->n_c && all_done)
        return any_fail ? "Failed" : "Succeeded";
    return "Running";
}

static void report(struct agent *a, struct apod *p)
{
    const char *phase = phase_of(p);
    int ready = !strcmp(phase, "Running");
    char now[32], cid[80];
    json_t *st = json_object(), *cs = json_array(), *conds = json_array();

    rfc3339(wall_now(), now);
    for (size_t i = 0; i < p->n_c; i++) {
        struct cstate *c = &p->c[i];
        if (!c->running)
            ready = 0;
    }
    if (!p->ready_since[0] || (ready != (p->ready_since[0] == '+')))
        snprintf(p->ready_since, sizeof(p->ready_since), "%c%s", ready ? '+' : '-', now);
    for (size_t i = 0; i < p->n_c; i++) {
        struct cstate *c = &p->c[i];
        json_t *state;
        container_id(p, i, cid);
        if (c->running)
            state = json_pack("{s:{s:s}}", "running", "startedAt", c->started_at);
        else if (c->exited && c->will_restart)
            state = json_pack("{s:{s:s, s:s}}", "waiting", "reason", "CrashLoopBackOff",
                              "message", "back-off restarting failed container");
        else if (c->exited)
            state = json_pack("{s:o}", "terminated",
                              terminated(c->code, c->started_at, c->finished_at, cid));
        else
            state = json_pack("{s:{s:s}}", "waiting", "reason",
                              p->failed_start ? "CreateContainerError" : "ContainerCreating");
        json_t *e = json_pack("{s:s, s:s, s:s, s:b, s:b, s:i, s:o}", "name", c->name, "image",
                              c->image, "imageID", c->image, "ready", c->running, "started",
                              c->running, "restartCount", c->restarts, "state", state);
        if (c->started || c->exited)
            json_object_set_new(e, "containerID", json_string(cid));
        json_object_set_new(e, "lastState",
                            c->has_last ? json_pack("{s:o}", "terminated",
                                                    terminated(c->last_code, c->last_started,
                                                               c->last_finished, NULL))
                                        : json_object());
        json_array_append_new(cs, e);
    }
    const char *since = p->ready_since + 1;
    const char *t0 = p->start_time[0] ? p->start_time : now;
    json_array_append_new(conds, cond("PodReadyToStartContainers", p->sb != NULL, t0, NULL));
    json_array_append_new(conds, cond("Initialized", 1, t0, NULL));
    json_array_append_new(conds, cond("Ready", ready, since,
                                      !strcmp(phase, "Running") ? "ContainersNotReady"
                                                                : "PodCompleted"));
    json_array_append_new(conds, cond("ContainersReady", ready, since,
                                      !strcmp(phase, "Running") ? "ContainersNotReady"
                                                                : "PodCompleted"));
    json_array_append_new(conds, cond("PodScheduled", 1, t0, NULL));
    json_object_set_new(st, "phase", json_string(phase));
    json_object_set_new(st, "conditions", conds);
    json_object_set_new(st, "containerStatuses", cs);
    json_object_set_new(st, "hostIP", json_string(wisp_node_ip(a->node)));
    json_object_set_new(st, "hostIPs", json_pack("[{s:s}]", "ip", wisp_node_ip(a->node)));
    json_object_set_new(st, "qosClass", json_string("BestEffort"));
    if (p->start_time[0])
        json_object_set_new(st, "startTime", json_string(p->start_time));
    if (p->sb) {
        const char *ip = wisp_node_pod_ip(p->sb);
        json_object_set_new(st, "podIP", json_string(ip));
        json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", ip));
    } else if (p->done) {
        /* the address stays in the status after the sandbox is gone */
        json_t *old = json_object_get(json_object_get(p->obj, "status"), "podIP");
        if (json_is_string(old)) {
            json_object_set(st, "podIP", old);
            json_object_set_new(st, "podIPs",
                                json_pack("[{s:O}]", "ip", old));
        }
    }
    if (p->message)
        json_object_set_new(st, "message", json_string(p->message));
    json_t *body = json_pack("{s:o}", "status", st);
    char *text = json_dumps(body, JSON_COMPACT);
    char *path = pod_path(p, "/status");
    json_t *resp = NULL;
    long code = kube_call(a->k, "PATCH", path, "application/merge-patch+json", text, &resp);
    if (code == 200 && resp) {
        json_decref(p->obj);
        p->obj = resp;
        resp = NULL;
    }
    if (code == 404)
        p->gone = 1;
    json_decref(resp);
    free(path);
    free(text);
    json_decref(body);
}

/* ---- tokens ----------------------------------------------------------------------- */

/* TokenRequest bound to the pod. Returns the token (caller frees) and
 * schedules the next refresh at 80 % of its lifetime, as the kubelet does;
 * NULL (retry soon) when the API refuses. */
static char *request_token(struct agent *a, struct kube *k, struct apod *p)
{
    char *ns = curl_easy_escape(NULL, p->ns, 0), *sa = curl_easy_escape(NULL, p->sa, 0);
    char *path = wisp_xasprintf("/api/v1/namespaces/%s/serviceaccounts/%s/token", ns, sa);
    json_t *spec = json_pack("{s:i, s:{s:s, s:s, s:s, s:s}}", "expirationSeconds",
                             (int)a->cfg->token_seconds, "boundObjectRef", "kind", "Pod",
                             "apiVersion", "v1", "name", p->name, "uid", p->uid);
    if (a->cfg->audience)
        json_object_set_new(spec, "audiences", json_pack("[s]", a->cfg->audience));
    json_t *req = json_pack("{s:s, s:s, s:o}", "apiVersion", "authentication.k8s.io/v1", "kind",
                            "TokenRequest", "spec", spec);
    char *body = json_dumps(req, JSON_COMPACT);
    json_t *resp = NULL;
    long code = kube_call(k, "POST", path, "application/json", body, &resp);
    const char *tok = jstr(json_object_get(resp, "status"), "token");
    char *out = NULL;
    if ((code == 201 || code == 200) && tok) {
        out = wisp_xstrdup(tok);
        p->token_at = now_ms() + (int64_t)a->cfg->token_seconds * 800;
    } else {
        p->token_at = now_ms() + RETRY_MS;
    }
    json_decref(resp);
    free(body);
    json_decref(req);
    free(path);
    curl_free(ns);
    curl_free(sa);
    return out;
}

static void refresh_token(struct agent *a, struct apod *p)
{
    char *tok = request_token(a, a->k, p);
    if (tok && wisp_node_pod_write_sa(p->sb, "token", tok, strlen(tok)) != WISP_OK)
        p->token_at = now_ms() + RETRY_MS;
    if (tok)
        wisp_secret_free(tok, 0);
}

/* ---- start and stop ----------------------------------------------------------------- */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* command + args (strings only); a container without a command runs
 * `sleep infinity`, since images are recorded, not pulled, and their
 * entrypoints are unknown. */
static char **argv_of(const json_t *c)
{
    const json_t *cmd = json_object_get(c, "command"), *args = json_object_get(c, "args");
    size_t n = json_array_size(cmd) + json_array_size(args), k = 0, i;
    json_t *v;
    char **argv = wisp_xcalloc(n + 3, sizeof(char *));
    if (json_array_size(cmd) == 0) {
        argv[k++] = wisp_xstrdup("sleep");
        argv[k++] = wisp_xstrdup("infinity");
        if (json_array_size(args)) /* args alone: run them as the command */
            k = 0;
    }
    json_array_foreach(cmd, i, v) if (json_is_string(v)) argv[k++] = wisp_xstrdup(json_string_value(v));
    json_array_foreach(args, i, v) if (json_is_string(v)) argv[k++] = wisp_xstrdup(json_string_value(v));
    if (k == 0) {
        argv[k++] = wisp_xstrdup("sleep");
        argv[k++] = wisp_xstrdup("infinity");
    }
    argv[k] = NULL;
    return argv;
}

static char **env_of(const json_t *c)
{
    const json_t *env = json_object_get(c, "env");
    size_t i, k = 0;
    json_t *e;
    char **v = wisp_xcalloc(json_array_size(env) + 1, sizeof(char *));
    json_array_foreach(env, i, e) {
        const char *name = jstr(e, "name"), *val = jstr(e, "value");
        if (name && !strchr(name, '='))
            v[k++] = wisp_xasprintf("%s=%s", name, val ? val : "");
    }
    return v;
}

/* With a projected token the sandbox is held: its containers wait for
 * release() below, once the token file exists. */
static void start_pod(struct agent *a, struct apod *p)
{
    const json_t *spec = json_object_get(p->obj, "spec");
    const json_t *cs = json_object_get(spec, "containers");
    struct wisp_node_container c[MAX_C];
    char why[256] = "";
    const char *rp = jstr(spec, "restartPolicy");
    struct wisp_node_pod_spec s = {
        .uid = p->uid, .ns = p->ns, .name = p->name, .hostname = jstr(spec, "hostname"),
        .containers = c, .n_containers = p->n_c, .backoff_ms = a->cfg->backoff_ms,
        .ca_crt = p->automount ? a->kube_ca_pem : NULL, .hold = p->automount,
        .restart = rp && !strcmp(rp, "Never")       ? WISP_NODE_RESTART_NEVER
                   : rp && !strcmp(rp, "OnFailure") ? WISP_NODE_RESTART_ON_FAILURE
                                                    : WISP_NODE_RESTART_ALWAYS};
    for (size_t i = 0; i < p->n_c; i++) {
        const json_t *cj = json_array_get(cs, i);
        c[i] = (struct wisp_node_container){.name = p->c[i].name, .argv = argv_of(cj),
                                            .env = env_of(cj),
                                            .workdir = jstr(cj, "workingDir")};
    }
    enum wisp_err err = wisp_node_pod_start(a->node, &s, &p->sb, why, sizeof(why));
    if (err == WISP_OK)
        exec_pod_add(p->uid, p->ns, p->name, s.hostname ? s.hostname : p->name,
                     wisp_node_pod_pid(p->sb), c, p->n_c);
    for (size_t i = 0; i < p->n_c; i++) {
        strv_free((char **)c[i].argv);
        strv_free((char **)c[i].env);
    }
    if (err == WISP_EBUSY) {
        wisp_log_warn("node", "pod %s/%s waits: %s", p->ns, p->name, why);
        p->retry_at = now_ms() + RETRY_MS;
        return;
    }
    if (err != WISP_OK) {
        wisp_log_err("node", "pod %s/%s cannot start: %s", p->ns, p->name, why);
        p->failed_start = 1;
        p->done = 1;
        p->message = wisp_xstrdup(why);
        report(a, p);
        return;
    }
    p->retry_at = 0;
    rfc3339(wall_now(), p->start_time);
    wisp_log_info("node", "pod %s/%s started at %s", p->ns, p->name, wisp_node_pod_ip(p->sb));
}

/* As with a kubelet, the projected token exists before any container
 * starts: a held sandbox gets it and is released; without one (the API
 * refused) it stays held, Pending, and is retried. Takes tok. */
static void release(struct apod *p, char *tok)
{
    if (tok && wisp_node_pod_write_sa(p->sb, "token", tok, strlen(tok)) == WISP_OK &&
        wisp_node_pod_release(p->sb) == WISP_OK) {
        p->retry_at = 0;
        wisp_log_info("node", "pod %s/%s released: its token is written", p->ns, p->name);
    } else {
        wisp_log_warn("node", "pod %s/%s: no projected token yet; retrying", p->ns, p->name);
        p->retry_at = now_ms() + RETRY_MS;
    }
    if (tok)
        wisp_secret_free(tok, 0);
}

struct token_job {
    struct agent *a;
    struct apod *p;
    char *tok; /* the result, or NULL */
};

static void *token_thread(void *arg)
{
    struct token_job *j = arg;
    j->tok = request_token(j->a, &j->a->tk, j->p);
    return NULL;
}

/* A new pod: its TokenRequest (a signature in the API server) runs on a
 * second thread while this one builds the sandbox; the containers start
 * as soon as both are done, and the status with the pod's address goes out
 * while they start (the metadata server waits briefly for an address it
 * does not know yet). */
static void try_start(struct agent *a, struct apod *p)
{
    struct token_job job = {.a = a, .p = p};
    pthread_t th;
    int threaded = 0;
    if (p->sb || p->done || p->deleting)
        return;
    if (p->automount)
        threaded = pthread_create(&th, NULL, token_thread, &job) == 0;
    start_pod(a, p);
    if (threaded)
        pthread_join(th, NULL);
    else if (p->automount && p->sb)
        job.tok = request_token(a, a->k, p);
    if (p->sb && wisp_node_pod_held(p->sb)) {
        release(p, job.tok);
    } else if (job.tok) {
        wisp_secret_free(job.tok, 0); /* no sandbox (yet): a retry asks again */
    }
    if (p->sb)
        report(a, p);
}

static void apod_free(struct apod *p)
{
    for (size_t i = 0; i < p->n_c; i++) {
        free(p->c[i].name);
        free(p->c[i].image);
    }
    free(p->ns);
    free(p->name);
    free(p->uid);
    free(p->sa);
    free(p->message);
    json_decref(p->obj);
    free(p);
}

static void forget(struct agent *a, struct apod *p)
{
    struct apod **pp = &a->pods;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    exec_pod_remove(p->uid);
    if (p->sb)
        wisp_node_pod_destroy(p->sb);
    apod_free(p);
}

static struct apod *find(struct agent *a, const char *uid)
{
    for (struct apod *p = a->pods; p; p = p->next)
        if (!strcmp(p->uid, uid))
            return p;
    return NULL;
}

static void begin_delete(struct agent *a, struct apod *p)
{
    const json_t *m = json_object_get(p->obj, "metadata");
    json_int_t grace = json_integer_value(json_object_get(m, "deletionGracePeriodSeconds"));
    (void)a;
    if (p->deleting)
        return;
    p->deleting = 1;
    if (grace < 0 || grace > 3600)
        grace = 30;
    p->kill_at = now_ms() + grace * 1000;
    if (p->sb && wisp_node_pod_pid(p->sb) > 0)
        wisp_node_pod_signal(p->sb, SIGTERM);
    wisp_log_info("node", "pod %s/%s: deleting, grace %llds", p->ns, p->name, (long long)grace);
}

/* The pod's processes are gone and the API asked for deletion: remove the
 * sandbox, then the object (gracePeriodSeconds=0, as a kubelet does). */
static void finish_delete(struct agent *a, struct apod *p)
{
    char *path = pod_path(p, "?gracePeriodSeconds=0");
    char *body = wisp_xasprintf("{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                                "\"gracePeriodSeconds\":0,\"preconditions\":{\"uid\":\"%s\"}}",
                                p->uid);
    if (p->sb) {
        wisp_node_pod_destroy(p->sb);
        p->sb = NULL;
    }
    kube_call(a->k, "DELETE", path, "application/json", body, NULL);
    free(body);
    free(path);
    p->gone = 1;
}

/* ---- events from the API ------------------------------------------------------------ */

static void upsert(struct agent *a, json_t *obj)
{
    const json_t *m = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    const char *uid = jstr(m, "uid"), *node = jstr(spec, "nodeName");
    if (!uid || !node || strcmp(node, a->cfg->node) != 0)
        return;
    struct apod *p = find(a, uid);
    if (!p) {
        const char *phase = jstr(json_object_get(obj, "status"), "phase");
        const json_t *cs = json_object_get(spec, "containers");
        size_t i;
        json_t *c;
        if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))
            return; /* finished before this agent started */
        if (json_array_size(cs) == 0 || json_array_size(cs) > MAX_C || !jstr(m, "namespace") ||
            !jstr(m, "name"))
            return;
        p = wisp_xcalloc(1, sizeof(*p));
        p->ns = wisp_xstrdup(jstr(m, "namespace"));
        p->name = wisp_xstrdup(jstr(m, "name"));
        p->uid = wisp_xstrdup(uid);
        p->sa = wisp_xstrdup(jstr(spec, "serviceAccountName") ? jstr(spec, "serviceAccountName")
                                                              : "default");
        const json_t *am = json_object_get(spec, "automountServiceAccountToken");
        p->automount = !json_is_false(am);
        json_array_foreach(cs, i, c) {
            p->c[i].name = wisp_xstrdup(jstr(c, "name") ? jstr(c, "name") : "container");
            p->c[i].image = wisp_xstrdup(jstr(c, "image") ? jstr(c, "image") : "");
        }
        p->n_c = json_array_size(cs);
        p->obj = json_incref(obj);
        p->next = a->pods;
        a->pods = p;
        if (json_object_get(m, "deletionTimestamp")) {
            finish_delete(a, p); /* nothing of it runs here */
            return;
        }
        /* bench/pods times the stages of a pod's start from these lines */
        wisp_log_info("node", "pod %s/%s seen", p->ns, p->name);
        try_start(a, p);
        return;
    }
    json_decref(p->obj);
    p->obj = json_incref(obj);
    if (json_object_get(m, "deletionTimestamp")) {
        if (!p->sb || wisp_node_pod_pid(p->sb) == 0)
            finish_delete(a, p);
        else
            begin_delete(a, p);
    }
}

static void on_event(void *ctx, json_t *ev)
{
    struct agent *a = ctx;
    const char *type = jstr(ev, "type");
    json_t *obj = json_object_get(ev, "object");
    const char *rv = jstr(json_object_get(obj, "metadata"), "resourceVersion");
    if (!type)
        return;
    if (!strcmp(type, "ERROR")) {
        if (json_integer_value(json_object_get(obj, "code")) == 410)
            a->relist = 1;
        return;
    }
    if (rv) {
        free(a->rv);
        a->rv = wisp_xstrdup(rv);
    }
    if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
        upsert(a, obj);
    } else if (!strcmp(type, "DELETED")) {
        struct apod *p = find(a, jstr(json_object_get(obj, "metadata"), "uid") ?: "");
        if (p)
            p->gone = 1;
    }
}

/* Lists the node's pods; reconciles; remembers the resourceVersion. */
static int relist(struct agent *a)
{
    char *sel = curl_easy_escape(NULL, a->cfg->node, 0);
    char *path = wisp_xasprintf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", sel);
    json_t *list = NULL, *item;
    size_t i;
    long code = kube_call(a->k, "GET", path, NULL, NULL, &list);
    curl_free(sel);
    free(path);
    if (code != 200 || !list) {
        json_decref(list);
        return -1;
    }
    for (struct apod *p = a->pods; p; p = p->next)
        p->gone = 1; /* unless listed */
    json_array_foreach(json_object_get(list, "items"), i, item) {
        struct apod *p = find(a, jstr(json_object_get(item, "metadata"), "uid") ?: "");
        if (p)
            p->gone = 0;
        upsert(a, item);
    }
    free(a->rv);
    a->rv = wisp_xstrdup(jstr(json_object_get(list, "metadata"), "resourceVersion") ?: "0");
    json_decref(list);
    a->relist = 0;
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------- */

static int pod_events(struct agent *a, struct apod *p)
{
    struct wisp_node_event ev;
    int changed = 0, r;
    char t[32];
    while (p->sb && (r = wisp_node_pod_next_event(p->sb, &ev)) == 1) {
        if (ev.container < 0 || (size_t)ev.container >= p->n_c)
            continue;
        struct cstate *c = &p->c[ev.container];
        rfc3339(ev.at_ms, t);
        if (ev.kind == WISP_NODE_EV_STARTED) {
            if (c->started)
                c->restarts++;
            c->started = c->running = 1;
            c->exited = c->will_restart = 0;
            memcpy(c->started_at, t, 32);
        } else if (ev.kind == WISP_NODE_EV_EXITED) {
            c->running = 0;
            c->exited = 1;
            c->code = ev.status;
            c->will_restart = ev.will_restart;
            memcpy(c->finished_at, t, 32);
            if (ev.will_restart) {
                c->has_last = 1;
                c->last_code = ev.status;
                memcpy(c->last_started, c->started_at, 32);
                memcpy(c->last_finished, t, 32);
            }
        }
        changed = 1;
    }
    (void)a;
    return changed;
}

static void reap_all(struct agent *a)
{
    for (struct apod *p = a->pods; p; p = p->next) {
        if (!p->sb || wisp_node_pod_pid(p->sb) == 0 || !wisp_node_pod_reap(p->sb, 0, NULL))
            continue;
        pod_events(a, p);
        /* anything the init could not report (it was killed) ends here */
        char t[32];
        rfc3339(wall_now(), t);
        for (size_t i = 0; i < p->n_c; i++) {
            struct cstate *c = &p->c[i];
            if (c->exited && !c->will_restart)
                continue;
            if (!c->exited) /* killed while running, or never started */
                c->code = 137;
            c->running = c->will_restart = 0;
            c->exited = 1;
            memcpy(c->finished_at, t, 32);
        }
        p->done = 1;
        exec_pod_remove(p->uid);
        if (p->deleting) {
            finish_delete(a, p);
            continue;
        }
        report(a, p);
        /* A finished pod keeps its files (logs) but not its address. */
        wisp_node_pod_release_net(p->sb);
        wisp_log_info("node", "pod %s/%s finished: %s", p->ns, p->name, phase_of(p));
    }
}

static void timers(struct agent *a)
{
    int64_t now = now_ms();
    for (struct apod *p = a->pods; p; p = p->next) {
        if (p->retry_at && now >= p->retry_at && !p->sb)
            try_start(a, p);
        else if (p->retry_at && now >= p->retry_at && p->sb && wisp_node_pod_held(p->sb))
            release(p, request_token(a, a->k, p));
        if (p->deleting && p->sb && wisp_node_pod_pid(p->sb) > 0 && now >= p->kill_at)
            wisp_node_pod_signal(p->sb, SIGKILL);
        if (p->automount && p->sb && !p->done && p->token_at && now >= p->token_at)
            refresh_token(a, p);
    }
}

static void sweep_gone(struct agent *a)
{
    struct apod *p = a->pods, *next;
    for (; p; p = next) {
        next = p->next;
        if (p->gone)
            forget(a, p);
    }
}

static void shutdown_pods(struct agent *a)
{
    int64_t end = now_ms() + KILL_SHUTDOWN_MS;
    for (struct apod *p = a->pods; p; p = p->next)
        if (p->sb)
            wisp_node_pod_signal(p->sb, SIGTERM);
    for (struct apod *p = a->pods; p; p = p->next) {
        while (p->sb && !wisp_node_pod_reap(p->sb, 0, NULL) && now_ms() < end)
            usleep(10000);
    }
    while (a->pods)
        forget(a, a->pods);
}

int agent_run(const struct agent_config *cfg, struct kube *k)
{
    struct agent a = {.cfg = cfg, .k = k};
    struct wisp_node_config nc = {.fabric = cfg->fabric, .fabric_cidr = cfg->fabric_cidr,
                                  .name = cfg->node, .netns = cfg->netns,
                                  .pod_cidr = cfg->pod_cidr, .node_ip = cfg->node_ip,
                                  .state_dir = cfg->state_dir, .ca_file = cfg->ca_file};
    char why[256] = "";
    sigset_t set;
    int sfd, rc = 1, stop = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        wisp_log_err("node", "signalfd: %s", strerror(errno));
        return 1;
    }
    if (wisp_node_up(&nc, &a.node, why, sizeof(why)) != WISP_OK) {
        wisp_log_err("node", "node %s: %s", cfg->node, why);
        close(sfd);
        return 1;
    }
    if (cfg->kube_ca)
        a.kube_ca_pem = slurp(cfg->kube_ca);
    kube_init(&a.tk, k->api, k->ca_file, k->token_file);
    k->on_event = on_event;
    k->ctx = &a;
    wisp_log_info("node", "node %s up: %s in %s, pods from %s", cfg->node, wisp_node_ip(a.node),
                  cfg->fabric, cfg->pod_cidr);
    exec_start(k->api, cfg->node);
    int64_t next_list = 0;
    while (!stop) {
        if (!k->watch && now_ms() >= next_list) {
            if (a.relist || !a.rv) {
                if (relist(&a) != 0) {
                    next_list = now_ms() + 1000;
                    goto wait;
                }
            }
            char *sel = curl_easy_escape(NULL, cfg->node, 0);
            char *path = wisp_xasprintf("/api/v1/pods?watch=1&allowWatchBookmarks=true&"
                                        "fieldSelector=spec.nodeName%%3D%s&resourceVersion=%s",
                                        sel, a.rv);
            kube_watch_start(k, path);
            free(path);
            curl_free(sel);
        }
    wait:;
        struct curl_waitfd fds[1 + 256];
        unsigned n = 0;
        fds[n++] = (struct curl_waitfd){.fd = sfd, .events = CURL_WAIT_POLLIN};
        for (struct apod *p = a.pods; p && n < 257; p = p->next)
            if (p->sb && wisp_node_pod_event_fd(p->sb) >= 0)
                fds[n++] = (struct curl_waitfd){.fd = wisp_node_pod_event_fd(p->sb),
                                                .events = CURL_WAIT_POLLIN};
        curl_multi_poll(k->multi, fds, n, 200, NULL);
        if (k->watch && !kube_watch_step(k)) {
            if (k->watch_status == 410)
                a.relist = 1;
            next_list = now_ms() + (k->watch_status == 200 ? 0 : 1000);
        }
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGCHLD)
                continue;
            wisp_log_info("node", "signal %u: stopping", si.ssi_signo);
            stop = 1;
        }
        for (struct apod *p = a.pods; p; p = p->next)
            if (pod_events(&a, p) && !p->done)
                report(&a, p);
        reap_all(&a);
        timers(&a);
        sweep_gone(&a);
    }
    kube_watch_stop(k);
    exec_stop();
    shutdown_pods(&a);
    wisp_node_down(a.node);
    rc = 0;
    free(a.rv);
    free(a.kube_ca_pem);
    kube_free(&a.tk);
    close(sfd);
    return rc;
}
