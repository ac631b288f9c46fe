/* SPDX-License-Identifier: Apache-2.0 */
/* The node side of kubectl exec (docs/internals/EXEC.md): a Unix socket
 * that wispd connects to, one session per connection — a JSON header line
 * naming the pod, container and command, our JSON answer line, then
 * length-prefixed records on the Kubernetes channel numbers both ways. The
 * command runs inside the pod (lib/node/exec.c) with a pty or pipes. One
 * thread with its own poll serves every session, so exec traffic never
 * waits for the agent's API calls; the agent tells it which pods run here
 * (exec_pod_add/remove) under a mutex. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "node.h"
#include "wisp/alloc.h"
#include "wisp/buf.h"
#include "wisp/log.h"

#define MAX_SESSIONS 64
#define MAX_HEADER 65536

#define HIGH_WATER (1u << 20)   /* buffered bytes before a side stops reading */
#define DRAIN_MS 2000           /* output still awaited after the command ended, since the
                                   last byte (a background child may hold the pipe) */
#define CH_STDIN 0
#define CH_STDOUT 1
#define CH_STDERR 2
#define CH_STATUS 3
#define CH_RESIZE 4
#define CH_CLOSE 255

struct xpod {
    struct xpod *next;
    char *uid, *ns, *name;
    int pidfd;
    size_t n;
    char *cname[16];
    char **env[16];
    char *workdir[16];
};

struct sess {
    int conn;                 /* to wispd */
    int in_w, out_r, err_r;   /* the command's stdin (pty master with tty), stdout, stderr */
    int tty, hdr_done, conn_eof, stdin_closing, ending;
    pid_t pid;                /* the helper; 0 once reaped */
    int pidfd;                /* readable when the helper exits */
    int code;
    int64_t drain_until;
    struct wisp_buf rx;       /* from wispd, not yet parsed */
    struct wisp_buf to_conn;  /* records for wispd */
    struct wisp_buf to_in;    /* stdin for the command */
};

static struct {
    pthread_mutex_t mu;
    struct xpod *pods;
    pthread_t thread;
    int running, lfd, wake;
    char path[128];
    struct sess *s[MAX_SESSIONS];
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1, .wake = -1};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the registry --------------------------------------------------------------- */

static void xpod_free(struct xpod *p)
{
    if (p->pidfd >= 0)
        close(p->pidfd);
    for (size_t i = 0; i < p->n; i++) {
        free(p->cname[i]);
        free(p->workdir[i]);
        wisp_node_env_free(p->env[i]);
    }
    free(p->uid);
    free(p->ns);
    free(p->name);
    free(p);
}

