/* SPDX-License-Identifier: Apache-2.0 */
/* wisp-node: one process per node of a cluster (docs/internals/NODE.md).
 * `wisp-node run …` brings the node's namespace up on a fabric and runs the
 * pods the Kubernetes API binds to it until SIGTERM, when it tears all of it
 * down; `fabric-up`, `fabric-down` and `sweep` manage the fabric and clean
 * up after a crash, for `wisp up`/`wisp down` and tests. Root only. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "node.h"
#include "wisp/log.h"
#include "wisp/node.h"

static const char usage[] =
    "usage:\n"
    "  wisp-node run --kube-api URL --kube-ca FILE --kube-token-file FILE --node NAME\n"
    "                --pod-cidr CIDR --state DIR --fabric NAME [options]\n"
    "      --fabric-cidr CIDR   the fabric's range (default " WISP_NODE_FABRIC_CIDR ")\n"
    "      --node-ip ADDR       the node's fabric address (default: from the pod range)\n"
    "      --netns NAME         the node's namespace (default: FABRIC-NODE)\n"
    "      --ca FILE            wisp's CA, added to the pods' CA bundle\n"
    "      --token-audience A   audience of projected tokens (default: the issuer)\n"
    "      --token-seconds N    their lifetime (default 3600, at least 600)\n"
    "      --restart-backoff-ms N  first container restart delay (default 10000)\n"
    "      --log-level L        err|warn|info|debug\n"
    "  wisp-node fabric-up NAME [--fabric-cidr CIDR]\n"
    "  wisp-node fabric-down NAME\n"
    "  wisp-node sweep PREFIX    remove every namespace named PREFIX* (PREFIX starts wisp-)\n";

static int bad(const char *what)
{
    fprintf(stderr, "wisp-node: %s\n%s", what, usage);
    return 2;
}

static int run(int argc, char **argv)
{
    struct agent_config cfg = {.token_seconds = 3600, .backoff_ms = 10000};
    const char *api = NULL, *token_file = NULL;
    struct kube k;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return bad("every option takes a value");
        i++;
        if (!strcmp(o, "--kube-api"))
            api = v;
        else if (!strcmp(o, "--kube-ca"))
            cfg.kube_ca = v;
        else if (!strcmp(o, "--kube-token-file"))
            token_file = v;
        else if (!strcmp(o, "--node"))
            cfg.node = v;
        else if (!strcmp(o, "--pod-cidr"))
            cfg.pod_cidr = v;
        else if (!strcmp(o, "--state"))
            cfg.state_dir = v;
        else if (!strcmp(o, "--fabric"))
            cfg.fabric = v;
        else if (!strcmp(o, "--fabric-cidr"))
            cfg.fabric_cidr = v;
        else if (!strcmp(o, "--node-ip"))
            cfg.node_ip = v;
        else if (!strcmp(o, "--netns"))
            cfg.netns = v;
        else if (!strcmp(o, "--ca"))
            cfg.ca_file = v;
        else if (!strcmp(o, "--token-audience"))
            cfg.audience = v;
        else if (!strcmp(o, "--token-seconds"))
            cfg.token_seconds = (unsigned)atoi(v);
        else if (!strcmp(o, "--restart-backoff-ms"))
            cfg.backoff_ms = (unsigned)atoi(v);
        else if (!strcmp(o, "--log-level")) {
            if (wisp_log_set_level(v) != 0)
                return bad("unknown log level");
        } else
            return bad("unknown option");
    }
    if (!api || !token_file || !cfg.node || !cfg.pod_cidr || !cfg.state_dir || !cfg.fabric)
        return bad("--kube-api, --kube-token-file, --node, --pod-cidr, --state and --fabric "
                   "are required");
    if (cfg.token_seconds < 600 || cfg.token_seconds > 48 * 3600 - 60)
        return bad("--token-seconds must be from 600 to 172740");
    if (strncmp(api, "https://127.0.0.1:", 18) != 0 && strncmp(api, "http://127.0.0.1:", 17) != 0)
        return bad("--kube-api must be on 127.0.0.1 (the node talks to loopback only)");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    kube_init(&k, api, cfg.kube_ca, token_file);
    int rc = agent_run(&cfg, &k);
    kube_free(&k);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    char why[256] = "";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (geteuid() != 0) {
        fputs("wisp-node: must run as root (it creates namespaces)\n", stderr);
        return 1;
    }
    if (!strcmp(argv[1], "run"))
        return run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "fabric-up") && (argc == 3 || argc == 5)) {
        const char *cidr = NULL;
        if (argc == 5) {
            if (strcmp(argv[3], "--fabric-cidr") != 0)
                return bad("unknown option");
            cidr = argv[4];
        }
        if (wisp_node_fabric_up(argv[2], cidr, why, sizeof(why)) != WISP_OK) {
            fprintf(stderr, "wisp-node: %s\n", why);
            return 1;
        }
        return 0;
    }
    if (!strcmp(argv[1], "fabric-down") && argc == 3) {
        wisp_node_fabric_down(argv[2]);
        return 0;
    }
    if (!strcmp(argv[1], "sweep") && argc == 3) {
        if (strncmp(argv[2], "wisp-", 5) != 0)
            return bad("the prefix must start with wisp-");
        printf("%d\n", wisp_node_sweep(argv[2]));
        return 0;
    }
    return bad("unknown command");
}
