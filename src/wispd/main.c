/* SPDX-License-Identifier: Apache-2.0 */
/* wispd: the control plane. Opens the store, bootstraps a new state
 * directory, and serves every Google API on loopback (HTTPS, and plain HTTP
 * for clients that cannot be given a CA). Readiness: once the sockets and
 * the store are open it writes STATE/run/wispd.json (pid and ports) and then
 * a line to --ready-fd, so `wisp up` never has to sleep and guess. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "wisp/alloc.h"
#include "wisp/http.h"
#include "wisp/log.h"
#include "wisp/opts.h"
#include "wispd.h"

void wispd_dispatch(struct wisp_http_req *req, void *ctx);

/* The options, in one table: parsing and --help both read it. */
static struct wisp_opt opts[] = {
    {"state", "DIR", "state directory (store, keys, run files)", NULL, NULL},
    {"store", "URL", "sqlite:PATH, or postgres://... shared by replicas [STATE/wisp.db]", NULL,
     NULL},
    {"project", "ID", "project to create with an owner on first start", NULL, NULL},
    {"listen", "ADDR", "address for the API listeners", "127.0.0.1", NULL},
    {"port", "N", "HTTPS port (0 picks a free one)", "0", NULL},
    {"http-port", "N", "plain HTTP port (0 picks a free one, -1 disables)", "0", NULL},
    {"threads", "N", "worker threads", "2", NULL},
    {"ready-fd", "FD", "file descriptor to write \"ready\" to once serving", "-1", NULL},
    {"log-level", "LEVEL", "err, warn, info or debug", "info", NULL},
    {"nodes", NULL, "run the clusters' nodes: node agents and metadata servers (root)", NULL,
     NULL},
    {"strict-revocation", NULL,
     "re-check the grant behind a token minted as another identity on every use", NULL, NULL},
    {"token-key-rotation", "SECS", "seconds between new access-token sealing keys", "86400",
     NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char *opt(const char *name)
{
    return wisp_opts_get(opts, N_OPTS, name);
}

static int parse_args(int argc, char **argv)
{
    static const char intro[] = "wispd --state DIR [options]\n\nThe wisp control plane: every "
                                "Google API wisp serves, on loopback.";
    if (wisp_opts_parse(opts, N_OPTS, argc, argv, intro))
        return -1;
    if (!opt("state")) {
        wisp_opts_usage(stderr, opts, N_OPTS, intro);
        return -1;
    }
    return 0;
}

static struct wisp_http_server *server;

static void on_signal(int sig)
{
    (void)sig;
    wisp_http_server_stop(server);
}

static void *thread_start(unsigned idx, void *user)
{
    (void)idx;
    (void)user;
    struct wispd_thread *t = wisp_xcalloc(1, sizeof(*t));
    if (wisp_store_open(wispd.store_url, &t->store) != WISP_OK) {
        wisp_log_err("wispd", "worker cannot open the store");
        abort();
    }
    return t;
}

static void thread_stop(void *data, void *user)
{
    (void)user;
    struct wispd_thread *t = data;
    wisp_store_close(t->store);
    free(t);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv))
        return 100;
    if (wisp_log_set_level(opt("log-level"))) {
        fprintf(stderr, "wispd: --log-level: expected err, warn, info or debug\n");
        return 100;
    }
    if (opt("project") && !wispd_project_id_valid(opt("project"))) {
        fprintf(stderr, "wispd: --project: '%s' is not a project ID (6-30 lowercase letters, "
                        "digits or hyphens, starting with a letter)\n", opt("project"));
        return 100;
    }
    char *end;
    long rot = strtol(opt("token-key-rotation"), &end, 10);
    if (*end || rot < 2 || rot > 365L * 86400) {
        fprintf(stderr, "wispd: --token-key-rotation: expected seconds from 2 to 31536000\n");
        return 100;
    }
    wispd.token_key_rotation = rot;
    wispd.strict_revocation = opt("strict-revocation") != NULL;
    signal(SIGPIPE, SIG_IGN);
    wispd.state_dir = opt("state");
    if (mkdir(wispd.state_dir, 0700) && errno != EEXIST) {
        wisp_log_err("wispd", "cannot create %s: %s", wispd.state_dir, strerror(errno));
        return 111;
    }
    wispd.store_url = opt("store") ? wisp_xstrdup(opt("store"))
                                   : wisp_xasprintf("%s/wisp.db", wispd.state_dir);
    wispd.keyring = wisp_token_keyring_new();

