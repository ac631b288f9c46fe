/* SPDX-License-Identifier: Apache-2.0 */
/* Pod sandboxes: the pod's files, its network namespace behind the node, and
 * its init — PID 1 of fresh PID, mount and UTS namespaces — which mounts the
 * pod-private files over the host's, runs the containers from the host
 * filesystem, restarts them as restartPolicy says, and reports each start and
 * exit on a pipe. The init is a clone of the caller and never execs, so all it
 * needs is prepared before the clone; between clone and exec only system
 * calls run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "node/node_int.h"
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/log.h"
#include "wisp/node.h"

#define MAX_CONTAINERS 16
#define BACKOFF_MAX_MS 300000
#define BACKOFF_RESET_MS 600000
#define SA_DIR "/run/secrets/kubernetes.io/serviceaccount"

struct wisp_node_pod {
    struct wisp_node *node;
    struct wisp_node_pod *next, *prev;   /* the node's list */
    char *dir, *netns, *netns_path;      /* from malloc() */
    char **logs;                         /* n_logs paths, from malloc() */
    size_t n_logs;
    uint32_t off;                        /* host offset in the pod range; 0 once released */
    char ip_s[16];
    char vif[16];                        /* the veth end in the node namespace */
    pid_t pid;                           /* the init; 0 once reaped */
    int ev_fd;                           /* read end of the init's event pipe */
    int go_fd;                           /* held: write end of the init's go pipe; else -1 */
    int status;
};

/* The files bind-mounted over the host's inside the pod. */
#define POD_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
static const char *const overlay_targets[] = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                                              POD_CA_BUNDLE, "/root"};
/* In the pod's directory, except the CA bundle: the same for every pod of
 * a node, it is written once per node (STATE/ca-certificates.crt, a few
 * hundred KB a pod would otherwise read and write as it starts) and bound
 * read-only. */
#define BUNDLE_INDEX 3
static const char *const overlay_sources[] = {"hosts", "hostname", "resolv.conf",
                                              "ca-certificates.crt", "home"};
#define N_OVERLAY (sizeof(overlay_targets) / sizeof(overlay_targets[0]))

/* What the init needs, prepared by the parent before the clone. */
struct init_args {
    int netns_fd, ev_wfd, devnull;
    int go_rfd; /* held: one byte here starts the containers; EOF ends the init */
    int log_fds[MAX_CONTAINERS];
    int cover[N_OVERLAY];                /* 1: the host has the target */
    char sources[N_OVERLAY][PATH_MAX];   /* the pod's files */
    char targets[N_OVERLAY][PATH_MAX];   /* resolved host paths they cover */
    char sa_dir[PATH_MAX];
    char hostname[64];
    const struct wisp_node_container *containers;
    size_t n;
    char **envs[MAX_CONTAINERS];
    enum wisp_node_restart restart;
    unsigned backoff_ms;
};

/* ---- the node's pod list ------------------------------------------------------- */

void node_pod_link(struct wisp_node *n, struct wisp_node_pod *p)
{
    p->next = n->pods;
    if (n->pods)
        n->pods->prev = p;
    n->pods = p;
}

void node_pod_unlink(struct wisp_node *n, struct wisp_node_pod *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (n->pods == p)
        n->pods = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

struct wisp_node_pod *node_pod_next(struct wisp_node_pod *p)
{
    return p->next;
}

/* ---- the init (runs in the clone; system calls only) ------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void init_emit(int fd, int kind, size_t i, int status, int restart)
{
    struct wisp_node_event ev = {.kind = kind, .container = (int32_t)i, .status = status,
                                 .will_restart = restart, .at_ms = wall_ms()};
    ssize_t r = write(fd, &ev, sizeof(ev)); /* atomic: below PIPE_BUF */
    (void)r;
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

static int bind_fd(int src, const char *target, int readonly)
{
    char from[64];
    snprintf(from, sizeof(from), "/proc/self/fd/%d", src);
    if (mount(from, target, NULL, MS_BIND, NULL) != 0)
        return -1;
    if (readonly &&
        mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              NULL) != 0)
        return -1;
    return 0;
}

