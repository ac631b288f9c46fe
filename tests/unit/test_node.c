/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/node as root, in real namespaces named wisp-tnPID-…: a fabric,
 * a node and pods; reachability of the node's 169.254.169.254 with the pod's
 * own source address, pod-to-pod and pod-to-fabric; the pod's private files,
 * hostname and PID namespace as its command sees them; exit codes, restarts;
 * address allocation under churn; and that teardown leaves no namespace,
 * root-namespace link or process behind. The group teardown removes every
 * object of this run even when a test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wisp/alloc.h"
#include "wisp/node.h"

static char prefix[64], fabric[80], state_dir[128], ca_file[160], marker[64];
static char *links_before, *netns_before;
static struct wisp_node *node, *small;

/* ---- helpers ------------------------------------------------------------------ */

static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    char *out = wisp_xcalloc(1, 65536);
    size_t n = 0;
    if (!f)
        return out;
    while (n < 65535) {
        size_t r = fread(out + n, 1, 65535 - n, f);
        if (r == 0)
            break;
        n += r;
    }
    pclose(f);
    return out;
}

static char *slurp(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cat '%s'", path);
    return run(cmd);
}

/* The root namespace's links (names and flags), addresses, routes and
 * rules: none of it may change. */
static char *root_links(void)
{
    return run("ip -o link show | awk '{print $2, $3}'; ip -o addr show; ip route show table all;"
               " ip rule show");
}

static char *wisp_netns(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "ip netns list | grep '^%s' || true", prefix);
    return run(cmd);
}

/* Processes whose command line carries this run's marker. */
static int marked_processes(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    char path[300], buf[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0)
            continue;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[r] = '\0';
        if (strstr(buf, marker))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* A listening TCP socket created inside the namespace at path, the way
 * lib/http opens listeners there. */
static int listen_in(const char *path, const char *ip, int port)
{
    int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(path, O_RDONLY | O_CLOEXEC), s = -1, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(setns(fd, CLONE_NEWNET), 0);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(s, 8) == 0;
    if (setns(saved, CLONE_NEWNET) != 0)
        abort();
    close(saved);
    close(fd);
    assert_true(ok);
    return s;
}

/* Connects from inside the namespace at path; returns the socket or -1. */
static int connect_from(const char *path, const char *ip, int port)
{
    int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(path, O_RDONLY | O_CLOEXEC), s;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {2, 0};
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(setns(fd, CLONE_NEWNET), 0);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(s);
        s = -1;
    }
    if (setns(saved, CLONE_NEWNET) != 0)
        abort();
    close(saved);
    close(fd);
    return s;
}

/* Accepts one connection (within 2 s) and returns the peer's address. */
static void accept_peer(int ls, char out[16])
{
    struct pollfd pfd = {.fd = ls, .events = POLLIN};
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    out[0] = '\0';
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    int c = accept(ls, (struct sockaddr *)&sa, &len);
    assert_true(c >= 0);
    inet_ntop(AF_INET, &sa.sin_addr, out, 16);
    close(c);
}

static char *sleeper_argv[4];
static char sleep_arg[64];

static struct wisp_node_pod *start_held(struct wisp_node *n, const char *name, char **argv,
                                        enum wisp_node_restart restart, int hold)
{
    char uid[64];
    static int seq;
    struct wisp_node_container c = {.name = "main", .argv = argv};
    snprintf(uid, sizeof(uid), "%08x-0000-4000-8000-%012d", (unsigned)getpid(), ++seq);
    struct wisp_node_pod_spec s = {.uid = uid, .ns = "team-a", .name = name, .containers = &c,
                                   .n_containers = 1, .restart = restart, .backoff_ms = 100,
                                   .hold = hold};
    struct wisp_node_pod *p = NULL;
    char why[256] = "";
    enum wisp_err err = wisp_node_pod_start(n, &s, &p, why, sizeof(why));
    if (err != WISP_OK)
        fprintf(stderr, "pod_start %s: %s\n", name, why);
    assert_int_equal(err, WISP_OK);
    return p;
}

