/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp up`: start wispd for a state directory (if it is not running),
 * wait until it says it is ready, and report where it listens. Settings
 * given here (strict revocation, token-key rotation) are kept in
 * STATE/config.json, so a later plain `wisp up` starts wispd the same way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"

static const char usage[] =
    "usage: wisp up [--state DIR] [--project ID] [--[no-]strict-revocation]\n"
    "               [--token-key-rotation SECS] [--[no-]nodes] [--store URL]\n\n"
    "Starts wisp's daemons in the background for the state directory and waits\n"
    "until they serve. Idempotent: if they already run, it only reports them.\n"
    "State persists across down/up. The project is created with an owner on\n"
    "first start (default " WISP_DEFAULT_PROJECT ").\n\n"
    "  --state DIR               state directory [$WISP_STATE or ~/.local/state/wisp]\n"
    "  --project ID              project to create and use [" WISP_DEFAULT_PROJECT "]\n"
    "  --strict-revocation       a token minted as another identity stops working as\n"
    "                            soon as the grant it was minted under is removed\n"
    "  --no-strict-revocation    such tokens live until they expire (as on Google) [default]\n"
    "  --token-key-rotation SECS a new token sealing key this often [86400]\n"
    "  --nodes                   run the clusters' nodes: pods in network namespaces and\n"
    "                            the GKE metadata server (needs root)\n"
    "  --no-nodes                the control plane only [default]\n"
    "  --store URL               the store: postgres://... (several wispd replicas,\n"
    "                            each with its own --state, share one database) or\n"
    "                            sqlite:PATH [STATE/wisp.db]\n"
    "Settings are kept in STATE/config.json for later starts; they apply when\n"
    "wispd starts (wisp down, then wisp up, to change a running one).\n\n"
    "exit codes: 0 running, 100 usage, 111 could not start\n";

/* What `wisp up` may be told, parsed. */
struct up_opts {
    const char *dir, *project;
    int strict;        /* -1 unchanged, 0 off, 1 on */
    int nodes;         /* -1 unchanged, 0 off, 1 on */
    long rotation;     /* 0 unchanged */
    const char *store; /* NULL unchanged */
};

static int up_option(int val, const char *arg, void *ctx)
{
    struct up_opts *o = ctx;
    char *end;
    switch (val) {
    case 'S': o->strict = 1; return 0;
    case 'N': o->strict = 0; return 0;
    case 'n': o->nodes = 1; return 0;
    case 'o': o->nodes = 0; return 0;
    case 'u': o->store = arg; return 0;
    case 'r':
        o->rotation = strtol(arg, &end, 10);
        if (*end || o->rotation < 2 || o->rotation > 365L * 86400) {
            fprintf(stderr, "wisp: --token-key-rotation: seconds from 2 to 31536000\n");
            return -1;
        }
        return 0;
    }
    return -1;
}

static int parse(int argc, char **argv, struct up_opts *o)
{
    static const struct option lo[] = {{"strict-revocation", no_argument, NULL, 'S'},
                                       {"no-strict-revocation", no_argument, NULL, 'N'},
                                       {"token-key-rotation", required_argument, NULL, 'r'},
                                       {"nodes", no_argument, NULL, 'n'},
                                       {"no-nodes", no_argument, NULL, 'o'},
                                       {"store", required_argument, NULL, 'u'},
                                       {0}};
    *o = (struct up_opts){.strict = -1, .nodes = -1};
    return cli_parse_ex(argc, argv, usage, &o->dir, &o->project, lo, up_option, o);
}

char *cli_sibling(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return wisp_xstrdup(name);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    return wisp_xasprintf("%s/%s", self, name);
}

static int start_wispd(struct cli_state *s, const char *project)
{
    json_t *cfg = cli_state_config(s);
    int strict = json_is_true(json_object_get(cfg, "strictRevocation"));
    int nodes = json_is_true(json_object_get(cfg, "nodes"));
    char rotation[24] = "";
    if (json_is_integer(json_object_get(cfg, "tokenKeyRotation")))
        snprintf(rotation, sizeof(rotation), "%lld",
                 (long long)json_integer_value(json_object_get(cfg, "tokenKeyRotation")));
    char *store = json_is_string(json_object_get(cfg, "store"))
                      ? wisp_xstrdup(json_string_value(json_object_get(cfg, "store")))
                      : NULL;
    json_decref(cfg);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC))
        return -1;
    char *bin = cli_sibling("wispd");
    char *log = wisp_xasprintf("%s/wispd.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A session of its own, so the daemon outlives the shell that ran
         * `wisp up` and no terminal signal reaches it. */
        setsid();
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (null >= 0)
            dup2(null, 0);
        int ready = dup(pfd[1]); /* without O_CLOEXEC, so wispd inherits it */
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", ready);
        const char *args[14] = {"wispd", "--state", s->dir, "--project", project,
                                "--ready-fd", fdarg};
        int n = 7;
        if (strict)
            args[n++] = "--strict-revocation";
        if (nodes)
            args[n++] = "--nodes";
        if (*rotation) {
            args[n++] = "--token-key-rotation";
            args[n++] = rotation;
        }
        if (store) {
            args[n++] = "--store";
            args[n++] = store;
        }
        args[n] = NULL;
        execv(bin, (char *const *)args);
        fprintf(stderr, "wisp: cannot run %s: %s\n", bin, strerror(errno));
        _exit(111);
    }
    close(pfd[1]);
    free(log);
    free(store);
    /* Wait for "ready", the daemon's exit (EOF), or 60 s. */
    char buf[16] = "";
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    int rc = -1;
    if (poll(&p, 1, 60000) > 0 && read(pfd[0], buf, sizeof(buf) - 1) > 0 &&
        strncmp(buf, "ready", 5) == 0)
        rc = 0;
    close(pfd[0]);
    if (rc) {
        fprintf(stderr, "wisp: %s did not become ready; see %s/wispd.log\n", bin, s->dir);
        if (waitpid(pid, NULL, WNOHANG) == 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
    }
    free(bin);
    return rc;
}

int cli_up(int argc, char **argv)
{
    struct up_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *project = o.project;
    struct cli_state s;
    if (cli_state_open(&s, o.dir))
        return WISP_EXIT_SYS;
    /* A copy: saving the project below replaces s.project. */
    char *proj = wisp_xstrdup(project ? project : s.project ? s.project : WISP_DEFAULT_PROJECT);
    project = proj;
    if (s.project && strcmp(project, s.project) != 0) {
        fprintf(stderr, "wisp: %s already serves project %s (not %s); use another --state\n",
                s.dir, s.project, project);
        cli_state_close(&s);
        free(proj);
        return WISP_EXIT_USAGE;
    }
    if ((o.strict >= 0 &&
         cli_state_config_set(&s, "strictRevocation", json_boolean(o.strict))) ||
        (o.rotation && cli_state_config_set(&s, "tokenKeyRotation", json_integer(o.rotation))) ||
        (o.nodes >= 0 && cli_state_config_set(&s, "nodes", json_boolean(o.nodes))) ||
        (o.store && cli_state_config_set(&s, "store", json_string(o.store)))) {
        fprintf(stderr, "wisp: cannot save settings in %s/config.json\n", s.dir);
        cli_state_close(&s);
        free(proj);
        return WISP_EXIT_SYS;
    }
    struct cli_wispd w;
    rc = WISP_EXIT_OK;
    if (cli_wispd_running(&s, &w) && (o.strict >= 0 || o.rotation || o.nodes >= 0 || o.store))
        fprintf(stderr, "wisp: settings saved; they apply when wispd next starts (wisp down, "
                        "then wisp up)\n");
    if (!cli_wispd_running(&s, &w)) {
        if (cli_state_save_project(&s, project) || start_wispd(&s, project) ||
            !cli_wispd_running(&s, &w))
            rc = WISP_EXIT_SYS;
    }
    if (!rc)
        printf("wisp is up: project %s, state %s, wispd pid %d on https://%s:%d\n", project,
               s.dir, (int)w.pid, w.address, w.https_port);
    cli_state_close(&s);
    free(proj);
    return rc;
}