static void init_die(const char *what)
{
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "wisp pod init: %s: %s\n", what, strerror(errno));
    ssize_t r = write(2, msg, (size_t)n);
    (void)r;
    _exit(125);
}

/* The pod's view of the filesystem: its own files over the host's, a
 * private /run holding the projected token, and a /proc of its PID
 * namespace. Mounts are slaves of the host's, so the host's later removal of
 * /run/netns pins reaches this namespace and no pod keeps another alive. */
static void init_mounts(struct init_args *a)
{
    int src[N_OVERLAY], sa;
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
        init_die("making / a slave mount");
    umount2(NODE_NETNS_DIR, MNT_DETACH);
    /* Opened here, in this mount namespace (a bind source must belong to
     * it), and before /run is covered, in case the state lives there. */
    for (size_t i = 0; i < N_OVERLAY; i++) {
        src[i] = a->cover[i] ? open(a->sources[i], O_PATH | O_CLOEXEC) : -1;
        if (a->cover[i] && src[i] < 0)
            init_die(a->sources[i]);
    }
    sa = open(a->sa_dir, O_PATH | O_CLOEXEC);
    if (sa < 0)
        init_die(a->sa_dir);
    if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m") != 0)
        init_die("mounting /run");
    for (size_t i = 0; i < N_OVERLAY; i++) {
        struct stat st;
        if (src[i] < 0)
            continue;
        if (strncmp(a->targets[i], "/run/", 5) == 0 && stat(a->targets[i], &st) != 0) {
            /* a host file that lived under /run (a resolver's symlink target) */
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%s", a->targets[i]);
            char *slash = strrchr(dir, '/');
            if (slash) {
                *slash = '\0';
                mkdirs(dir);
            }
            int fd = open(a->targets[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0)
                close(fd);
        }
        if (bind_fd(src[i], a->targets[i], i == BUNDLE_INDEX) != 0)
            init_die(a->targets[i]);
        close(src[i]);
    }
    mkdirs(SA_DIR);
    if (bind_fd(sa, SA_DIR, 1) != 0)
        init_die(SA_DIR);
    close(sa);
    mkdir("/run/lock", 01777);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        init_die("mounting /proc");
}

/* The slow path, which also explains a failure in the container's log:
 * chdir or exec failing exits 128 or 127 as a runtime does. */
static pid_t init_fork(struct init_args *a, size_t i)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t all;
    sigemptyset(&all);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &all, NULL);
    setsid();
    int log = a->log_fds[i];
    if (dup2(a->devnull, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
        _exit(126);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    const struct wisp_node_container *c = &a->containers[i];
    if (chdir(c->workdir ? c->workdir : "/") != 0) {
        dprintf(2, "wisp: workingDir %s: %s\n", c->workdir, strerror(errno));
        _exit(128);
    }
    execvpe(c->argv[0], c->argv, a->envs[i]);
    dprintf(2, "wisp: exec %s: %s\n", c->argv[0], strerror(errno));
    _exit(127);
}

/* A container's process: stdin /dev/null, stdout and stderr its log, its
 * own session, default signals, nothing else inherited. posix_spawn (a
 * vfork: no copy of the init's page tables) is the fast path, a few ms of
 * a pod's start on a loaded machine; when it fails the fork path runs
 * again to report why in the log. */
static pid_t init_spawn(struct init_args *a, size_t i)
{
    const struct wisp_node_container *c = &a->containers[i];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    pid_t pid = -1;
    int rc;

    sigemptyset(&none);
    sigfillset(&all);
    if (posix_spawn_file_actions_init(&fa) != 0)
        return init_fork(a, i);
    if (posix_spawnattr_init(&at) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return init_fork(a, i);
    }
    rc = posix_spawn_file_actions_adddup2(&fa, a->devnull, 0);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, a->log_fds[i], 1);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, a->log_fds[i], 2);
    rc = rc ? rc : posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    rc = rc ? rc : posix_spawn_file_actions_addchdir_np(&fa, c->workdir ? c->workdir : "/");
    rc = rc ? rc : posix_spawnattr_setsigdefault(&at, &all);
    rc = rc ? rc : posix_spawnattr_setsigmask(&at, &none);
    rc = rc ? rc
            : posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETSIGMASK);
    rc = rc ? rc : posix_spawnp(&pid, c->argv[0], &fa, &at, c->argv, a->envs[i]);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : init_fork(a, i);
}

