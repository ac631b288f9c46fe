/* SPDX-License-Identifier: Apache-2.0 */
/* Keeps the pod table current from the Kubernetes API, as a kubelet-side
 * informer would: list (all pages), then watch from the list's
 * resourceVersion with bookmarks, resume from the last one seen when the
 * stream ends, and list again on 410 Gone. One thread for this node's pods,
 * one for the cluster's ServiceAccounts (their annotations name the GSA). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "wisp/url.h"
#include "md.h"

#define SUB "watch"
#define PAGE 500

struct watcher {
    char kind;
    char *path; /* the list path, with its query */
    char *rv;   /* where the watch resumes; NULL: list first */
    int gone;
    pthread_t thread;
    int started;
};

static struct watcher watchers[2];
static volatile int sas_listed;

static void nap(unsigned secs)
{
    for (unsigned i = 0; i < secs * 10 && !md.stopping; i++)
        usleep(100000);
}

/* Lists every page into one list; returns it (caller decrefs) or NULL. */
static json_t *list_all(struct watcher *w)
{
    json_t *all = NULL;
    char *cont = NULL;
    for (;;) {
        char *e = cont ? wisp_url_escape(cont) : NULL;
        char *path = wisp_xasprintf("%s&limit=%d%s%s", w->path, PAGE, e ? "&continue=" : "",
                                    e ? e : "");
        char *body = NULL;
        long code = md_kube_get(path, &body);
        json_t *page = code == 200 ? json_loads(body, 0, NULL) : NULL;
        if (!page)
            wisp_log_warn(SUB, "list %s: %ld %.200s", path, code, body);
        free(path);
        free(body);
        free(e);
        WISP_FREE(cont);
        if (!page || !json_is_array(json_object_get(page, "items"))) {
            json_decref(page);
            json_decref(all);
            return NULL;
        }
        const char *next = json_string_value(
            json_object_get(json_object_get(page, "metadata"), "continue"));
        if (next && next[0])
            cont = wisp_xstrdup(next);
        if (!all) {
            all = page;
        } else {
            json_array_extend(json_object_get(all, "items"), json_object_get(page, "items"));
            json_decref(page);
        }
        if (!cont)
            return all;
    }
}

static int on_line(void *ctx, const char *s, size_t n)
{
    struct watcher *w = ctx;
    char *rv = NULL;
    enum wisp_err err = wisp_md_pods_event(md.pods, w->kind, s, n, &rv);
    if (err == WISP_EGONE) {
        w->gone = 1;
        return 1;
    }
    if (err != WISP_OK) {
        wisp_log_warn(SUB, "an unreadable watch event (%zu bytes)", n);
        return 0;
    }
    if (rv) {
        free(w->rv);
        w->rv = rv;
    }
    wisp_md_pods_reclaim(md.pods);
    return 0;
}

static void *run(void *arg)
{
    struct watcher *w = arg;
    unsigned backoff = 1;
    /* Pods wait (briefly) for the ServiceAccounts, so the first tokens
     * fetched already know their GSA. */
    for (int i = 0; w->kind == 'p' && !sas_listed && i < 50 && !md.stopping; i++)
        usleep(100000);
    while (!md.stopping) {
        if (!w->rv) {
            json_t *list = list_all(w);
            if (!list || wisp_md_pods_list(md.pods, w->kind, list, &w->rv) != WISP_OK ||
                !w->rv) {
                json_decref(list);
                nap(backoff);
                backoff = backoff < 30 ? backoff * 2 : 30;
                continue;
            }
            wisp_log_info(SUB, "listed %zu %s at resourceVersion %s",
                          json_array_size(json_object_get(list, "items")),
                          w->kind == 'p' ? "pods" : "serviceaccounts", w->rv);
            json_decref(list);
            if (w->kind == 's')
                sas_listed = 1;
        }
        char *path = wisp_xasprintf("%s&watch=1&allowWatchBookmarks=true&resourceVersion=%s"
                                    "&timeoutSeconds=300",
                                    w->path, w->rv);
        w->gone = 0;
        long code = md_kube_stream(path, on_line, w);
        free(path);
        if (w->gone || code == 410) {
            wisp_log_info(SUB, "resourceVersion %s expired: listing again", w->rv);
            WISP_FREE(w->rv);
            continue;
        }
        if (code != 200) {
            nap(backoff);
            backoff = backoff < 30 ? backoff * 2 : 30;
        } else {
            backoff = 1;
        }
    }
    return NULL;
}

int md_watch_start(void)
{
    char *node = wisp_url_escape(md.node);
    watchers[0].kind = 'p';
    watchers[0].path = wisp_xasprintf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", node);
    watchers[1].kind = 's';
    watchers[1].path = wisp_xstrdup("/api/v1/serviceaccounts?");
    free(node);
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&watchers[i].thread, NULL, run, &watchers[i]) != 0)
            return -1;
        watchers[i].started = 1;
    }
    return 0;
}

void md_watch_stop(void)
{
    md.stopping = 1;
    for (int i = 0; i < 2; i++) {
        if (watchers[i].started)
            pthread_join(watchers[i].thread, NULL);
        free(watchers[i].path);
        free(watchers[i].rv);
        memset(&watchers[i], 0, sizeof(watchers[i]));
    }
}
