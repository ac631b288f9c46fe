/* SPDX-License-Identifier: Apache-2.0 */
/* Running a command inside a live pod (kubectl exec, docs/internals/EXEC.md):
 * a helper process enters the namespaces of the pod's init through a pidfd
 * and forks the command, which so becomes a member of the pod's PID
 * namespace; the helper waits for it and exits with its status. Between
 * fork and exec only system calls run, because the caller has threads. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "node/node_int.h"
#include "wisp/node.h"

int wisp_node_exec_socket_path(int api_port, const char *node, char *out, size_t len)
{
    int n = snprintf(out, len, WISP_NODE_EXEC_DIR "/%d-%s.sock", api_port, node);
    if (n >= 0 && (size_t)n < len && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path))
        return 0;
    uint32_t h = 2166136261u; /* FNV-1a: long names still get a stable path */
    for (const char *p = node; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    n = snprintf(out, len, WISP_NODE_EXEC_DIR "/%d-%08x.sock", api_port, h);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

void wisp_node_exec_record_head(unsigned char h[5], unsigned ch, size_t len)
{
    h[0] = (unsigned char)ch;
    h[1] = (unsigned char)(len >> 24);
    h[2] = (unsigned char)(len >> 16);
    h[3] = (unsigned char)(len >> 8);
    h[4] = (unsigned char)len;
}

long wisp_node_exec_record_next(const void *buf, size_t len, unsigned *ch,
                                const unsigned char **payload, size_t *plen)
{
    const unsigned char *b = buf;
    if (len < 5)
        return 0;
    size_t n = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
    if (n > WISP_NODE_EXEC_RECORD_MAX)
        return -1;
    if (len - 5 < n)
        return 0;
    *ch = b[0];
    *payload = b + 5;
    *plen = n;
    return (long)(5 + n);
}

/* What a failed step tells the caller through the report pipe. */
struct exec_report {
    int stage; /* 1 setns, 2 fork, 3 chdir, 4 exec */
    int err;
};

static void report(int fd, int stage)
{
    struct exec_report r = {.stage = stage, .err = errno};
    ssize_t w = write(fd, &r, sizeof(r)); /* atomic: below PIPE_BUF */
    (void)w;
}

/* The command, in the pod's namespaces: fds 0-2 are its streams, 3 the
 * report pipe (close-on-exec, so a successful exec reports nothing). */
static void command_main(const struct wisp_node_exec_spec *s)
{
    sigset_t none;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (s->tty)
        ioctl(0, TIOCSCTTY, 0);
    if (chdir(s->workdir ? s->workdir : "/") != 0) {
        report(3, 3);
        _exit(126);
    }
    execvpe(s->argv[0], s->argv, s->env);
    report(3, 4);
    _exit(127);
}

/* The helper: arranges the descriptors, enters the pod, forks the command
 * and passes its exit status on. Inherited descriptors of other sessions
 * are closed so that their pipes see EOF when their own commands end. */
static void helper_main(const struct wisp_node_exec_spec *s, int rep)
{
    int in = fcntl(s->stdin_fd, F_DUPFD, 64), out = fcntl(s->stdout_fd, F_DUPFD, 64),
        er = fcntl(s->stderr_fd, F_DUPFD, 64), pfd = fcntl(s->pidfd, F_DUPFD, 64),
        r = fcntl(rep, F_DUPFD, 64);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (in < 0 || out < 0 || er < 0 || pfd < 0 || r < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(er, 2) < 0 || dup2(r, 3) < 0 || dup2(pfd, 4) < 0) {
        report(rep, 2);
        _exit(126);
    }
    fcntl(3, F_SETFD, FD_CLOEXEC);
    syscall(SYS_close_range, 5u, ~0u, 0u);
    if (setns(4, CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNS) != 0) {
        report(3, 1);
        _exit(126);
    }
    close(4);
    pid_t pid = fork();
    if (pid == 0)
        command_main(s); /* never returns */
    if (pid < 0) {
        report(3, 2);
        _exit(126);
    }
    /* The helper keeps none of the command's streams: EOF must depend on
     * the command alone. */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
    close(3);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    _exit(node_exit_code(st));
}

pid_t wisp_node_exec_start(const struct wisp_node_exec_spec *s, int *err, char *why,
                           size_t whylen)
{
    int rep[2];
    struct exec_report r = {0};
    ssize_t got;

    *err = 0;
    if (!s->argv || !s->argv[0] || !s->argv[0][0]) {
        *err = EINVAL;
        snprintf(why, whylen, "no command given");
        return -1;
    }
    if (pipe2(rep, O_CLOEXEC) != 0) {
        *err = errno;
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        helper_main(s, rep[1]); /* never returns */
    int fork_errno = errno;
    close(rep[1]);
    if (pid < 0) {
        close(rep[0]);
        *err = fork_errno;
        snprintf(why, whylen, "fork: %s", strerror(fork_errno));
        return -1;
    }
    /* EOF once the command has exec'd (and the helper closed its copy);
     * a report if a step failed. */
    do
        got = read(rep[0], &r, sizeof(r));
    while (got < 0 && errno == EINTR);
    close(rep[0]);
    if (got != (ssize_t)sizeof(r))
        return pid;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *err = r.err;
    switch (r.stage) {
    case 1:
        snprintf(why, whylen, "entering the pod's namespaces: %s", strerror(r.err));
        break;
    case 3:
        snprintf(why, whylen, "chdir to \"%s\": %s", s->workdir ? s->workdir : "/",
                 strerror(r.err));
        break;
    case 4:
        if (r.err == ENOENT)
            snprintf(why, whylen, "exec: \"%s\": executable file not found in $PATH",
                     s->argv[0]);
        else
            snprintf(why, whylen, "exec: \"%s\": %s", s->argv[0], strerror(r.err));
        break;
    default:
        snprintf(why, whylen, "starting the command: %s", strerror(r.err));
        break;
    }
    return -1;
}