    struct wisp_store *st = NULL;
    int rc = 111;
    if (wisp_store_open(wispd.store_url, &st) != WISP_OK) {
        /* A URL may carry a password: name only what kind of store. */
        wisp_log_err("wispd", "cannot open the store %s",
                     opt("store") ? "given by --store" : wispd.store_url);
        goto out;
    }
    if (wispd_bootstrap(st, wispd.state_dir, opt("project")) || wispd_keys_start() ||
        wispd_usage_start()) {
        wisp_log_err("wispd", "bootstrap failed");
        goto out;
    }
    wisp_log_info("wispd", "token keys rotate every %lld s; strict revocation %s",
                  (long long)wispd.token_key_rotation, wispd.strict_revocation ? "on" : "off");

    /* Bodies up to 65 MiB: gcloud storage sends a resumable upload as one
     * PUT of the whole object, and objects may be up to 64 MiB. */
    struct wisp_http_config cfg = {.limits = {.max_body = 65u << 20},
                                   .n_threads = (unsigned)atoi(opt("threads")),
                                   .on_thread_start = thread_start,
                                   .on_thread_stop = thread_stop};
    server = wisp_http_server_new(&cfg);
    wispd.http = server;
    wisp_http_route(server, NULL, NULL, "/", wispd_dispatch, NULL);
    int https_port = 0, http_port = -1;
    struct wisp_http_listen_spec tls = {.addr = opt("listen"), .port = atoi(opt("port")),
                                        .cert_pem = wispd.tls_cert_pem,
                                        .key_pem = wispd.tls_key_pem};
    struct wisp_http_listen_spec plain = {.addr = opt("listen"), .port = atoi(opt("http-port"))};
    enum wisp_err err = wisp_http_listen(server, &tls, &https_port, NULL);
    wispd.https_port = https_port;
    if (!err && plain.port >= 0)
        err = wisp_http_listen(server, &plain, &http_port, NULL);
    if (err) {
        wisp_log_err("wispd", "cannot listen on %s: %s", opt("listen"), wisp_strerror(err));
        goto out;
    }
    /* A cluster whose endpoint cannot open is logged; the rest serve. */
    wispd_kube_open_all(st);
    wisp_store_close(st);
    st = NULL;
    char *runfile = wisp_xasprintf("%s/run/wispd.json", wispd.state_dir);
    char *info = wisp_xasprintf("{\"pid\":%d,\"address\":\"%s\",\"https_port\":%d,"
                                "\"http_port\":%d}\n",
                                (int)getpid(), opt("listen"), https_port, http_port);
    int werr = wispd_write_file(runfile, info, 0644);
    free(runfile);
    free(info);
    if (werr)
        goto out;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    wisp_log_info("wispd", "serving on %s https=%d http=%d", opt("listen"), https_port,
                  http_port);
    int fd = atoi(opt("ready-fd"));
    if (fd >= 0) {
        ssize_t w = write(fd, "ready\n", 6);
        (void)w;
        close(fd);
    }
    if (opt("nodes"))
        wispd_nodes_start();
    rc = wisp_http_server_run(server) == WISP_OK ? 0 : 111;
    wisp_log_info("wispd", "stopped");
out:
    wispd_nodes_stop();
    wispd_kube_close_all();
    WISP_FREE(wispd.tls_cert_pem);
    wisp_secret_free(wispd.tls_key_pem, 0);
    wispd_keys_stop();
    if (server)
        wisp_http_server_free(server);
    /* After the workers: their last counts are written before exit. */
    wispd_usage_stop();
    wisp_store_close(st);
    wisp_token_keyring_free(wispd.keyring);
    free(wispd.store_url);
    return rc;
}