void exec_pod_add(const char *uid, const char *ns, const char *name, const char *hostname,
                  pid_t pid, const struct wisp_node_container *c, size_t n)
{
    /* A pidfd, not the pid: once the init is gone it can never name another
     * process, and entering it then fails with ESRCH. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        wisp_log_warn("exec", "pod %s/%s: pidfd_open: %s", ns, name, strerror(errno));
        return;
    }
    struct xpod *p = wisp_xcalloc(1, sizeof(*p));
    p->uid = wisp_xstrdup(uid);
    p->ns = wisp_xstrdup(ns);
    p->name = wisp_xstrdup(name);
    p->pidfd = pidfd;
    p->n = n > 16 ? 16 : n;
    for (size_t i = 0; i < p->n; i++) {
        p->cname[i] = wisp_xstrdup(c[i].name ? c[i].name : "");
        p->workdir[i] = c[i].workdir ? wisp_xstrdup(c[i].workdir) : NULL;
        p->env[i] = wisp_node_container_env(&c[i], hostname);
    }
    exec_pod_remove(uid);
    pthread_mutex_lock(&ex.mu);
    p->next = ex.pods;
    ex.pods = p;
    pthread_mutex_unlock(&ex.mu);
}

void exec_pod_remove(const char *uid)
{
    struct xpod *gone = NULL;
    pthread_mutex_lock(&ex.mu);
    for (struct xpod **pp = &ex.pods; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->uid, uid)) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    }
    pthread_mutex_unlock(&ex.mu);
    if (gone)
        xpod_free(gone);
}

/* ---- records -------------------------------------------------------------------- */

static void put_record(struct sess *s, int ch, const void *data, size_t len)
{
    unsigned char h[5];
    wisp_node_exec_record_head(h, (unsigned)ch, len);
    wisp_buf_append(&s->to_conn, h, 5);
    wisp_buf_append(&s->to_conn, data, len);
}

static void consume(struct wisp_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* The answer line to the header: {"ok":true}, or a Kubernetes-style
 * failure that wispd turns into its HTTP answer. */
static void answer(struct sess *s, int code, const char *reason, const char *msg)
{
    json_t *a = code ? json_pack("{s:b, s:i, s:s, s:s}", "ok", 0, "code", code, "reason",
                                 reason, "message", msg)
                     : json_pack("{s:b}", "ok", 1);
    char *text = json_dumps(a, JSON_COMPACT);
    if (code)
        s->ending = 1; /* nothing follows a refusal */
    wisp_buf_appends(&s->to_conn, text);
    wisp_buf_appends(&s->to_conn, "\n");
    free(text);
    json_decref(a);
}

/* The final status, as the Kubernetes API sends it on channel 3. */
static void final_status(struct sess *s, const char *failure)
{
    json_t *st;
    if (failure) {
        char *m = wisp_xasprintf("Internal error occurred: error executing command in "
                                 "container: %s", failure);
        st = json_pack("{s:{}, s:s, s:s, s:s, s:i}", "metadata", "status", "Failure", "message",
                       m, "reason", "InternalError", "code", 500);
        free(m);
    } else if (s->code == 0) {
        st = json_pack("{s:{}, s:s}", "metadata", "status", "Success");
    } else {
        char code[16], *m;
        snprintf(code, sizeof(code), "%d", s->code);
        m = wisp_xasprintf("command terminated with non-zero exit code: exit status %d",
                           s->code);
        st = json_pack("{s:{}, s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "metadata", "status",
                       "Failure", "message", m, "reason", "NonZeroExitCode", "details",
                       "causes", "reason", "ExitCode", "message", code);
        free(m);
    }
    char *text = json_dumps(st, JSON_COMPACT);
    put_record(s, CH_STATUS, text, strlen(text));
    free(text);
    json_decref(st);
    s->ending = 1;
}

/* ---- starting the command ------------------------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int flag(const json_t *h, const char *k)
{
    return json_is_true(json_object_get(h, k));
}

/* Parses the header, finds the pod and starts the command; answers either
 * way. */
static void start(struct sess *s, const char *line)
{
    json_error_t jerr;
    json_t *h = json_loads(line, 0, &jerr);
    const json_t *cmd = json_object_get(h, "command");
    const char *uid = json_string_value(json_object_get(h, "uid"));
    const char *ns = json_string_value(json_object_get(h, "namespace"));
    const char *name = json_string_value(json_object_get(h, "pod"));
    const char *cont = json_string_value(json_object_get(h, "container"));
    char *argv[257] = {0}, why[512] = "";
    int child[3] = {-1, -1, -1}, devnull = -1, pidfd = -1;
    struct wisp_node_exec_spec spec = {0};
    size_t i;

    if (!h || !uid || !ns || !name || !json_is_array(cmd) || json_array_size(cmd) == 0 ||
        json_array_size(cmd) > 256) {
        answer(s, 400, "BadRequest", "malformed exec header");
        goto out;
    }
    for (i = 0; i < json_array_size(cmd); i++) {
        argv[i] = (char *)json_string_value(json_array_get(cmd, i));
        if (!argv[i]) {
            answer(s, 400, "BadRequest", "the command must be strings");
            goto out;
        }
    }
    s->tty = flag(h, "tty");
    pthread_mutex_lock(&ex.mu);
    struct xpod *p = ex.pods;
    while (p && strcmp(p->uid, uid) != 0)
        p = p->next;
    size_t ci = 0;
    if (p && cont && cont[0]) {
        while (ci < p->n && strcmp(p->cname[ci], cont) != 0)
            ci++;
    }
    if (!p || strcmp(p->ns, ns) != 0 || strcmp(p->name, name) != 0) {
        pthread_mutex_unlock(&ex.mu);
        snprintf(why, sizeof(why), "pod %s/%s is not running on this node", ns, name);
        answer(s, 404, "NotFound", why);
        goto out;
    }
    if (ci == p->n) {
        pthread_mutex_unlock(&ex.mu);
        snprintf(why, sizeof(why), "container not found (\"%s\")", cont);
        answer(s, 400, "BadRequest", why);
        goto out;
    }
    pidfd = fcntl(p->pidfd, F_DUPFD_CLOEXEC, 0);
    spec.env = p->env[ci];
    spec.workdir = p->workdir[ci];

    /* The streams: a pty for tty (its slave is all three), pipes otherwise;
     * a stream kubectl did not ask for is /dev/null. */
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (s->tty) {
        int m, sl;
        if (openpty(&m, &sl, NULL, NULL, NULL) != 0) {
            pthread_mutex_unlock(&ex.mu);
            answer(s, 500, "InternalError", "openpty failed");
            goto out;
        }
        fcntl(m, F_SETFD, FD_CLOEXEC);
        fcntl(sl, F_SETFD, FD_CLOEXEC);
        s->in_w = m;
        s->out_r = dup(m);
        fcntl(s->out_r, F_SETFD, FD_CLOEXEC);
        child[0] = sl;
        child[1] = dup(sl);
        child[2] = dup(sl);
    } else {
        int pi[2], po[2], pe[2];
        if (flag(h, "stdin") && pipe2(pi, O_CLOEXEC) == 0) {
            child[0] = pi[0];
            s->in_w = pi[1];
        }
        if (flag(h, "stdout") && pipe2(po, O_CLOEXEC) == 0) {
            s->out_r = po[0];
            child[1] = po[1];
        }
        if (flag(h, "stderr") && pipe2(pe, O_CLOEXEC) == 0) {
            s->err_r = pe[0];
            child[2] = pe[1];
        }
    }
    spec.pidfd = pidfd;
    spec.argv = argv;
    spec.tty = s->tty;
    spec.stdin_fd = child[0] >= 0 ? child[0] : devnull;
    spec.stdout_fd = child[1] >= 0 ? child[1] : devnull;
    spec.stderr_fd = child[2] >= 0 ? child[2] : devnull;
    int err = 0;
    pid_t pid = pidfd < 0 ? -1 : wisp_node_exec_start(&spec, &err, why, sizeof(why));
    pthread_mutex_unlock(&ex.mu);
    if (pid < 0 && (pidfd < 0 || err == ESRCH)) {
        snprintf(why, sizeof(why), "pod %s/%s is not running", ns, name);
        answer(s, 404, "NotFound", why);
        goto out;
    }
    answer(s, 0, NULL, NULL);
    if (pid < 0) {
        wisp_log_info("exec", "pod %s/%s: %s", ns, name, why);
        final_status(s, why);
        goto out;
    }
    s->pid = pid;
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->in_w >= 0)
        fcntl(s->in_w, F_SETFL, O_NONBLOCK);
    if (s->out_r >= 0)
        fcntl(s->out_r, F_SETFL, O_NONBLOCK);
    if (s->err_r >= 0)
        fcntl(s->err_r, F_SETFL, O_NONBLOCK);
    wisp_log_info("exec", "pod %s/%s: %s%s (pid %d)", ns, name, argv[0], s->tty ? " with a tty" : "",
                  (int)pid);
out:
    for (i = 0; i < 3; i++)
        close_fd(&child[i]);
    close_fd(&devnull);
    close_fd(&pidfd);
    json_decref(h);
}

/* ---- one session ---------------------------------------------------------------- */

static void resize(struct sess *s, const char *data, size_t len)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    json_int_t w = json_integer_value(json_object_get(j, "Width")),
               hgt = json_integer_value(json_object_get(j, "Height"));
    if (s->tty && s->in_w >= 0 && w > 0 && hgt > 0 && w < 65536 && hgt < 65536) {
        struct winsize ws = {.ws_row = (unsigned short)hgt, .ws_col = (unsigned short)w};
        ioctl(s->in_w, TIOCSWINSZ, &ws);
    }
    json_decref(j);
}