static struct wisp_node_pod *start_pod(struct wisp_node *n, const char *name, char **argv,
                                       enum wisp_node_restart restart)
{
    return start_held(n, name, argv, restart, 0);
}

/* Waits up to 5 s for the next event of p. */
static void next_event(struct wisp_node_pod *p, struct wisp_node_event *ev)
{
    for (int i = 0; i < 500; i++) {
        int r = wisp_node_pod_next_event(p, ev);
        if (r == 1)
            return;
        assert_int_not_equal(r, -1);
        struct pollfd pfd = {.fd = wisp_node_pod_event_fd(p), .events = POLLIN};
        poll(&pfd, 1, 10);
    }
    fail_msg("no event from the pod");
}

/* ---- fixture ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    char why[256] = "";
    if (geteuid() != 0)
        return 0;
    snprintf(prefix, sizeof(prefix), "wisp-tn%d", (int)getpid());
    snprintf(fabric, sizeof(fabric), "%s-f", prefix);
    snprintf(state_dir, sizeof(state_dir), "/tmp/%s-state", prefix);
    snprintf(ca_file, sizeof(ca_file), "/tmp/%s-ca.pem", prefix);
    snprintf(marker, sizeof(marker), "9%d.25", (int)getpid());
    snprintf(sleep_arg, sizeof(sleep_arg), "%s", marker);
    sleeper_argv[0] = "sleep";
    sleeper_argv[1] = sleep_arg;
    FILE *f = fopen(ca_file, "w");
    if (!f)
        return -1;
    fputs("-----BEGIN CERTIFICATE-----\nWISPTESTCA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    links_before = root_links();
    netns_before = wisp_netns();
    if (wisp_node_fabric_up(fabric, NULL, why, sizeof(why)) != WISP_OK) {
        fprintf(stderr, "fabric_up: %s\n", why);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[512];
    if (geteuid() != 0)
        return 0;
    wisp_node_down(node);
    wisp_node_down(small);
    node = small = NULL;
    wisp_node_fabric_down(fabric);
    wisp_node_sweep(prefix);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", state_dir, ca_file);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", state_dir);
    free(links_before);
    free(netns_before);
    return 0;
}

static struct wisp_node *up(const char *name, const char *pod_cidr, const char *ip)
{
    char why[256] = "", dir[256];
    struct wisp_node *n = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", state_dir, name);
    struct wisp_node_config cfg = {.fabric = fabric, .name = name, .pod_cidr = pod_cidr,
                                   .node_ip = ip, .state_dir = dir, .ca_file = ca_file};
    enum wisp_err err = wisp_node_up(&cfg, &n, why, sizeof(why));
    if (err != WISP_OK)
        fprintf(stderr, "node_up: %s\n", why);
    assert_int_equal(err, WISP_OK);
    return n;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_pure(void **state)
{
    (void)state;
    struct wisp_node_cidr f, p;
    char s[16];
    assert_int_equal(wisp_node_cidr_parse("100.64.0.0/16", &f), 0);
    assert_int_equal(wisp_node_cidr_parse("198.19.3.0/24", &p), 0);
    wisp_node_ip_str(wisp_node_default_ip(&f, &p), s);
    assert_string_equal(s, "100.64.2.3"); /* index 259 */
    assert_int_equal(wisp_node_cidr_parse("198.18.0.1/24", &p), -1); /* host bits */
    assert_int_equal(wisp_node_cidr_parse("198.18.0.0/33", &p), -1);
    assert_int_equal(wisp_node_cidr_parse("198.18.0.0", &p), -1);
    assert_int_equal(wisp_node_cidr_parse("198.18.0.0/24x", &p), -1);
}

