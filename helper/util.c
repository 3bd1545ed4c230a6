/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "macro.h"

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;

        if (!l)
                return 0;
        while (l[n])
                n++;
        return n;
}

int strv_push(char ***l, char *value)
{
        size_t n = strv_length(*l);
        char **c;

        if (!value)
                return -EINVAL;
        c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(value);
                return -ENOMEM;
        }
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value)
{
        char *v = strdup(value);

        if (!v)
                return -ENOMEM;
        return strv_push(l, v);
}

int strv_contains(char *const *l, const char *value)
{
        if (!l)
                return 0;
        for (char *const *i = l; *i; i++)
                if (strcmp(*i, value) == 0)
                        return 1;
        return 0;
}

const char *startswith(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);

        if (strncmp(s, prefix, l) != 0)
                return NULL;
        return s + l;
}

int read_one_line(const char *path, char **ret)
{
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_(freep) char *line = NULL;
        size_t sz = 0;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return -ENOMEM;
        }
        errno = 0;
        n = getline(&line, &sz, f);
        if (n < 0) {
                if (ferror(f))
                        return errno > 0 ? -errno : -EIO;
                /* empty file: an empty line */
                line = mfree(line);
                line = strdup("");
                if (!line)
                        return -ENOMEM;
                n = 0;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
        *ret = TAKE_PTR(line);
        return 0;
}

int asprintf_safe(char **ret, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(ret, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

void close_all_but(int keep)
{
        int r = 0;

        if (keep > 3)
                r = close_range(3, (unsigned)keep - 1, 0);
        if (r >= 0)
                r = close_range((unsigned)keep + 1, ~0U, 0);
        if (r < 0) {
                long max = sysconf(_SC_OPEN_MAX);
                for (int i = 3; i < (max > 0 && max < 65536 ? max : 65536); i++)
                        if (i != keep)
                                (void)close(i);
        }
}

int stdio_fill_null(void)
{
        for (int fd = 0; fd < 3; fd++) {
                int null;

                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                null = open("/dev/null", O_RDWR | O_NOCTTY);
                if (null < 0)
                        return negative_errno();
                if (null != fd) { /* cannot be lower: 0..fd-1 are open by now */
                        int r = dup2(null, fd) < 0 ? negative_errno() : 0;

                        (void)close(null);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int waitpid_until(pid_t pid, int *ret_status, usec_t until)
{
        for (;;) {
                int st = 0;
                pid_t k = waitpid(pid, &st, WNOHANG);

                if (k == pid) {
                        if (ret_status)
                                *ret_status = st;
                        return 0;
                }
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (deadline_passed(until, now_monotonic()))
                        return -ETIMEDOUT;
                (void)usleep(2 * 1000);
        }
}

static const int fork_held_signals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                        SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};

pid_t fork_with_socket(unsigned flags, int *ret_sock)
{
        int pair[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        /* A caller that runs with stdin or stdout closed gets an end on 0-2, where the child's
         * /dev/null would replace it: both move above stderr. */
        for (int i = 0; i < 2; i++)
                if (pair[i] < 3) {
                        int moved = fcntl(pair[i], F_DUPFD_CLOEXEC, 3);

                        if (moved < 0) {
                                int r = negative_errno();

                                safe_close(pair[0]);
                                safe_close(pair[1]);
                                return r;
                        }
                        safe_close(pair[i]);
                        pair[i] = moved;
                }
        /* what is buffered would be written twice, once by each */
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();

                safe_close(pair[0]);
                safe_close(pair[1]);
                return r;
        }
        if (pid > 0) {
                safe_close(pair[1]);
                *ret_sock = pair[0];
                return pid;
        }
        safe_close(pair[0]);
        if (flags & FORK_RESET_SIGNALS) {
                struct sigaction sa = {.sa_handler = SIG_DFL};
                sigset_t held;

                for (int sig = 1; sig < _NSIG; sig++)
                        if (sig != SIGKILL && sig != SIGSTOP)
                                (void)sigaction(sig, &sa, NULL);
                /* What a terminal, timeout(1) or a unit's stop sends to the whole process group or
                 * cgroup stays blocked, as the run holds it back: a worker ends when we kill it or
                 * close its socket, not in the middle of a run that rides these out. */
                sigemptyset(&held);
                for (size_t i = 0; i < ELEMENTSOF(fork_held_signals); i++)
                        sigaddset(&held, fork_held_signals[i]);
                (void)sigprocmask(SIG_SETMASK, &held, NULL);
        }
        if (flags & FORK_NULL_STDIO) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);

                for (int i = 0; i < 3; i++)
                        if (null < 0 || dup2(null, i) < 0)
                                (void)close(i);
                if (null > 2)
                        (void)close(null);
        }
        if (flags & FORK_CLOSE_FDS)
                close_all_but(pair[1]);
        *ret_sock = pair[1];
        return 0;
}

union fd_control {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
};

int fd_send(int sock, const void *buf, size_t len, int fd)
{
        union fd_control control = {};
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        if (fd >= 0) {
                struct cmsghdr *c;

                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(fd));
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? negative_errno() : 0;
}

ssize_t fd_receive(int sock, void *buf, size_t size, int *ret_fd)
{
        union fd_control control = {};
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c;
        ssize_t n;

        *ret_fd = -EBADF;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        /* the kernel could not install the fd (we are at RLIMIT_NOFILE): the sender's copy is
         * all there was, and the message came without it */
        if (mh.msg_flags & MSG_CTRUNC) {
                safe_close(*ret_fd);
                *ret_fd = -EMFILE;
        }
        return n;
}

int rlimit_nofile_raise(rlim_t cap)
{
        struct rlimit rl;
        rlim_t want;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return negative_errno();
        want = rl.rlim_max < cap ? rl.rlim_max : cap;
        if (rl.rlim_cur >= want)
                return 0;
        rl.rlim_cur = want;
        return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? negative_errno() : 0;
}
