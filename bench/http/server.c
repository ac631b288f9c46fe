/* SPDX-License-Identifier: Apache-2.0 */
/* The wisp side of bench/http: lib/http serving one fixed JSON body (read
 * from a file, so nginx can serve the very same bytes) on 127.0.0.1 for
 * every path. It measures the HTTP layer only: no routing beyond one
 * prefix, no identity lookup. Usage: server PORT THREADS BODY_FILE */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/http.h"

static struct wisp_http_server *g_srv;
static char g_body[4096];
static size_t g_body_len;

static void on_signal(int sig)
{
    (void)sig;
    wisp_http_server_stop(g_srv); /* async-signal-safe */
}

static void serve_token(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    wisp_http_add_header(req, "Metadata-Flavor", "Google");
    wisp_http_respond(req, 200, "application/json", g_body, g_body_len);
}

int main(int argc, char **argv)
{
    struct wisp_http_config cfg = {0};
    struct sigaction sa;
    FILE *fp;
    int port = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT THREADS BODY_FILE\n", argv[0]);
        return 100;
    }
    fp = fopen(argv[3], "rb");
    if (!fp) {
        perror(argv[3]);
        return 111;
    }
    g_body_len = fread(g_body, 1, sizeof(g_body), fp);
    fclose(fp);

    cfg.n_threads = (unsigned)strtoul(argv[2], NULL, 10);
    g_srv = wisp_http_server_new(&cfg);
    wisp_http_route(g_srv, NULL, NULL, "/", serve_token, NULL);
    struct wisp_http_listen_spec spec = {.addr = "127.0.0.1",
                                         .port = (int)strtol(argv[1], NULL, 10)};
    if (wisp_http_listen(g_srv, &spec, &port, NULL) != WISP_OK)
        return 111;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("ready %d\n", port);
    fflush(stdout);
    enum wisp_err err = wisp_http_server_run(g_srv);
    wisp_http_server_free(g_srv);
    return err == WISP_OK ? 0 : 111;
}