static void test_network(void **state)
{
    (void)state;
    char peer[16];
    if (geteuid() != 0)
        skip();
    node = up("gke-c-pool-1", "198.18.7.0/24", NULL);
    assert_string_equal(wisp_node_ip(node), "100.64.1.7");
    struct wisp_node_pod *a = start_pod(node, "pod-a", sleeper_argv, WISP_NODE_RESTART_ALWAYS);
    struct wisp_node_pod *b = start_pod(node, "pod-b", sleeper_argv, WISP_NODE_RESTART_ALWAYS);
    assert_string_equal(wisp_node_pod_ip(a), "198.18.7.2");
    assert_string_equal(wisp_node_pod_ip(b), "198.18.7.3");
    assert_int_equal(wisp_node_ips_in_use(node), 2);

    /* the node's metadata address sees pod A's own address */
    int ls = listen_in(wisp_node_netns_path(node), "169.254.169.254", 80);
    int c = connect_from(wisp_node_pod_netns_path(a), "169.254.169.254", 80);
    assert_true(c >= 0);
    accept_peer(ls, peer);
    assert_string_equal(peer, wisp_node_pod_ip(a));
    close(c);
    close(ls);

    /* pods of one node reach each other, as on GKE (no NetworkPolicy) */
    ls = listen_in(wisp_node_pod_netns_path(b), wisp_node_pod_ip(b), 8080);
    c = connect_from(wisp_node_pod_netns_path(a), wisp_node_pod_ip(b), 8080);
    assert_true(c >= 0);
    accept_peer(ls, peer);
    assert_string_equal(peer, wisp_node_pod_ip(a));
    close(c);
    close(ls);

    /* the fabric gateway (where wispd listens) sees the pod's address too */
    char fabric_path[160];
    snprintf(fabric_path, sizeof(fabric_path), "/run/netns/%s", fabric);
    ls = listen_in(fabric_path, "100.64.0.1", 443);
    c = connect_from(wisp_node_pod_netns_path(a), "100.64.0.1", 443);
    assert_true(c >= 0);
    accept_peer(ls, peer);
    assert_string_equal(peer, wisp_node_pod_ip(a));
    close(c);
    close(ls);

    assert_true(marked_processes() >= 2);
    wisp_node_pod_stop(a, 2000);
    wisp_node_pod_destroy(a);
    wisp_node_pod_destroy(b);
    assert_int_equal(wisp_node_ips_in_use(node), 0);
    assert_int_equal(marked_processes(), 0);
}

static void test_sandbox_view(void **state)
{
    (void)state;
    struct wisp_node_event ev;
    char *argv[] = {"sh", "-c",
                    "echo HOST=$(hostname); cat /etc/hosts; cat /etc/resolv.conf; echo PID=$$; "
                    "echo NS=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); "
                    "echo CA=$(grep -c WISPTESTCA /etc/ssl/certs/ca-certificates.crt); "
                    "echo HOME=$HOME; echo PROCS=$(ls /proc | grep -c '^[0-9]'); "
                    "echo IP=$(cat /proc/net/fib_trie | grep -c 198.18.7.); exit 3",
                    NULL};
    if (geteuid() != 0)
        skip();
    if (!node)
        node = up("gke-c-pool-1", "198.18.7.0/24", NULL);
    struct wisp_node_pod *p = start_pod(node, "viewer", argv, WISP_NODE_RESTART_NEVER);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_STARTED);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    assert_int_equal(ev.status, 3);
    assert_int_equal(ev.will_restart, 0);
    int status = -1;
    assert_int_equal(wisp_node_pod_reap(p, 1, &status), 1);
    assert_int_equal(status, 3);
    char *log = slurp(wisp_node_pod_log(p, 0));
    char line[128];
    assert_non_null(strstr(log, "HOST=viewer\n"));
    assert_non_null(strstr(log, "169.254.169.254\tmetadata.google.internal"));
    assert_non_null(strstr(log, "100.64.0.1\tstorage.googleapis.com"));
    assert_non_null(strstr(log, "100.64.0.1\tsts.googleapis.com"));
    snprintf(line, sizeof(line), "%s\tviewer\n", wisp_node_pod_ip(p));
    assert_non_null(strstr(log, line));
    assert_non_null(strstr(log, "search team-a.svc.cluster.local"));
    assert_non_null(strstr(log, "PID=2\n")); /* the init is 1 */
    assert_non_null(strstr(log, "NS=team-a\n"));
    assert_non_null(strstr(log, "CA=1\n"));
    assert_non_null(strstr(log, "HOME=/root\n"));
    /* its own /proc: the init, the shell and the pipeline's few processes,
     * not the host's */
    const char *procs = strstr(log, "PROCS=");
    assert_non_null(procs);
    assert_true(atoi(procs + 6) >= 2 && atoi(procs + 6) <= 6);
    assert_null(strstr(log, "IP=0\n"));
    free(log);
    /* the host's files are untouched */
    log = slurp("/etc/hosts");
    assert_null(strstr(log, "metadata.google.internal"));
    free(log);
    wisp_node_pod_release_net(p);
    wisp_node_pod_destroy(p);
}