/* Parses what wispd sent: the header line first, then records. */
static void parse_rx(struct sess *s)
{
    if (!s->hdr_done) {
        char *nl = memchr(s->rx.data, '\n', s->rx.len);
        if (!nl) {
            if (s->rx.len >= MAX_HEADER)
                s->conn_eof = 1; /* no header: drop the connection */
            return;
        }
        *nl = '\0';
        s->hdr_done = 1;
        start(s, s->rx.data);
        consume(&s->rx, (size_t)(nl + 1 - s->rx.data));
    }
    for (;;) {
        unsigned ch;
        const unsigned char *ud;
        size_t len;
        long whole = wisp_node_exec_record_next(s->rx.data, s->rx.len, &ch, &ud, &len);
        if (whole < 0)
            s->conn_eof = 1;
        if (whole <= 0)
            return;
        const char *d = (const char *)ud;
        switch (ch) {
        case CH_STDIN:
            if (s->in_w >= 0 && !s->stdin_closing)
                wisp_buf_append(&s->to_in, d, len);
            break;
        case CH_RESIZE:
            resize(s, d, len);
            break;
        case CH_CLOSE:
            /* a pty has no half-close: the terminal stays, as with a kubelet */
            if (len >= 1 && d[0] == CH_STDIN && !s->tty)
                s->stdin_closing = 1;
            break;
        default:
            break;
        }
        consume(&s->rx, (size_t)whole);
    }
}

