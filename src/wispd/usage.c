/* SPDX-License-Identifier: Apache-2.0 */
/* Calls counted per (quota project, API, method) for `wisp usage`. A
 * durable commit per call would cost more than the call (signJwt is one
 * RSA signature), so calls are counted in memory and a thread adds them to
 * the store's "usage" documents in one write transaction at most once a
 * second, and once more when wispd stops. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include "wisp/log.h"
#include "wispd.h"

#define FLUSH_SECS 1

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stop, started;
    struct wisp_store *st;   /* the flusher's own handle */
    json_t *pending;         /* "project/api/method" -> {project, api, method, calls} */
} usage = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Adds calls to name's pending count. Caller holds usage.mu. */
static void pending_add(const char *name, const char *project, const char *api,
                        const char *method, json_int_t calls)
{
    if (!usage.pending)
        usage.pending = json_object();
    json_t *e = json_object_get(usage.pending, name);
    if (e) {
        json_t *n = json_object_get(e, "calls");
        json_integer_set(n, json_integer_value(n) + calls);
        return;
    }
    json_object_set_new(usage.pending, name,
                        json_pack("{s:s, s:s, s:s, s:I}", "project", project, "api", api,
                                  "method", method, "calls", calls));
}

void wispd_usage_count(struct wisp_http_req *req, const char *project, const char *api,
                       const char *method)
{
    (void)req;
    char name[400];
    snprintf(name, sizeof(name), "%s/%s/%s", project, api, method);
    pthread_mutex_lock(&usage.mu);
    pending_add(name, project, api, method, 1);
    pthread_mutex_unlock(&usage.mu);
}

/* Adds the pending counts to the store in one transaction. On failure they
 * go back to pending for the next try. */
static void flush(void)
{
    pthread_mutex_lock(&usage.mu);
    json_t *batch = usage.pending;
    usage.pending = NULL;
    pthread_mutex_unlock(&usage.mu);
    if (!batch || !json_object_size(batch)) {
        json_decref(batch);
        return;
    }
    struct wisp_txn *txn = NULL;
    enum wisp_err err = wisp_store_begin(usage.st, 1, &txn);
    const char *name;
    json_t *e;
    json_object_foreach(batch, name, e) {
        if (err)
            break;
        json_t *doc = NULL;
        json_int_t n = 0;
        if (wispd_get_json(txn, "usage", name, &doc, NULL) == WISP_OK)
            n = json_integer_value(json_object_get(doc, "calls"));
        json_decref(doc);
        doc = json_deep_copy(e);
        json_object_set_new(doc, "calls",
                            json_integer(n + json_integer_value(json_object_get(e, "calls"))));
        err = wispd_put_json(txn, "usage", name, doc, -1, NULL);
        json_decref(doc);
    }
    if (!err)
        err = wisp_store_commit(txn);
    else
        wisp_store_rollback(txn);
    if (err) {
        wisp_log_warn("usage", "cannot record %zu usage counts: %s (will retry)",
                      json_object_size(batch), wisp_strerror(err));
        pthread_mutex_lock(&usage.mu);
        json_object_foreach(batch, name, e) {
            pending_add(name, json_string_value(json_object_get(e, "project")),
                        json_string_value(json_object_get(e, "api")),
                        json_string_value(json_object_get(e, "method")),
                        json_integer_value(json_object_get(e, "calls")));
        }
        pthread_mutex_unlock(&usage.mu);
    }
    json_decref(batch);
}

static void *flusher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&usage.mu);
    while (!usage.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += FLUSH_SECS;
        while (!usage.stop && pthread_cond_timedwait(&usage.cv, &usage.mu, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&usage.mu);
        flush();
        pthread_mutex_lock(&usage.mu);
    }
    pthread_mutex_unlock(&usage.mu);
    return NULL;
}

int wispd_usage_start(void)
{
    if (wisp_store_open(wispd.store_url, &usage.st) != WISP_OK)
        return -1;
    if (pthread_create(&usage.thread, NULL, flusher, NULL) != 0) {
        wisp_store_close(usage.st);
        usage.st = NULL;
        return -1;
    }
    usage.started = 1;
    return 0;
}

void wispd_usage_stop(void)
{
    if (!usage.started)
        return;
    pthread_mutex_lock(&usage.mu);
    usage.stop = 1;
    pthread_cond_signal(&usage.cv);
    pthread_mutex_unlock(&usage.mu);
    /* The flusher's last pass writes what the workers counted. */
    pthread_join(usage.thread, NULL);
    usage.started = 0;
    wisp_store_close(usage.st);
    usage.st = NULL;
    json_decref(usage.pending);
    usage.pending = NULL;
}
