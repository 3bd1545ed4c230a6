/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "device.h"
#include "guardian.h"
#include "log.h"
#include "macro.h"
#include "undo.h"

#define MSG_WATCH 'W'
#define MSG_FORGET 'F'

struct mpf_guardian {
        pid_t pid;
        int sock; /* our end: when it closes (we exit or are killed), the guardian acts */
};

struct watched {
        char uuid[MPF_UUID_MAX];
        int fd; /* a copy of the map's lock fd */
};

static int send_msg(int sock, char kind, const char *uuid, int fd)
{
        char buf[1 + MPF_UUID_MAX];
        size_t l = strlen(uuid);

        if (l == 0 || l >= MPF_UUID_MAX)
                return -EINVAL;
        buf[0] = kind;
        memcpy(buf + 1, uuid, l);
        return fd_send(sock, buf, 1 + l, fd);
}

/* One message: 1, 0 at EOF (the helper is gone), or a negative errno. */
static int receive_msg(int sock, char *ret_kind, char *ret_uuid, int *ret_fd)
{
        char buf[1 + MPF_UUID_MAX];
        ssize_t n;

        n = fd_receive(sock, buf, sizeof(buf), ret_fd);
        if (n == -ECONNRESET || n == 0)
                return 0;
        if (n < 0)
                return (int)n;
        if (n < 2 || (size_t)n >= sizeof(buf)) {
                *ret_fd = safe_close(*ret_fd);
                return -EBADMSG;
        }
        *ret_kind = buf[0];
        memcpy(ret_uuid, buf + 1, (size_t)n - 1);
        ret_uuid[n - 1] = 0;
        return 1;
}

static void forget(struct watched *w, size_t *n, const char *uuid)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp(w[i].uuid, uuid) == 0) {
                        safe_close(w[i].fd);
                        w[i] = w[--*n];
                        return;
                }
}

/* Until EOF: the maps the helper holds the lock of when it goes. */
static void collect(int sock, struct watched **w, size_t *n)
{
        for (;;) {
                char kind = 0, uuid[MPF_UUID_MAX];
                int fd = -EBADF;
                int r = receive_msg(sock, &kind, uuid, &fd);

                if (r == 0)
                        return;
                if (r == -EBADMSG)
                        continue;
                if (r < 0)
                        return; /* cannot hear the helper any more: act as if it were gone */
                forget(*w, n, uuid);
                if (kind == MSG_WATCH && fd == -EMFILE)
                        log_warning(
                                "guardian: no fd left to watch map %s: it is not put back if the run dies",
                                uuid);
                if (kind == MSG_WATCH && fd >= 0) {
                        struct watched *a = reallocarray(*w, *n + 1, sizeof(*a));

                        if (!a) {
                                safe_close(fd);
                                continue;
                        }
                        *w = a;
                        snprintf(a[*n].uuid, sizeof(a[*n].uuid), "%s", uuid);
                        a[(*n)++].fd = fd;
                } else
                        safe_close(fd);
        }
}

/* The helper is gone. Each lock we still have a copy of, it held when it died. */
static int put_back(struct watched *w, size_t n, const struct mpf_ops *ops)
{
        int looked = 0;

        for (size_t i = 0; i < n; i++) {
                usec_t d = usec_add(ops->now(ops->userdata), MPF_UNDO_GRACE_USEC);

                if (flock(w[i].fd, LOCK_EX | LOCK_NB) >= 0) {
                        if (mpf_undo_leftover(ops, w[i].uuid, d) > 0)
                                log_map(LOG_NOTICE, 0, NULL, w[i].uuid, NULL,
                                        "the flusher died mid-flush; the map was put back as found");
                        looked++;
                } else
                        log_debug_errno(-errno, "%s: lock taken by another flusher, leaving it: %m",
                                        w[i].uuid);
                w[i].fd = safe_close(w[i].fd);
        }
        return looked;
}

int mpf_guardian_serve(int sock, const struct mpf_ops *ops)
{
        _cleanup_(freep) struct watched *w = NULL;
        size_t n = 0;

        collect(sock, &w, &n);
        return put_back(w, n, ops);
}

_Noreturn static void guardian_main(int sock, bool udev_sync)
{
        static const int ignored[] = {SIGINT,  SIGTERM, SIGHUP,  SIGPIPE, SIGQUIT, SIGTSTP,
                                      SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGALRM};
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        struct watched *w = NULL;
        struct mpf_ops ops;
        size_t n = 0;
        sigset_t none;
        int null;

        /* Nothing of the caller's: no terminal, no stdio, no fd of the helper but the socket. */
        (void)setsid();
        (void)prctl(PR_SET_NAME, "mpath-flush-gd");
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                (void)signal(ignored[i], SIG_IGN);
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (null >= 0) {
                (void)dup2(null, STDIN_FILENO);
                (void)dup2(null, STDOUT_FILENO);
                (void)dup2(null, STDERR_FILENO);
        }
        close_all_but(sock);
        log_set_journal(true); /* the journal if it runs; else stderr, which is /dev/null now */

        collect(sock, &w, &n);
        if (n == 0)
                _exit(EXIT_SUCCESS); /* the helper was done with every map */
        if (mpf_device_new(udev_sync, &d) < 0)
                _exit(EXIT_FAILURE);
        mpf_device_ops(d, &ops);
        (void)put_back(w, n, &ops);
        _exit(EXIT_SUCCESS);
}

int mpf_guardian_start(bool udev_sync, struct mpf_guardian **ret)
{
        struct mpf_guardian *g;
        int pair[2];
        pid_t pid;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                free(g);
                return negative_errno();
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                (void)close(pair[0]);
                (void)close(pair[1]);
                free(g);
                return r;
        }
        if (pid == 0)
                guardian_main(pair[1], udev_sync);
        (void)close(pair[1]);
        g->pid = pid;
        g->sock = pair[0];
        *ret = g;
        return 0;
}

struct mpf_guardian *mpf_guardian_free(struct mpf_guardian *g)
{
        if (!g)
                return NULL;
        g->sock = safe_close(g->sock);
        (void)waitpid(g->pid, NULL, 0);
        free(g);
        return NULL;
}

int mpf_guardian_watch_fd(int sock, const char *uuid, int lock_fd)
{
        return send_msg(sock, MSG_WATCH, uuid, lock_fd);
}

int mpf_guardian_forget_fd(int sock, const char *uuid)
{
        return send_msg(sock, MSG_FORGET, uuid, -EBADF);
}

int mpf_guardian_watch(struct mpf_guardian *g, const char *uuid, int lock_fd)
{
        return g ? mpf_guardian_watch_fd(g->sock, uuid, lock_fd) : 0;
}

int mpf_guardian_forget(struct mpf_guardian *g, const char *uuid)
{
        return g ? mpf_guardian_forget_fd(g->sock, uuid) : 0;
}

pid_t mpf_guardian_pid(const struct mpf_guardian *g)
{
        return g ? g->pid : 0;
}
