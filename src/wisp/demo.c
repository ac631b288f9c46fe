/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp demo`: the seed's walkthrough, run with the real gcloud and kubectl
 * under exactly the environment `wisp env` prints, each command shown with
 * its output and checked. The walkthrough is a table of steps; pods report
 * what they saw through their log files, as in tests/integration/t_seed.sh. */
#include <ctype.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"
#include "wisp/buf.h"

static const char usage[] =
    "usage: wisp demo [--state DIR] [--project ID] [--cleanup]\n\n"
    "Runs the GKE Workload Identity Federation walkthrough with the real gcloud and\n"
    "kubectl against this wisp: a cluster with a workload pool, a Kubernetes\n"
    "ServiceAccount granted a bucket by its principal identifier, a linked IAM\n"
    "service account, a quota project, revocation and disabling; pods ask the\n"
    "metadata server for a token and list the bucket. Starts wisp if needed (with\n"
    "--nodes as root; without root only the control-plane steps run). Everything\n"
    "it creates is named demo-*; a new run first removes what the last one left.\n\n"
    "  --cleanup   remove what it created at the end (default: leave it to look at)\n\n"
    "exit codes: 0 every step passed, 1 a step failed, 100 usage, 111 could not start\n";

enum { OUT_MAX = 1 << 20, CMD_SECS = 120, SHOW_LINES = 10, SHOW_COLS = 150 };

enum kind {
    RUN,  /* argv; exit 0 (or output containing `tolerate`) and `want` in the output */
    POD,  /* argv = {pod, ksa}: apply the test pod, wait for its output, check `want` */
};

struct step {
    enum kind kind;
    int nodes;               /* needs pods: root and wisp up --nodes */
    const char *what;        /* the summary's words */
    const char *argv[16];    /* templates; {NAME} is a variable below */
    const char *want[2];     /* the output contains these */
    const char *absent;      /* and not this */
    const char *tolerate;    /* a failure whose output says this is fine */
    const char *capture;     /* a variable set to the trimmed output */
    const char *more_than;   /* `wisp usage`: more generateAccessToken calls than in
                              * this variable (an earlier `wisp usage` captured) */
};

/* The seed's test-app.yaml with the Standard nodeSelector; the container
 * does what the seed does by hand in its shell, then sleeps as the seed's. */
static const char pod_yaml[] =
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: {POD}\n"
    "  namespace: {NS}\n"
    "spec:\n"
    "  serviceAccountName: {KSA}\n"
    "  containers:\n"
    "  - name: test-pod\n"
    "    image: google/cloud-sdk:slim\n"
    "    command:\n"
    "    - sh\n"
    "    - -c\n"
    "    - |\n"
    "      M=http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default\n"
    "      curl -sS -H 'Metadata-Flavor: Google' $M/email; echo\n"
    "      T=$(curl -sS -H 'Metadata-Flavor: Google' $M/token | python3 -c "
    "'import json,sys; print(json.load(sys.stdin).get(\"access_token\",\"none\"))' "
    "2>/dev/null)\n"
    "      curl -sS -X GET -H \"Authorization: Bearer $T\" "
    "https://storage.googleapis.com/storage/v1/b/{B}/o | python3 -c "
    "'import json,sys; print(json.dumps(json.load(sys.stdin)))' 2>&1\n"
    "      echo DONE; sleep infinity\n"
    "  nodeSelector:\n"
    "    iam.gke.io/gke-metadata-server-enabled: \"true\"\n";

#define PR(ksa)                                                                              \
    "principal://iam.googleapis.com/projects/{NUM}/locations/global/workloadIdentityPools/" \
    "{POOL}/subject/ns/{NS}/sa/" ksa
#define OBJECTS "\"kind\": \"storage#objects\""
#define DENIED "\"code\": 403"

static const struct step steps[] = {
    {RUN, 0, "project number", {"gcloud", "projects", "describe", "{P}", "--format=value(projectNumber)"},
     .want = {"{NUM}"}},
    {RUN, 0, "cluster with a workload pool",
     {"gcloud", "container", "clusters", "create", "{C}", "--location={L}",
      "--workload-pool={POOL}", "--num-nodes=1", "--quiet"}},
    {RUN, 0, "node pool on the GKE metadata server",
     {"gcloud", "container", "node-pools", "create", "demo-pool", "--cluster={C}", "--region={L}",
      "--workload-metadata=GKE_METADATA", "--num-nodes=1"}},
    {RUN, 0, "get-credentials", {"gcloud", "container", "clusters", "get-credentials", "{C}", "--location={L}"}},
    {RUN, 0, "namespace", {"kubectl", "create", "namespace", "{NS}"}},
    {RUN, 0, "Kubernetes ServiceAccount", {"kubectl", "create", "serviceaccount", "demo-ksa", "--namespace", "{NS}"}},
    {RUN, 0, "bucket", {"gcloud", "storage", "buckets", "create", "gs://{B}"}},
    {RUN, 0, "objectViewer for the KSA's principal identifier",
     {"gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://{B}",
      "--role=roles/storage.objectViewer", "--member=" PR("demo-ksa"), "--condition=None"}},
    {POD, 1, "a pod of demo-ksa lists the bucket", {"demo-pod", "demo-ksa"}, .want = {"{POOL}", OBJECTS}},
    {RUN, 1, "the pod is Running", {"kubectl", "get", "pods", "--namespace={NS}"}, .want = {"Running"}},
    /* The alternative path: a KSA linked to an IAM service account. */
    {RUN, 0, "second ServiceAccount", {"kubectl", "create", "serviceaccount", "demo-linked", "--namespace={NS}"}},
    {RUN, 0, "IAM service account", {"gcloud", "iam", "service-accounts", "create", "demo-gsa", "--project={P}"}},
    {RUN, 0, "objectViewer for the IAM service account",
     {"gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://{B}",
      "--role=roles/storage.objectViewer", "--member=serviceAccount:{GSA}", "--condition=None"}},
    {RUN, 0, "annotate the KSA with the IAM service account",
     {"kubectl", "annotate", "serviceaccount", "demo-linked", "--namespace", "{NS}",
      "iam.gke.io/gcp-service-account={GSA}"}},
    {POD, 1, "without workloadIdentityUser the pod gets no token", {"demo-unlinked-pod", "demo-linked"},
     .want = {"{GSA}", "\"code\": 401"}},
    {RUN, 0, "workloadIdentityUser for serviceAccount:POOL[NS/KSA]",
     {"gcloud", "iam", "service-accounts", "add-iam-policy-binding", "{GSA}", "--role",
      "roles/iam.workloadIdentityUser", "--member", "serviceAccount:{POOL}[{NS}/demo-linked]",
      "--condition=None"}},
    {POD, 1, "a pod of demo-linked lists the bucket as the GSA", {"demo-linked-pod", "demo-linked"},
     .want = {"{GSA}", OBJECTS}},
    /* The quota project for IAM Credentials calls. */
    {RUN, 0, "quota project", {"gcloud", "projects", "create", "{Q}"}, .tolerate = "already in use"},
    {RUN, 0, "usage charged to it so far", {"wisp", "usage", "--project", "{Q}"}, .capture = "U0"},
    {RUN, 0, "serviceUsageConsumer on the quota project for the KSA",
     {"gcloud", "projects", "add-iam-policy-binding", "{Q}", "--role=roles/serviceusage.serviceUsageConsumer",
      "--member=" PR("demo-linked"), "--condition=None"}},
    {RUN, 0, "annotate the KSA with the quota project",
     {"kubectl", "annotate", "serviceaccount", "demo-linked", "--namespace", "{NS}",
      "iam.gke.io/credential-quota-project={Q}"}},
    {POD, 1, "a pod of demo-linked gets its token on the quota project", {"demo-quota-pod", "demo-linked"},
     .want = {"{GSA}", OBJECTS}},
    {RUN, 1, "wisp usage shows generateAccessToken on the quota project",
     {"wisp", "usage", "--project", "{Q}"}, .want = {"generateAccessToken"}, .more_than = "U0"},
    /* Revocation: remove the allow policy; the next pod is denied. */
    {RUN, 0, "remove the principal's binding",
     {"gcloud", "storage", "buckets", "remove-iam-policy-binding", "gs://{B}",
      "--role=roles/storage.objectViewer", "--member=" PR("demo-ksa")}},
    {POD, 1, "a new pod of demo-ksa is denied", {"demo-revoked-pod", "demo-ksa"}, .want = {DENIED}},
    /* Disabling: every node pool to GCE_METADATA, then the cluster. */
    {RUN, 0, "default-pool to GCE_METADATA",
     {"gcloud", "container", "node-pools", "update", "default-pool", "--cluster={C}",
      "--workload-metadata=GCE_METADATA"}},
    {RUN, 0, "demo-pool to GCE_METADATA",
     {"gcloud", "container", "node-pools", "update", "demo-pool", "--cluster={C}",
      "--workload-metadata=GCE_METADATA"}},
    {RUN, 0, "disable Workload Identity on the cluster",
     {"gcloud", "container", "clusters", "update", "{C}", "--disable-workload-identity"}},
    {RUN, 0, "the cluster has no workload pool",
     {"gcloud", "container", "clusters", "describe", "{C}", "--location={L}",
      "--format=value(name,workloadIdentityConfig)"},
     .want = {"{C}"}, .absent = "svc.id.goog"},
};

/* What the demo creates, removed in this order (the quota project stays:
 * projects are not deleted; only its grant is removed). */
static const char *const cleanup[][16] = {
    {"gcloud", "container", "clusters", "delete", "{C}", "--location={L}", "--quiet"},
    {"gcloud", "storage", "buckets", "delete", "gs://{B}", "--quiet"},
    {"gcloud", "iam", "service-accounts", "delete", "{GSA}", "--quiet"},
    {"gcloud", "projects", "remove-iam-policy-binding", "{Q}",
     "--role=roles/serviceusage.serviceUsageConsumer", "--member=" PR("demo-linked")},
};

enum { MAX_VARS = 20 };

struct demo_var {
    const char *name;
    char *value;  /* from malloc() */
};

struct demo {
    char *self;           /* this wisp binary */
    char *state;          /* the state directory */
    char **envp;          /* `wisp env`'s exports + PATH; NULL-terminated, owned */
    size_t n_env;
    struct demo_var vars[MAX_VARS];
    size_t n_vars;
};

static void var_set(struct demo *d, const char *name, const char *value)
{
    for (size_t i = 0; i < d->n_vars; i++) {
        if (strcmp(d->vars[i].name, name) == 0) {
            free(d->vars[i].value);
            d->vars[i].value = wisp_xstrdup(value);
            return;
        }
    }
    if (d->n_vars < MAX_VARS)
        d->vars[d->n_vars++] = (struct demo_var){name, wisp_xstrdup(value)};
}

/* The variable whose name is the n bytes at name, or NULL. */
static const char *var_get(const struct demo *d, const char *name, size_t n)
{
    for (size_t i = 0; i < d->n_vars; i++) {
        if (strlen(d->vars[i].name) == n && strncmp(d->vars[i].name, name, n) == 0)
            return d->vars[i].value;
    }
    return NULL;
}

/* Replaces each {NAME} that is a variable; values may hold variables of
 * their own (depth-limited). Anything else, YAML braces included, stays. */
static void expand_into(const struct demo *d, const char *t, struct wisp_buf *b, int depth)
{
    while (*t) {
        const char *close = *t == '{' ? strchr(t, '}') : NULL;
        const char *v = close && depth < 4 ? var_get(d, t + 1, (size_t)(close - t - 1)) : NULL;
        if (v) {
            expand_into(d, v, b, depth + 1);
            t = close + 1;
        } else {
            wisp_buf_append(b, t++, 1);
        }
    }
}

static const char *var(const struct demo *d, const char *name)
{
    return var_get(d, name, strlen(name));
}

static char *expand(const struct demo *d, const char *t)
{
    struct wisp_buf b;
    wisp_buf_init(&b, OUT_MAX);
    wisp_buf_appends(&b, "");
    expand_into(d, t, &b, 0);
    return wisp_buf_steal(&b);
}

/* Runs argv (argv[0] "wisp" is this binary) with the demo's environment,
 * stdin from `in` (or /dev/null), stdout and stderr into *out. Returns the
 * exit status, or -1 when it could not run or ran past CMD_SECS. */
static int run(const struct demo *d, char *const *argv, const char *in, char **out)
{
    int op[2], ip[2] = {-1, -1}, status = -1;
    fflush(stdout); /* what was shown so far, before a slow command */
    struct wisp_buf b;
    wisp_buf_init(&b, OUT_MAX);
    wisp_buf_appends(&b, "");
    if (pipe2(op, O_CLOEXEC) || (in && pipe2(ip, O_CLOEXEC))) {
        *out = wisp_buf_steal(&b);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in)
        posix_spawn_file_actions_adddup2(&fa, ip[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, op[1], 2);
    const char *prog = strcmp(argv[0], "wisp") == 0 ? d->self : argv[0];
    pid_t pid;
    int err = posix_spawnp(&pid, prog, &fa, NULL, argv, d->envp);
    posix_spawn_file_actions_destroy(&fa);
    close(op[1]);
    if (in) {
        close(ip[0]);
        /* Manifests are far below a pipe's capacity: no deadlock. */
        if (!err && write(ip[1], in, strlen(in)) < 0)
            err = 1;
        close(ip[1]);
    }
    if (err) {
        wisp_buf_printf(&b, "cannot run %s: %s", prog, strerror(err));
        goto out;
    }
    time_t end = time(NULL) + CMD_SECS;
    struct pollfd p = {.fd = op[0], .events = POLLIN};
    char chunk[4096];
    ssize_t n = 1;
    while (n > 0 && time(NULL) < end) {
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if ((n = read(op[0], chunk, sizeof(chunk))) > 0)
            wisp_buf_append(&b, chunk, (size_t)n);
    }
    if (n > 0) {
        kill(pid, SIGKILL);
        wisp_buf_printf(&b, "\n(killed after %d s)", CMD_SECS);
    }
    int ws;
    if (waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && n <= 0)
        status = WEXITSTATUS(ws);
out:
    close(op[0]);
    *out = wisp_buf_steal(&b);
    return status;
}

enum { MAX_ARGS = 16 };

/* argv from a template (at most MAX_ARGS - 1 words), NULL-terminated. */
static void argv_expand(const struct demo *d, const char *const *tmpl, char **argv)
{
    size_t n = 0;
    for (; n < MAX_ARGS - 1 && tmpl[n]; n++)
        argv[n] = expand(d, tmpl[n]);
    argv[n] = NULL;
}

static void argv_free(char **argv)
{
    for (size_t i = 0; argv[i]; i++)
        free(argv[i]);
}

/* Runs argv from a template, quietly; the trimmed output, or NULL on failure. */
static char *quiet(const struct demo *d, const char *const *tmpl)
{
    char *argv[MAX_ARGS], *out;
    argv_expand(d, tmpl, argv);
    int rc = run(d, argv, NULL, &out);
    argv_free(argv);
    size_t len = strlen(out);
    while (len && isspace((unsigned char)out[len - 1]))
        out[--len] = '\0';
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The command as a shell line after lead, quoting words that need it. */
static void show_cmd_as(const char *lead, char *const *argv)
{
    fputs(lead, stdout);
    for (size_t i = 0; argv[i]; i++)
        printf(strpbrk(argv[i], " []'\"$()*") ? " '%s'" : " %s", argv[i]);
    putchar('\n');
}

static void show_cmd(char *const *argv)
{
    show_cmd_as("\n$", argv);
}

/* The output, indented, at most SHOW_LINES lines of SHOW_COLS columns. */
static void show_out(const char *out)
{
    size_t line = 0, more = 0;
    while (*out) {
        size_t n = strcspn(out, "\n");
        size_t shown = n;
        while (shown && isspace((unsigned char)out[shown - 1]))
            shown--;
        if (shown && line < SHOW_LINES)
            printf("    %.*s%s\n", (int)(shown > SHOW_COLS ? SHOW_COLS : shown), out,
                   shown > SHOW_COLS ? " …" : "");
        line += shown != 0;
        more += shown != 0 && line > SHOW_LINES;
        out += n + (out[n] == '\n');
    }
    if (more)
        printf("    … (%zu more lines)\n", more);
}

/* generateAccessToken calls in `wisp usage` output (the last column). */
static long calls(const char *out)
{
    long total = 0;
    for (const char *l = strstr(out, "generateAccessToken"); l; l = strstr(l + 1, "generateAccessToken")) {
        const char *eol = strchrnul(l, '\n');
        while (eol > l && !isdigit((unsigned char)eol[-1]))
            eol--;
        while (eol > l && isdigit((unsigned char)eol[-1]))
            eol--;
        total += strtol(eol, NULL, 10);
    }
    return total;
}

/* A pod step: apply the test pod, then wait up to 30 s for the output its
 * container writes to STATE/nodes/PREFIX/NODE/pods/UID/CONTAINER.log. */
static int pod_step(struct demo *d, const struct step *st, int first, char **out)
{
    var_set(d, "POD", st->argv[0]);
    var_set(d, "KSA", st->argv[1]);
    char *yaml = expand(d, pod_yaml);
    char *argv[] = {"kubectl", "apply", "-f", "-", NULL};
    fputs("\n$ kubectl apply -f - <<EOF", stdout);
    if (first)
        printf("\n%sEOF\n", yaml);
    else
        printf("   (the same test-app.yaml with name: %s, serviceAccountName: %s)\n",
               st->argv[0], st->argv[1]);
    int rc = run(d, argv, yaml, out);
    free(yaml);
    show_out(*out);
    if (rc != 0)
        return rc;
    free(*out);
    *out = wisp_xasprintf("no output from pod %s within 30 s", st->argv[0]);
    static const char *const uid_argv[] = {"kubectl", "get", "pod", "{POD}", "--namespace={NS}",
                                           "-o", "jsonpath={.metadata.uid}", NULL};
    for (time_t end = time(NULL) + 30; time(NULL) < end; usleep(200000)) {
        char *uid = quiet(d, uid_argv);
        if (!uid || !*uid) {
            free(uid);
            continue;
        }
        char *pat = wisp_xasprintf("%s/nodes/*/*/pods/%s/*.log", d->state, uid);
        free(uid);
        glob_t g;
        int found = glob(pat, 0, NULL, &g) == 0;
        char *log = NULL;
        if (found) {
            FILE *f = fopen(g.gl_pathv[0], "r");
            struct wisp_buf b;
            wisp_buf_init(&b, OUT_MAX);
            wisp_buf_appends(&b, "");
            char chunk[4096];
            size_t n;
            while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                wisp_buf_append(&b, chunk, n);
            if (f)
                fclose(f);
            log = wisp_buf_steal(&b);
        }
        globfree(&g);
        free(pat);
        if (log && strstr(log, "DONE\n")) {
            free(*out);
            *out = log; /* the log is the step's output */
            printf("  (pod %s/%s prints:)\n", var(d, "NS"), st->argv[0]);
            show_out(log);
            return 0;
        }
        free(log);
    }
    show_out(*out);
    return -1;
}

/* Runs one step; 1 when its expectation holds. */
static int step_run(struct demo *d, const struct step *st, int *first_pod)
{
    char *out = NULL;
    int rc;
    if (st->kind == POD) {
        rc = pod_step(d, st, *first_pod, &out);
        *first_pod = 0;
    } else {
        char *argv[MAX_ARGS];
        argv_expand(d, st->argv, argv);
        show_cmd(argv);
        /* wispd writes usage counts about once a second: look again for 4 s. */
        for (int tries = st->more_than ? 8 : 1; tries > 0; tries--) {
            free(out);
            rc = run(d, argv, NULL, &out);
            const char *before = st->more_than ? var(d, st->more_than) : NULL;
            if (!before || calls(out) > calls(before) || tries == 1)
                break;
            usleep(500000);
        }
        show_out(out);
        argv_free(argv);
    }
    int ok = rc == 0 || (rc > 0 && st->tolerate && strstr(out, st->tolerate));
    for (size_t i = 0; ok && i < 2 && st->want[i]; i++) {
        char *w = expand(d, st->want[i]);
        if (!strstr(out, w)) {
            printf("  expected the output to contain: %s\n", w);
            ok = 0;
        }
        free(w);
    }
    char *absent = st->absent ? expand(d, st->absent) : NULL;
    if (ok && absent && strstr(out, absent)) {
        printf("  expected the output not to contain: %s\n", absent);
        ok = 0;
    }
    free(absent);
    if (ok && st->more_than) {
        const char *before = var(d, st->more_than);
        long now = calls(out), then = before ? calls(before) : 0;
        printf("  generateAccessToken calls on the quota project: %ld -> %ld\n", then, now);
        ok = now > then;
    }
    if (ok && st->capture)
        var_set(d, st->capture, out);
    if (!ok && rc != 0)
        printf("  (exit status %d)\n", rc);
    free(out);
    return ok;
}

/* Parses `export NAME='value'` lines (with '\'' for a quote), as env.c
 * writes them, into d->envp after PATH and the locale. */
static int load_env(struct demo *d, const char *text)
{
    static const char *const keep[] = {"PATH", "LANG", "LC_ALL", "TERM"};
    size_t cap = 64;
    d->envp = wisp_xmalloc(cap * sizeof(char *));
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *v = getenv(keep[i]);
        if (v)
            d->envp[d->n_env++] = wisp_xasprintf("%s=%s", keep[i], v);
    }
    for (const char *l = text; (l = strstr(l, "export ")); ) {
        l += 7;
        const char *eq = strchr(l, '=');
        if (!eq || eq[1] != '\'')
            return -1;
        struct wisp_buf b;
        wisp_buf_init(&b, OUT_MAX);
        wisp_buf_append(&b, l, (size_t)(eq - l + 1));
        const char *p = eq + 2;
        for (; *p; p++) {
            if (*p == '\'' && strncmp(p, "'\\''", 4) == 0) {
                wisp_buf_append(&b, "'", 1);
                p += 3;
            } else if (*p == '\'') {
                break;
            } else {
                wisp_buf_append(&b, p, 1);
            }
        }
        if (d->n_env + 2 >= cap)
            d->envp = wisp_xrealloc(d->envp, (cap *= 2) * sizeof(char *));
        char *kv = wisp_buf_steal(&b);
        if (strncmp(kv, "CLOUDSDK_CORE_PROJECT=", 22) == 0)
            var_set(d, "P", kv + 22);
        if (strncmp(kv, "CLOUDSDK_COMPUTE_REGION=", 24) == 0)
            var_set(d, "L", kv + 24);
        d->envp[d->n_env++] = kv;
        l = p;
    }
    d->envp[d->n_env] = NULL;
    return var(d, "P") && var(d, "L") ? 0 : -1;
}

static int demo_option(int val, const char *arg, void *ctx)
{
    (void)arg;
    if (val != 'c')
        return -1;
    *(int *)ctx = 1;
    return 0;
}

/* Runs the cleanup table; loud shows every command, else only those that
 * removed something, under a heading. */
static void remove_all(struct demo *d, int loud)
{
    int said = loud;
    for (size_t i = 0; i < sizeof(cleanup) / sizeof(cleanup[0]); i++) {
        char *argv[MAX_ARGS], *out;
        argv_expand(d, cleanup[i], argv);
        int rc = run(d, argv, NULL, &out);
        if (!said && rc == 0) {
            puts("\nFirst, what an earlier `wisp demo` left:");
            said = 1;
        }
        if (loud || rc == 0) {
            show_cmd(argv);
            show_out(out);
        }
        free(out);
        argv_free(argv);
    }
}

int cli_demo(int argc, char **argv)
{
    static const struct option lo[] = {{"cleanup", no_argument, NULL, 'c'}, {0}};
    const char *dir = NULL, *project = NULL;
    int clean = 0;
    int rc = cli_parse_ex(argc, argv, usage, &dir, &project, lo, demo_option, &clean);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct demo d = {.self = cli_sibling("wisp")};
    struct cli_state s;
    if (cli_state_open(&s, dir)) {
        free(d.self);
        return WISP_EXIT_SYS;
    }
    d.state = s.dir;
    int root = geteuid() == 0;
    struct cli_wispd w;
    char *out = NULL;
    rc = WISP_EXIT_SYS;
    /* Our own verbs run in the caller's environment; only gcloud and
     * kubectl get the one `wisp env` prints. */
    d.envp = environ;
    if (!cli_wispd_running(&s, &w)) {
        /* `wisp up` itself, so that its settings and messages are the usual ones. */
        char *up[8] = {"wisp", "up", "--state", s.dir};
        int k = 4;
        if (project) {
            up[k++] = "--project";
            up[k++] = (char *)project;
        }
        if (root)
            up[k++] = "--nodes";
        show_cmd(up);
        int urc = run(&d, up, NULL, &out);
        show_out(out);
        free(out);
        out = NULL;
        if (urc != 0) {
            d.envp = NULL; /* environ is not ours to free */
            goto out;
        }
    }
    char *rec = wisp_xasprintf("%s/run/nodes", s.dir);
    int nodes = access(rec, F_OK) == 0;
    free(rec);
    if (!root)
        puts("\nwisp demo: not root, so no pods (they need network namespaces): the steps "
             "that run pods are skipped; run it as root for the whole walkthrough.");
    else if (!nodes)
        printf("\nwisp demo: wisp runs without nodes; for the pod steps: wisp down --state %s, "
               "then wisp demo again.\n", s.dir);
    char *env_argv[] = {"wisp", "env", "--state", s.dir, NULL};
    int erc = run(&d, env_argv, NULL, &out);
    d.envp = NULL;
    if (erc != 0 || load_env(&d, out)) {
        fprintf(stderr, "wisp demo: `wisp env` failed: %s\n", out);
        goto out;
    }
    printf("\nwisp demo: the seed's walkthrough under `eval \"$(wisp env --state %s)\"`\n", s.dir);
    const char *p = var(&d, "P");
    char *pool = wisp_xasprintf("%s.svc.id.goog", p);
    char *gsa = wisp_xasprintf("demo-gsa@%s.iam.gserviceaccount.com", p);
    char *bucket = wisp_xasprintf("demo-%s-bucket", p);
    char *q = wisp_xasprintf("demo-q-%.23s", p);
    var_set(&d, "POOL", pool);
    var_set(&d, "GSA", gsa);
    var_set(&d, "B", bucket);
    var_set(&d, "Q", q);
    /* Each run names its cluster anew (demo-cluster-RUN), because wispd keeps
     * a deleted cluster's node files (its CA) and would hand them to a new
     * cluster of the same name; the previous run's cluster goes first. */
    json_t *cfg = cli_state_config(&s);
    long run_no = (long)json_integer_value(json_object_get(cfg, "demoRuns")) + 1;
    json_decref(cfg);
    cli_state_config_set(&s, "demoRuns", json_integer(run_no));
    char cname[48];
    snprintf(cname, sizeof(cname), "demo-cluster-%ld", run_no - 1);
    var_set(&d, "C", cname);
    var_set(&d, "NS", "demo-ns");
    free(pool);
    free(gsa);
    free(bucket);
    free(q);
    static const char *const num_argv[] = {"gcloud", "projects", "describe", "{P}",
                                           "--format=value(projectNumber)", NULL};
    char *num = quiet(&d, num_argv);
    var_set(&d, "NUM", num ? num : "?");
    free(num);
    /* A second run starts from scratch: what an earlier one left goes first. */
    remove_all(&d, 0);
    snprintf(cname, sizeof(cname), "demo-cluster-%ld", run_no);
    var_set(&d, "C", cname);

    size_t n = sizeof(steps) / sizeof(steps[0]);
    char result[sizeof(steps) / sizeof(steps[0])]; /* 'o' ok, 'F' failed, 's' skipped */
    int first_pod = 1, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (steps[i].nodes && !(root && nodes)) {
            result[i] = 's';
            continue;
        }
        result[i] = step_run(&d, &steps[i], &first_pod) ? 'o' : 'F';
        failed += result[i] == 'F';
    }
    puts("\nSummary:");
    for (size_t i = 0; i < n; i++)
        printf("  %-7s %s\n", result[i] == 'o' ? "ok" : result[i] == 's' ? "skipped" : "FAILED",
               steps[i].what);
    if (clean) {
        puts("\nRemoving what the demo created (--cleanup):");
        remove_all(&d, 1);
    } else {
        printf("\nLeft for you to look at: cluster %s (namespace %s, its pods), bucket gs://%s,\n"
               "service account %s, quota project %s. Remove them with:\n"
               "  wisp demo --state %s --cleanup   (runs the demo again, then removes it), or:\n"
               "  eval \"$(wisp env --state %s)\"\n",
               var(&d, "C"), var(&d, "NS"), var(&d, "B"),
               var(&d, "GSA"), var(&d, "Q"), s.dir, s.dir);
        for (size_t i = 0; i < sizeof(cleanup) / sizeof(cleanup[0]); i++) {
            char *cmd[MAX_ARGS];
            argv_expand(&d, cleanup[i], cmd);
            show_cmd_as(" ", cmd);
            argv_free(cmd);
        }
    }
    printf("\nwisp demo: %zu steps, %d failed%s\n", n, failed,
           root && nodes ? "" : " (pod steps skipped)");
    rc = failed ? WISP_EXIT_FAIL : WISP_EXIT_OK;
out:
    free(out);
    for (size_t i = 0; i < d.n_env; i++)
        free(d.envp[i]);
    free(d.envp);
    for (size_t i = 0; i < d.n_vars; i++)
        free(d.vars[i].value);
    free(d.self);
    cli_state_close(&s);
    return rc;
}