int node_exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

static void init_on_term(int sig)
{
    (void)sig; /* PID 1 gets only signals it handles; sigtimedwait takes them */
}

static void init_main(struct init_args *a)
{
    pid_t pids[MAX_CONTAINERS] = {0};
    int done[MAX_CONTAINERS] = {0}, last[MAX_CONTAINERS] = {0};
    int64_t due[MAX_CONTAINERS] = {0}, started[MAX_CONTAINERS] = {0};
    unsigned backoff[MAX_CONTAINERS];
    int terminating = 0, fd_top;
    sigset_t set;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (setns(a->netns_fd, CLONE_NEWNET) != 0)
        init_die("entering the pod network");
    if (sethostname(a->hostname, strlen(a->hostname)) != 0)
        init_die("sethostname");
    init_mounts(a);

    /* Descriptors: 0-2 as given, 3 the event pipe, 4.. the logs, /dev/null
     * after them; everything else inherited from the node is closed. They
     * are first moved above 64 so that no placement overwrites another. */
    a->ev_wfd = fcntl(a->ev_wfd, F_DUPFD_CLOEXEC, 64);
    a->devnull = fcntl(a->devnull, F_DUPFD_CLOEXEC, 64);
    if (a->go_rfd >= 0)
        a->go_rfd = fcntl(a->go_rfd, F_DUPFD_CLOEXEC, 64);
    for (size_t i = 0; i < a->n; i++)
        a->log_fds[i] = fcntl(a->log_fds[i], F_DUPFD_CLOEXEC, 64);
    if (dup2(a->ev_wfd, 3) < 0)
        init_die("dup2");
    a->ev_wfd = 3;
    for (size_t i = 0; i < a->n; i++) {
        if (dup2(a->log_fds[i], 4 + (int)i) < 0)
            init_die("dup2");
        a->log_fds[i] = 4 + (int)i;
    }
    fd_top = 4 + (int)a->n;
    if (dup2(a->devnull, fd_top) < 0)
        init_die("dup2");
    a->devnull = fd_top;
    if (a->go_rfd >= 0) {
        if (dup2(a->go_rfd, fd_top + 1) < 0)
            init_die("dup2");
        a->go_rfd = fd_top + 1;
    }
    /* Also closes the node's end of the go pipe, which this process
     * inherited: only the node holds it now. */
    syscall(SYS_close_range, (unsigned)(a->go_rfd >= 0 ? fd_top + 2 : fd_top + 1), ~0u, 0u);
    if (a->go_rfd >= 0) {
        /* Held: the node finishes what the containers need (their token)
         * while this namespace was being built. No go byte (EOF): the
         * sandbox is being destroyed and nothing runs. */
        char go = 0;
        ssize_t r;
        do
            r = read(a->go_rfd, &go, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
            _exit(0);
        close(a->go_rfd);
    }

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGTERM, init_on_term);
    signal(SIGINT, init_on_term);
    signal(SIGHUP, init_on_term);
    signal(SIGCHLD, init_on_term);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (size_t i = 0; i < a->n; i++) {
        backoff[i] = a->backoff_ms ? a->backoff_ms : 10000;
        pids[i] = init_spawn(a, i);
        started[i] = mono_ms();
        init_emit(a->ev_wfd, WISP_NODE_EV_STARTED, i, 0, 0);
    }
    for (;;) {
        int64_t now = mono_ms(), next = -1;
        size_t remaining = 0;
        for (size_t i = 0; i < a->n; i++) {
            if (done[i])
                continue;
            remaining++;
            if (!pids[i] && due[i] <= now) {
                pids[i] = init_spawn(a, i);
                started[i] = now;
                init_emit(a->ev_wfd, WISP_NODE_EV_STARTED, i, 0, 0);
            }
            if (!pids[i] && (next < 0 || due[i] < next))
                next = due[i];
        }
        if (remaining == 0)
            break;
        struct timespec ts, *tp = NULL;
        if (next >= 0) {
            int64_t wait = next - now;
            ts.tv_sec = wait / 1000;
            ts.tv_nsec = (long)(wait % 1000) * 1000000;
            tp = &ts;
        }
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, tp);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            terminating = 1;
            for (size_t i = 0; i < a->n; i++) {
                if (pids[i]) {
                    kill(-pids[i], SIGTERM);
                    kill(pids[i], SIGTERM);
                } else {
                    done[i] = 1; /* waiting for a restart: not any more */
                }
            }
        }
        if (sig != SIGCHLD && !terminating)
            continue;
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (size_t i = 0; i < a->n; i++) {
                if (pids[i] != pid)
                    continue;
                int code = node_exit_code(st);
                int again = !terminating && (a->restart == WISP_NODE_RESTART_ALWAYS ||
                                             (a->restart == WISP_NODE_RESTART_ON_FAILURE &&
                                              code != 0));
                pids[i] = 0;
                last[i] = code;
                init_emit(a->ev_wfd, WISP_NODE_EV_EXITED, i, code, again);
                if (!again) {
                    done[i] = 1;
                    continue;
                }
                int64_t t = mono_ms();
                if (t - started[i] >= BACKOFF_RESET_MS)
                    backoff[i] = a->backoff_ms ? a->backoff_ms : 10000;
                due[i] = t + backoff[i];
                backoff[i] = backoff[i] * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff[i] * 2;
            }
        }
    }
    for (size_t i = 0; i < a->n; i++)
        if (last[i] != 0)
            _exit(last[i] & 255);
    _exit(0);
}