static void read_output(struct sess *s, int *fd, int ch)
{
    char buf[32768];
    ssize_t r = read(*fd, buf, sizeof(buf));
    if (r > 0) {
        put_record(s, ch, buf, (size_t)r);
        if (s->drain_until) /* still flowing: the grace runs from the last output */
            s->drain_until = now_ms() + DRAIN_MS;
    }
    else if (r == 0 || (errno != EAGAIN && errno != EINTR))
        close_fd(fd); /* EOF, or EIO from a pty whose slave is closed */
}

static void sess_free(struct sess *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL); /* the command follows by PDEATHSIG */
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close_fd(&s->conn);
    close_fd(&s->in_w);
    close_fd(&s->out_r);
    close_fd(&s->err_r);
    close_fd(&s->pidfd);
    wisp_buf_free(&s->rx);
    wisp_buf_free(&s->to_conn);
    wisp_buf_free(&s->to_in);
    free(s);
}

/* Progress without blocking after poll said something; returns 0 when the
 * session is over. */
static int sess_step(struct sess *s, const struct pollfd *pf)
{
    /* from wispd */
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[32768];
        ssize_t r = recv(s->conn, buf, sizeof(buf), 0);
        if (r > 0) {
            wisp_buf_append(&s->rx, buf, (size_t)r);
            parse_rx(s);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            s->conn_eof = 1;
        }
    }
    if (s->conn_eof)
        return 0; /* wispd (the client) is gone: end the command */
    /* to the command */
    if (s->in_w >= 0 && s->to_in.len && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t w = write(s->in_w, s->to_in.data, s->to_in.len);
        if (w > 0)
            consume(&s->to_in, (size_t)w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            s->to_in.len = 0; /* the command closed its stdin */
    }
    if (s->stdin_closing && !s->to_in.len && !s->tty)
        close_fd(&s->in_w);
    /* from the command */
    if (s->out_r >= 0 && (pf[2].revents & (POLLIN | POLLHUP | POLLERR)))
        read_output(s, &s->out_r, CH_STDOUT);
    if (s->err_r >= 0 && (pf[3].revents & (POLLIN | POLLHUP | POLLERR)))
        read_output(s, &s->err_r, CH_STDERR);
    /* the command's end */
    if (s->pid > 0 && (s->pidfd < 0 || (pf[4].revents & POLLIN))) {
        int st = 0;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            s->pid = 0;
            close_fd(&s->pidfd);
            s->drain_until = now_ms() + DRAIN_MS;
        }
    }
    /* Output held back by a slow client is not output that stopped. */
    if (s->drain_until && s->to_conn.len >= HIGH_WATER)
        s->drain_until = now_ms() + DRAIN_MS;
    if (s->hdr_done && !s->ending && s->pid == 0 && s->drain_until &&
        ((s->out_r < 0 && s->err_r < 0) || now_ms() >= s->drain_until))
        final_status(s, NULL);
    /* to wispd */
    if (s->to_conn.len) {
        ssize_t w = send(s->conn, s->to_conn.data, s->to_conn.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            consume(&s->to_conn, (size_t)w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            return 0;
    }
    return !(s->ending && !s->to_conn.len);
}

/* ---- the thread ----------------------------------------------------------------- */

static void accept_one(void)
{
    int fd = accept4(ex.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    /* The socket is root's alone (mode 0600 in a 0700 directory); the peer
     * check keeps it so even if those modes were changed. */
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 ||
        (cr.uid != 0 && cr.uid != geteuid())) {
        close(fd);
        return;
    }
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        if (!ex.s[i]) {
            struct sess *s = wisp_xcalloc(1, sizeof(*s));
            s->conn = fd;
            s->in_w = s->out_r = s->err_r = s->pidfd = -1;
            wisp_buf_init(&s->rx, MAX_HEADER + WISP_NODE_EXEC_RECORD_MAX + 65536);
            wisp_buf_init(&s->to_conn, 64u << 20);
            wisp_buf_init(&s->to_in, 64u << 20);
            ex.s[i] = s;
            return;
        }
    }
    close(fd); /* too many sessions: wispd reports the node as unavailable */
}