static void test_token_refresh_visible(void **state)
{
    (void)state;
    struct wisp_node_event ev;
    char *argv[] = {"sh", "-c",
                    "f=/var/run/secrets/kubernetes.io/serviceaccount/token; "
                    "while [ \"$(cat $f 2>/dev/null)\" != second ]; do sleep 0.05; done; "
                    "echo saw-second; touch $f 2>/dev/null || echo read-only",
                    NULL};
    if (geteuid() != 0)
        skip();
    if (!node)
        node = up("gke-c-pool-1", "198.18.7.0/24", NULL);
    struct wisp_node_pod *p = start_pod(node, "tok", argv, WISP_NODE_RESTART_NEVER);
    assert_int_equal(wisp_node_pod_write_sa(p, "token", "first", 5), WISP_OK);
    usleep(100000);
    assert_int_equal(wisp_node_pod_write_sa(p, "token", "second", 6), WISP_OK);
    next_event(p, &ev);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    assert_int_equal(ev.status, 0);
    char *log = slurp(wisp_node_pod_log(p, 0));
    assert_non_null(strstr(log, "saw-second\nread-only\n"));
    free(log);
    wisp_node_pod_destroy(p);
}

/* A held pod runs nothing until released, and then sees the token written
 * meanwhile; a held pod stopped instead runs nothing at all. A command that
 * cannot be run exits 127 with the reason in its log. */
static void test_hold_and_spawn_failure(void **state)
{
    (void)state;
    struct wisp_node_event ev;
    char *argv[] = {"cat", "/var/run/secrets/kubernetes.io/serviceaccount/token", NULL};
    char *missing[] = {"wisp-no-such-command", NULL};
    if (geteuid() != 0)
        skip();
    if (!node)
        node = up("gke-c-pool-1", "198.18.7.0/24", NULL);
    struct wisp_node_pod *p = start_held(node, "held", argv, WISP_NODE_RESTART_NEVER, 1);
    assert_int_equal(wisp_node_pod_held(p), 1);
    usleep(100000);
    assert_int_equal(wisp_node_pod_next_event(p, &ev), 0); /* nothing started */
    assert_int_equal(wisp_node_pod_write_sa(p, "token", "late-token", 10), WISP_OK);
    assert_int_equal(wisp_node_pod_release(p), WISP_OK);
    assert_int_equal(wisp_node_pod_held(p), 0);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_STARTED);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    assert_int_equal(ev.status, 0);
    char *log = slurp(wisp_node_pod_log(p, 0));
    assert_string_equal(log, "late-token");
    free(log);
    wisp_node_pod_destroy(p);

    p = start_held(node, "held-stop", argv, WISP_NODE_RESTART_NEVER, 1);
    wisp_node_pod_stop(p, 2000);
    assert_int_equal(wisp_node_pod_pid(p), 0);
    while (wisp_node_pod_next_event(p, &ev) == 1)
        assert_int_not_equal(ev.kind, WISP_NODE_EV_STARTED);
    wisp_node_pod_destroy(p);

    p = start_pod(node, "missing", missing, WISP_NODE_RESTART_NEVER);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_STARTED);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    assert_int_equal(ev.status, 127);
    log = slurp(wisp_node_pod_log(p, 0));
    assert_non_null(strstr(log, "wisp: exec wisp-no-such-command"));
    free(log);
    wisp_node_pod_destroy(p);
}