/* ---- the pod's files -------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const char *data, size_t len,
                      mode_t mode)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int fd, rc = 0;
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int append_file(struct wisp_buf *b, const char *path)
{
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r <= 0)
            break;
        if (wisp_buf_append(b, chunk, (size_t)r) != WISP_OK) {
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    if (b->len && b->data[b->len - 1] != '\n')
        wisp_buf_appends(b, "\n");
    return 0;
}

/* The Google API names the seed's commands reach, all served by wisp on the
 * fabric gateway. */
static const char *const api_hosts[] = {
    "storage.googleapis.com", "oauth2.googleapis.com", "sts.googleapis.com",
    "iamcredentials.googleapis.com", "container.googleapis.com", "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com", "www.googleapis.com", "serviceusage.googleapis.com",
    "artifactregistry.googleapis.com", "policytroubleshooter.googleapis.com"};

static int pod_files(struct wisp_node_pod *p, const struct wisp_node_pod_spec *s,
                     const char *hostname)
{
    struct wisp_node *n = p->node;
    struct wisp_buf b;
    char path[PATH_MAX];
    int rc;

    wisp_buf_init(&b, 16u << 20);
    wisp_buf_printf(&b,
                    "# Kubernetes-managed hosts file (wisp).\n"
                    "127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
                    "fe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                    "%s\t%s\n"
                    "169.254.169.254\tmetadata.google.internal metadata.google.internal. metadata\n",
                    p->ip_s, hostname);
    for (size_t i = 0; i < sizeof(api_hosts) / sizeof(api_hosts[0]); i++)
        wisp_buf_printf(&b, "%s\t%s\n", n->gw_s, api_hosts[i]);
    rc = write_file(p->dir, "hosts", b.data, b.len, 0644);
    wisp_buf_reset(&b);
    /* No cluster DNS: 127.0.0.1 answers "refused" at once, so names outside
     * /etc/hosts fail fast instead of timing out. */
    wisp_buf_printf(&b,
                    "search %s.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 127.0.0.1\noptions ndots:5\n",
                    s->ns);
    if (rc == 0)
        rc = write_file(p->dir, "resolv.conf", b.data, b.len, 0644);
    wisp_buf_reset(&b);
    wisp_buf_printf(&b, "%s\n", hostname);
    if (rc == 0)
        rc = write_file(p->dir, "hostname", b.data, b.len, 0644);
    wisp_buf_reset(&b);
    if (rc == 0 && !n->bundle_written) {
        rc = append_file(&b, n->host_bundle);
        if (rc == 0 && n->ca_file)
            rc = append_file(&b, n->ca_file);
        if (rc == 0)
            rc = write_file(n->state_dir, overlay_sources[BUNDLE_INDEX], b.data, b.len, 0644);
        n->bundle_written = rc == 0;
    }
    wisp_buf_free(&b);
    snprintf(path, sizeof(path), "%s/home", p->dir);
    if (rc == 0 && mkdir(path, 0700) != 0)
        rc = -errno;
    snprintf(path, sizeof(path), "%s/sa", p->dir);
    if (rc == 0 && mkdir(path, 0755) != 0)
        rc = -errno;
    if (rc == 0)
        rc = write_file(path, "namespace", s->ns, strlen(s->ns), 0644);
    if (rc == 0 && s->token)
        rc = write_file(path, "token", s->token, strlen(s->token), 0644);
    if (rc == 0 && s->ca_crt)
        rc = write_file(path, "ca.crt", s->ca_crt, strlen(s->ca_crt), 0644);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* ---- the pod's network ------------------------------------------------------------ */

static int pod_net_up(struct wisp_node_pod *p, int pod_fd)
{
    struct wisp_node *n = p->node;
    uint32_t ip = n->pod_net + p->off;
    char sysctl[128];
    int saved, nl, rc;

    saved = node_ns_enter(n->netns_path);
    if (saved < 0)
        return -errno;
    nl = nl_open();
    rc = nl < 0 ? nl : nl_veth_create(nl, p->vif, "eth0", pod_fd);
    if (rc == 0)
        rc = nl_link_up(nl, p->vif);
    if (rc == 0)
        rc = nl_route_add(nl, ip, 32, 0, p->vif, 0);
    /* Pods share the node's /24 as on GKE: the node answers ARP for its
     * neighbours, so pods of one node reach each other through it. */
    snprintf(sysctl, sizeof(sysctl), "/proc/sys/net/ipv4/conf/%s/proxy_arp", p->vif);
    if (rc == 0)
        rc = node_sysctl(sysctl, "1");
    if (nl >= 0)
        close(nl);
    node_ns_leave(saved);
    if (rc != 0)
        return rc;

    saved = node_ns_enter(p->netns_path);
    if (saved < 0)
        return -errno;
    nl = nl_open();
    rc = nl < 0 ? nl : nl_link_up(nl, "eth0");
    if (rc == 0)
        rc = nl_addr_add(nl, "eth0", ip, n->pod_prefix);
    if (rc == 0)
        rc = nl_route_add(nl, 0, 0, n->pod_gw, "eth0", 0);
    if (nl >= 0)
        close(nl);
    node_ns_leave(saved);
    return rc;
}

/* Deleting the node's end deletes the pair and the route to the pod. */
static void pod_net_down(struct wisp_node_pod *p)
{
    if (p->vif[0]) {
        int saved = node_ns_enter(p->node->netns_path);
        if (saved >= 0) {
            int nl = nl_open();
            if (nl >= 0) {
                int rc = nl_link_delete(nl, p->vif);
                if (rc != 0 && rc != -ENODEV)
                    wisp_log_warn("node", "deleting %s: %s", p->vif, strerror(-rc));
                close(nl);
            }
            node_ns_leave(saved);
        }
        p->vif[0] = '\0';
    }
    if (p->netns) {
        node_netns_delete(p->netns);
        WISP_FREE(p->netns);
    }
    if (p->off) {
        node_ip_release(p->node, p->off);
        p->off = 0;
    }
}

/* ---- lifecycle -------------------------------------------------------------------- */

static int valid_token(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.'))
            return 0;
    return s[0] != '.';
}

static int env_has(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
            return 1;
    return 0;
}

char **wisp_node_container_env(const struct wisp_node_container *c, const char *hostname)
{
    size_t n = 0, k = 0;
    while (c->env && c->env[n])
        n++;
    char **env = wisp_xcalloc(n + 6, sizeof(char *));
    env[k++] = wisp_xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    env[k++] = wisp_xstrdup("HOME=/root");
    env[k++] = wisp_xasprintf("HOSTNAME=%s", hostname);
    /* Python's requests (certifi) and Node carry their own roots and never
     * read the system bundle; on GKE those roots hold Google's CAs, here the
     * pod's bundle (host roots + wisp's CA) must be named to them. A
     * container that sets either keeps its own value. */
    if (!env_has(c->env, "REQUESTS_CA_BUNDLE"))
        env[k++] = wisp_xstrdup("REQUESTS_CA_BUNDLE=" POD_CA_BUNDLE);
    if (!env_has(c->env, "NODE_EXTRA_CA_CERTS"))
        env[k++] = wisp_xstrdup("NODE_EXTRA_CA_CERTS=" POD_CA_BUNDLE);
    for (size_t i = 0; i < n; i++)
        env[k++] = wisp_xstrdup(c->env[i]);
    return env;
}

void wisp_node_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static void pod_free(struct wisp_node_pod *p)
{
    if (p->ev_fd >= 0)
        close(p->ev_fd);
    if (p->go_fd >= 0)
        close(p->go_fd);
    for (size_t i = 0; i < p->n_logs; i++)
        free(p->logs[i]);
    free(p->logs);
    free(p->dir);
    free(p->netns);
    free(p->netns_path);
    free(p);
}

enum wisp_err wisp_node_pod_start(struct wisp_node *n, const struct wisp_node_pod_spec *s,
                                  struct wisp_node_pod **out, char *why, size_t whylen)
{
    struct wisp_node_pod *p = wisp_xcalloc(1, sizeof(*p));
    struct init_args *a = wisp_xcalloc(1, sizeof(*a));
    enum wisp_err err = WISP_EIO;
    int pipefd[2] = {-1, -1}, rc, dir_made = 0;
    char hostname[64], path[PATH_MAX];

    p->node = n;
    p->ev_fd = p->go_fd = -1;
    a->netns_fd = a->devnull = a->go_rfd = -1;
    for (size_t i = 0; i < MAX_CONTAINERS; i++)
        a->log_fds[i] = -1;
    *out = NULL;

    if (!valid_token(s->uid, 64) || !s->ns || !s->name || s->n_containers == 0 ||
        s->n_containers > MAX_CONTAINERS) {
        snprintf(why, whylen, "a pod needs a uid ([a-z0-9.-], up to 64), a namespace, a name "
                              "and 1 to 16 containers");
        err = WISP_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < s->n_containers; i++) {
        if (!s->containers[i].argv || !s->containers[i].argv[0] ||
            !s->containers[i].argv[0][0]) {
            snprintf(why, whylen, "container %zu has no command", i);
            err = WISP_EINVAL;
            goto out;
        }
    }
    snprintf(hostname, sizeof(hostname), "%s", s->hostname ? s->hostname : s->name);

    int64_t t0 = mono_us();
    p->off = node_ip_alloc(n, s->uid);
    if (!p->off) {
        snprintf(why, whylen, "no free address in the pod range of node %s", n->name);
        err = WISP_EBUSY;
        goto out;
    }
    wisp_node_ip_str(n->pod_net + p->off, p->ip_s);
    p->dir = wisp_xasprintf("%s/pods/%s", n->state_dir, s->uid);
    snprintf(path, sizeof(path), "%s/pods", n->state_dir);
    mkdir(path, 0755);
    if (mkdir(p->dir, 0755) != 0) {
        snprintf(why, whylen, "creating %s: %s", p->dir, strerror(errno));
        err = errno == EEXIST ? WISP_EEXIST : WISP_EIO;
        goto out;
    }
    dir_made = 1;
    rc = pod_files(p, s, hostname);
    if (rc != 0) {
        snprintf(why, whylen, "writing the pod's files: %s", strerror(-rc));
        goto out;
    }
    p->logs = wisp_xcalloc(s->n_containers, sizeof(char *));
    p->n_logs = s->n_containers;
    for (size_t i = 0; i < s->n_containers; i++) {
        const char *cn = s->containers[i].name;
        p->logs[i] = valid_token(cn, 63) ? wisp_xasprintf("%s/%s.log", p->dir, cn)
                                         : wisp_xasprintf("%s/container-%zu.log", p->dir, i);
        a->log_fds[i] = open(p->logs[i], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (a->log_fds[i] < 0) {
            snprintf(why, whylen, "opening %s: %s", p->logs[i], strerror(errno));
            goto out;
        }
    }

    int64_t t_files = mono_us();
    /* the network */
    p->netns = wisp_xasprintf("%s-%s", n->netns, s->uid);
    p->netns_path = wisp_xasprintf(NODE_NETNS_DIR "/%s", p->netns);
    rc = node_netns_create(p->netns);
    if (rc != 0) {
        snprintf(why, whylen, "creating network namespace %s: %s", p->netns, strerror(-rc));
        WISP_FREE(p->netns);
        goto out;
    }
    a->netns_fd = open(p->netns_path, O_RDONLY | O_CLOEXEC);
    if (a->netns_fd < 0) {
        snprintf(why, whylen, "opening %s: %s", p->netns_path, strerror(errno));
        goto out;
    }
    snprintf(p->vif, sizeof(p->vif), "p%x", p->off);
    int64_t t_netns = mono_us();
    rc = pod_net_up(p, a->netns_fd);
    if (rc != 0) {
        snprintf(why, whylen, "setting up the pod network: %s", strerror(-rc));
        goto out;
    }

    int64_t t_net = mono_us();
    /* what the init needs */
    for (size_t i = 0; i < N_OVERLAY; i++) {
        struct stat st;
        /* no such file on the host: nothing to cover */
        a->cover[i] = realpath(overlay_targets[i], a->targets[i]) != NULL &&
                      stat(a->targets[i], &st) == 0;
        snprintf(a->sources[i], sizeof(a->sources[i]), "%s/%s",
                 i == BUNDLE_INDEX ? n->state_dir : p->dir, overlay_sources[i]);
    }
    snprintf(a->sa_dir, sizeof(a->sa_dir), "%s/sa", p->dir);
    a->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (a->devnull < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "preparing the pod's init: %s", strerror(errno));
        goto out;
    }
    a->ev_wfd = pipefd[1];
    if (s->hold) {
        int go[2];
        if (pipe2(go, O_CLOEXEC) != 0) {
            snprintf(why, whylen, "preparing the pod's init: %s", strerror(errno));
            goto out;
        }
        a->go_rfd = go[0];
        p->go_fd = go[1];
    }
    snprintf(a->hostname, sizeof(a->hostname), "%s", hostname);
    a->containers = s->containers;
    a->n = s->n_containers;
    a->restart = s->restart;
    a->backoff_ms = s->backoff_ms;
    for (size_t i = 0; i < s->n_containers; i++)
        a->envs[i] = wisp_node_container_env(&s->containers[i], hostname);

    /* A raw clone, so that the child is PID 1 of its own PID namespace and
     * still the caller's child (waitpid works, PDEATHSIG ties it to us). */
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | SIGCHLD,
                               NULL, NULL, NULL, NULL);
    if (pid == 0)
        init_main(a); /* never returns */
    if (pid < 0) {
        snprintf(why, whylen, "clone: %s", strerror(errno));
        goto out;
    }
    wisp_log_info("node", "pod %s/%s sandbox: files %lld us, netns %lld us, veth %lld us, "
                  "clone %lld us", s->ns, s->name, (long long)(t_files - t0),
                  (long long)(t_netns - t_files), (long long)(t_net - t_netns),
                  (long long)(mono_us() - t_net));
    p->pid = pid;
    p->ev_fd = pipefd[0];
    pipefd[0] = -1;
    fcntl(p->ev_fd, F_SETFL, O_NONBLOCK);
    node_pod_link(n, p);
    *out = p;
    p = NULL;
    err = WISP_OK;
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    for (size_t i = 0; i < MAX_CONTAINERS; i++) {
        if (a->log_fds[i] >= 0)
            close(a->log_fds[i]);
        wisp_node_env_free(a->envs[i]);
    }
    if (a->devnull >= 0)
        close(a->devnull);
    if (a->netns_fd >= 0)
        close(a->netns_fd);
    if (a->go_rfd >= 0)
        close(a->go_rfd);
    free(a);
    if (p) {
        pod_net_down(p);
        if (dir_made)
            nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        pod_free(p);
    }
    return err;
}