static void *exec_main(void *arg)
{
    (void)arg;
    sigset_t pipe_only;
    /* a write to a command that closed its stdin must fail, not kill us */
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
    for (;;) {
        struct pollfd pf[2 + MAX_SESSIONS * 5];
        size_t n = 0, at[MAX_SESSIONS];
        int timeout = -1;
        pf[n++] = (struct pollfd){.fd = ex.wake, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = ex.lfd, .events = POLLIN};
        for (size_t i = 0; i < MAX_SESSIONS; i++) {
            struct sess *s = ex.s[i];
            at[i] = SIZE_MAX;
            if (!s)
                continue;
            at[i] = n;
            int out_ok = s->to_conn.len < HIGH_WATER;
            pf[n++] = (struct pollfd){.fd = s->to_in.len < HIGH_WATER ? s->conn : -1,
                                      .events = POLLIN | (s->to_conn.len ? POLLOUT : 0)};
            if (s->to_conn.len && pf[n - 1].fd < 0)
                pf[n - 1] = (struct pollfd){.fd = s->conn, .events = POLLOUT};
            pf[n++] = (struct pollfd){.fd = s->to_in.len ? s->in_w : -1, .events = POLLOUT};
            pf[n++] = (struct pollfd){.fd = out_ok ? s->out_r : -1, .events = POLLIN};
            pf[n++] = (struct pollfd){.fd = out_ok ? s->err_r : -1, .events = POLLIN};
            pf[n++] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
            if (s->drain_until || (s->pid > 0 && s->pidfd < 0))
                timeout = 100;
        }
        if (poll(pf, n, timeout) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN)
            break;
        if (pf[1].revents & POLLIN)
            accept_one();
        for (size_t i = 0; i < MAX_SESSIONS; i++) {
            struct sess *s = ex.s[i];
            /* one accepted in this round is polled next time */
            if (s && at[i] != SIZE_MAX && !sess_step(s, &pf[at[i]])) {
                sess_free(s);
                ex.s[i] = NULL;
            }
        }
    }
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        if (ex.s[i])
            sess_free(ex.s[i]);
        ex.s[i] = NULL;
    }
    return NULL;
}

int exec_start(const char *api, const char *node)
{
    const char *colon = strrchr(api, ':');
    int port = colon ? atoi(colon + 1) : 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (port <= 0 || wisp_node_exec_socket_path(port, node, ex.path, sizeof(ex.path)) != 0) {
        wisp_log_err("exec", "no exec socket path for %s on %s", node, api);
        return -1;
    }
    mkdir("/run/wisp", 0755);
    mkdir(WISP_NODE_EXEC_DIR, 0700);
    chmod(WISP_NODE_EXEC_DIR, 0700);
    memcpy(a.sun_path, ex.path, strlen(ex.path) + 1); /* the path function checked the length */
    unlink(ex.path); /* left by an agent that died */
    ex.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0077);
    int ok = ex.lfd >= 0 && bind(ex.lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
             listen(ex.lfd, 64) == 0;
    umask(old);
    ex.wake = eventfd(0, EFD_CLOEXEC);
    if (!ok || ex.wake < 0 || pthread_create(&ex.thread, NULL, exec_main, NULL) != 0) {
        wisp_log_err("exec", "exec socket %s: %s", ex.path, strerror(errno));
        close_fd(&ex.lfd);
        close_fd(&ex.wake);
        return -1;
    }
    ex.running = 1;
    wisp_log_info("exec", "exec sessions on %s", ex.path);
    return 0;
}

void exec_stop(void)
{
    if (ex.running) {
        uint64_t one = 1;
        ssize_t w = write(ex.wake, &one, sizeof(one));
        (void)w;
        pthread_join(ex.thread, NULL);
        ex.running = 0;
        unlink(ex.path);
    }
    close_fd(&ex.lfd);
    close_fd(&ex.wake);
    while (ex.pods) {
        struct xpod *p = ex.pods;
        ex.pods = p->next;
        xpod_free(p);
    }
}