static void test_restart_and_term(void **state)
{
    (void)state;
    struct wisp_node_event ev;
    char *argv[] = {"false", NULL};
    if (geteuid() != 0)
        skip();
    if (!node)
        node = up("gke-c-pool-1", "198.18.7.0/24", NULL);
    struct wisp_node_pod *p = start_pod(node, "crash", argv, WISP_NODE_RESTART_ON_FAILURE);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_STARTED);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    assert_int_equal(ev.status, 1);
    assert_int_equal(ev.will_restart, 1);
    next_event(p, &ev); /* after the 100 ms backoff */
    assert_int_equal(ev.kind, WISP_NODE_EV_STARTED);
    next_event(p, &ev);
    assert_int_equal(ev.kind, WISP_NODE_EV_EXITED);
    wisp_node_pod_stop(p, 2000); /* SIGTERM ends the backoff wait */
    assert_int_equal(wisp_node_pod_pid(p), 0);
    wisp_node_pod_destroy(p);

    /* a command that traps SIGTERM gets its grace period, then SIGKILL */
    char *stubborn[] = {"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL};
    p = start_pod(node, "stubborn", stubborn, WISP_NODE_RESTART_NEVER);
    next_event(p, &ev);
    usleep(100000);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    wisp_node_pod_stop(p, 300);
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    assert_true(ms >= 290);
    assert_int_equal(wisp_node_pod_pid(p), 0);
    wisp_node_pod_destroy(p);
}

/* A /28 node: 13 addresses for pods; the 14th pod is refused, and churn
 * never hands out an address a live pod holds. */
static void test_small_range_churn(void **state)
{
    (void)state;
    struct wisp_node_pod *live[13] = {0};
    char why[128];
    if (geteuid() != 0)
        skip();
    small = up("gke-c-pool-2", "198.18.9.0/28", "100.64.9.1");
    for (int i = 0; i < 13; i++)
        live[i] = start_pod(small, "fill", sleeper_argv, WISP_NODE_RESTART_NEVER);
    assert_int_equal(wisp_node_ips_in_use(small), 13);
    struct wisp_node_container c = {.name = "main", .argv = sleeper_argv};
    struct wisp_node_pod_spec s = {.uid = "over-full", .ns = "d", .name = "x", .containers = &c,
                                   .n_containers = 1};
    struct wisp_node_pod *extra = NULL;
    assert_int_equal(wisp_node_pod_start(small, &s, &extra, why, sizeof(why)), WISP_EBUSY);
    assert_null(extra);
    srand(7);
    for (int round = 0; round < 50; round++) {
        int k = rand() % 13;
        wisp_node_pod_destroy(live[k]);
        live[k] = start_pod(small, "churn", sleeper_argv, WISP_NODE_RESTART_NEVER);
        for (int i = 0; i < 13; i++)
            for (int j = i + 1; j < 13; j++)
                assert_string_not_equal(wisp_node_pod_ip(live[i]), wisp_node_pod_ip(live[j]));
    }
    wisp_node_down(small); /* kills and removes the 13 pods too */
    small = NULL;
}

static void test_teardown_leaves_nothing(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    wisp_node_down(node);
    node = NULL;
    wisp_node_fabric_down(fabric);
    char *links = root_links(), *ns = wisp_netns();
    assert_string_equal(links, links_before);
    assert_string_equal(ns, netns_before);
    assert_int_equal(marked_processes(), 0);
    free(links);
    free(ns);
    /* the state directory holds no pod any more */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "find '%s' -path '*/pods/*' | wc -l", state_dir);
    char *count = run(cmd);
    assert_string_equal(count, "0\n");
    free(count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure),
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_sandbox_view),
        cmocka_unit_test(test_token_refresh_visible),
        cmocka_unit_test(test_hold_and_spawn_failure),
        cmocka_unit_test(test_restart_and_term),
        cmocka_unit_test(test_small_range_churn),
        cmocka_unit_test(test_teardown_leaves_nothing),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