const char *wisp_node_pod_ip(const struct wisp_node_pod *p)
{
    return p->ip_s;
}

const char *wisp_node_pod_netns_path(const struct wisp_node_pod *p)
{
    return p->netns_path;
}

const char *wisp_node_pod_dir(const struct wisp_node_pod *p)
{
    return p->dir;
}

pid_t wisp_node_pod_pid(const struct wisp_node_pod *p)
{
    return p->pid;
}

const char *wisp_node_pod_log(const struct wisp_node_pod *p, size_t i)
{
    return i < p->n_logs ? p->logs[i] : NULL;
}

enum wisp_err wisp_node_pod_write_sa(struct wisp_node_pod *p, const char *file, const char *data,
                                     size_t len)
{
    char dir[PATH_MAX];
    if (!valid_token(file, 32))
        return WISP_EINVAL;
    snprintf(dir, sizeof(dir), "%s/sa", p->dir);
    return write_file(dir, file, data, len, 0644) == 0 ? WISP_OK : WISP_EIO;
}

int wisp_node_pod_event_fd(const struct wisp_node_pod *p)
{
    return p->ev_fd;
}

int wisp_node_pod_next_event(struct wisp_node_pod *p, struct wisp_node_event *ev)
{
    if (p->ev_fd < 0)
        return -1;
    for (;;) {
        ssize_t r = read(p->ev_fd, ev, sizeof(*ev));
        if (r == (ssize_t)sizeof(*ev))
            return 1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        /* EOF (every writer gone), or a torn record, which cannot happen
         * below PIPE_BUF: either way the init has nothing more to say. */
        close(p->ev_fd);
        p->ev_fd = -1;
        return -1;
    }
}

/* A held init has no handlers yet (it would ignore SIGTERM as PID 1):
 * closing its go pipe ends it instead. */
static void unhold(struct wisp_node_pod *p)
{
    if (p->go_fd >= 0) {
        close(p->go_fd);
        p->go_fd = -1;
    }
}

enum wisp_err wisp_node_pod_release(struct wisp_node_pod *p)
{
    ssize_t r;
    if (p->go_fd < 0)
        return WISP_EINVAL;
    do
        r = write(p->go_fd, "g", 1);
    while (r < 0 && errno == EINTR);
    unhold(p);
    return r == 1 ? WISP_OK : WISP_EIO;
}

int wisp_node_pod_held(const struct wisp_node_pod *p)
{
    return p->go_fd >= 0;
}

void wisp_node_pod_signal(struct wisp_node_pod *p, int sig)
{
    unhold(p);
    if (p->pid > 0)
        kill(p->pid, sig);
}

int wisp_node_pod_reap(struct wisp_node_pod *p, int block, int *status)
{
    int st;
    if (p->pid <= 0) {
        if (status)
            *status = p->status;
        return 1;
    }
    pid_t r;
    do
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->status = r == p->pid ? node_exit_code(st) : 255;
        p->pid = 0;
        if (status)
            *status = p->status;
        return 1;
    }
    return 0;
}

void wisp_node_pod_stop(struct wisp_node_pod *p, unsigned grace_ms)
{
    int64_t end = mono_ms() + grace_ms;
    unhold(p);
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    while (mono_ms() < end) {
        if (wisp_node_pod_reap(p, 0, NULL))
            return;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(p->pid, SIGKILL);
    wisp_node_pod_reap(p, 1, NULL);
}

void wisp_node_pod_release_net(struct wisp_node_pod *p)
{
    if (p->pid > 0)
        return; /* processes still use it */
    pod_net_down(p);
}

void wisp_node_pod_destroy(struct wisp_node_pod *p)
{
    if (!p)
        return;
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        wisp_node_pod_reap(p, 1, NULL);
    }
    pod_net_down(p);
    node_pod_unlink(p->node, p);
    if (p->dir)
        nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    pod_free(p);
}
