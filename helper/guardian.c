/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
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
#define MSG_CONNECT 'C' /* a worker's own connection (the fd); its maps are put back at its EOF */
#define CONNECT_TAG "worker"
/* after the run's EOF, how long its workers (killed with it) may take to close theirs */
#define WORKERS_GONE_USEC (1 * USEC_PER_SEC)

struct mpf_guardian {
        pid_t pid;
        int sock;         /* our end: when it closes (we exit or are killed), the guardian acts */
        unsigned watched; /* maps watched from this connection and not forgotten since */
        bool unsure;      /* a message failed, or a forget matched no watch: it may have a map */
};

struct watched {
        char uuid[MPF_UUID_MAX];
        int fd;        /* a copy of the map's lock fd */
        unsigned conn; /* who watches it: 0 the run, else one of its workers */
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

/* One message from connection conn: the maps watched change. 1: a new connection (*ret_conn_fd),
 * 0: EOF (or cannot be heard any more: as if it were gone), -EAGAIN: nothing to change. */
static int handle(int sock, unsigned conn, struct watched **w, size_t *n, int *ret_conn_fd)
{
        char kind = 0, uuid[MPF_UUID_MAX];
        int fd = -EBADF;
        int r = receive_msg(sock, &kind, uuid, &fd);

        if (r == -EBADMSG)
                return -EAGAIN;
        if (r <= 0)
                return 0;
        if (kind == MSG_CONNECT) {
                if (fd < 0) {
                        log_warning("guardian: no fd left for a worker's connection: its maps are not put "
                                    "back if it dies");
                        return -EAGAIN;
                }
                *ret_conn_fd = fd;
                return 1;
        }
        forget(*w, n, uuid);
        if (kind == MSG_WATCH && fd == -EMFILE)
                log_warning("guardian: no fd left to watch map %s: it is not put back if the run dies",
                            uuid);
        if (kind == MSG_WATCH && fd >= 0) {
                struct watched *a = reallocarray(*w, *n + 1, sizeof(*a));

                if (!a) {
                        safe_close(fd);
                        return -EAGAIN;
                }
                *w = a;
                snprintf(a[*n].uuid, sizeof(a[*n].uuid), "%s", uuid);
                a[*n].conn = conn;
                a[(*n)++].fd = fd;
        } else
                safe_close(fd);
        return -EAGAIN;
}

/* Until EOF: the maps the helper holds the lock of when it goes (one connection, the tests'). */
static void collect(int sock, struct watched **w, size_t *n)
{
        for (;;) {
                int c = -EBADF;
                int r = handle(sock, 0, w, n, &c);

                if (r == 0)
                        return;
                safe_close(c);
        }
}

/* One map: its lock we still have a copy of, the helper held when it died. 1: looked at it (put
 * back, or nothing to put back), 0: the lock is another flusher's. */
static int put_back_one(const struct watched *w, const struct mpf_ops *ops)
{
        usec_t d = usec_add(ops->now(ops->userdata), MPF_UNDO_GRACE_USEC);

        if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
                log_debug_errno(-errno, "%s: lock taken by another flusher, leaving it: %m", w->uuid);
                return 0;
        }
        if (mpf_undo_leftover(ops, w->uuid, d, NULL) > 0)
                log_map(LOG_NOTICE, 0, NULL, w->uuid, NULL,
                        "the flusher died mid-flush; the map was put back as found");
        return 1;
}

/* In this process, one after the other (the tests' fakes live here). */
static int put_back(struct watched *w, size_t n, const struct mpf_ops *ops)
{
        int looked = 0;

        for (size_t i = 0; i < n; i++) {
                looked += put_back_one(&w[i], ops);
                w[i].fd = safe_close(w[i].fd);
        }
        return looked;
}

int mpf_guardian_fan_out(size_t n, size_t max, int (*child)(size_t i, void *u),
                         void (*started)(size_t i, void *u), void *u)
{
        _cleanup_(freep) pid_t *pids = NULL;
        size_t next = 0, running = 0;
        int ok = 0;

        if (max == 0)
                return -EINVAL;
        pids = calloc(n ? n : 1, sizeof(*pids));
        if (!pids)
                return -ENOMEM;
        while (next < n || running > 0) {
                int status;
                pid_t pid;

                if (next < n && running < max) {
                        size_t i = next++;

                        fflush(stdout);
                        fflush(stderr);
                        pid = fork();
                        if (pid == 0) {
                                int ok_child = child(i, u) > 0;

                                log_close();
                                _exit(ok_child ? 0 : 1);
                        }
                        if (pid < 0) /* no process to spare: this one here, then on */
                                ok += child(i, u) > 0;
                        else {
                                pids[i] = pid;
                                running++;
                        }
                        if (started)
                                started(i, u);
                        continue;
                }
                pid = waitpid(-1, &status, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno(); /* ECHILD: ours were reaped by someone else */
                }
                for (size_t i = 0; i < n; i++)
                        if (pids[i] == pid) {
                                pids[i] = 0;
                                running--;
                                ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
                                break;
                        }
        }
        return ok;
}

struct put_back_all {
        struct watched *w;
        size_t n;
        bool udev_sync;
        pid_t guardian; /* a map put back in the guardian itself (no fork) leaves the others' locks */
};

/* A child of the guardian: one map, with device handles of its own (libdevmapper's and udev's
 * state is not shared across fork). */
static int put_back_child(size_t i, void *u)
{
        struct put_back_all *a = u;
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        struct mpf_ops ops;
        int r;

        for (size_t j = 0; j < a->n && getpid() != a->guardian; j++) /* the others' locks are not ours */
                if (j != i)
                        a->w[j].fd = safe_close(a->w[j].fd);
        r = mpf_device_new(a->udev_sync, &d);
        if (r < 0)
                return log_error_errno(r, "%s: Failed to open device-mapper to put the map back: %m",
                                       a->w[i].uuid);
        mpf_device_ops(d, &ops);
        return put_back_one(&a->w[i], &ops);
}

/* The child has its copy of the lock (or is done with it): ours goes. */
static void put_back_started(size_t i, void *u)
{
        struct put_back_all *a = u;

        a->w[i].fd = safe_close(a->w[i].fd);
}

int mpf_guardian_serve(int sock, const struct mpf_ops *ops)
{
        _cleanup_(freep) struct watched *w = NULL;
        size_t n = 0;

        collect(sock, &w, &n);
        return put_back(w, n, ops);
}

struct conn {
        int fd;
        unsigned id;
};

/* A worker is gone (or the run: the maps it took over from its workers): its maps are put back
 * now, each by a child of ours (reaped as we go, or at the end), while we keep listening. */
static void put_back_now(struct watched *w, size_t *n, unsigned conn, bool udev_sync)
{
        pid_t pid;

        for (size_t i = 0; i < *n;) {
                struct put_back_all a = {.w = w, .n = *n, .udev_sync = udev_sync, .guardian = getpid()};

                if (w[i].conn != conn) {
                        i++;
                        continue;
                }
                fflush(stdout);
                fflush(stderr);
                pid = fork();
                if (pid == 0) {
                        int ok_child = put_back_child(i, &a) > 0;

                        log_close();
                        _exit(ok_child ? 0 : 1);
                }
                if (pid < 0) { /* no child to spare: the end of serve() puts it back */
                        i++;
                        continue;
                }
                safe_close(w[i].fd);
                w[i] = w[--*n];
        }
}

/* Serve the run's connection and its workers' until the run's reaches EOF, and its workers' too
 * (they die with it) or WORKERS_GONE_USEC later; each one's maps are put back at its EOF. What is
 * left watched then (a worker that would not die) is for the caller to put back. */
static void serve(int sock, bool udev_sync, struct watched **w, size_t *n)
{
        _cleanup_(freep) struct conn *c = NULL;
        _cleanup_(freep) struct pollfd *p = NULL;
        size_t n_c = 1;
        unsigned next_id = 1;
        usec_t until = USEC_INFINITY;

        c = calloc(1, sizeof(*c));
        if (!c)
                return collect(sock, w, n);
        c[0] = (struct conn){.fd = sock, .id = 0};
        while (n_c > 0) {
                usec_t now = now_monotonic();
                int r, timeout = -1;

                while (waitpid(-1, NULL, WNOHANG) > 0) /* the put-backs done */
                        ;
                if (until != USEC_INFINITY) {
                        if (now >= until)
                                break;
                        timeout = (int)((until - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }
                free(p);
                p = calloc(n_c, sizeof(*p));
                if (!p)
                        break;
                for (size_t i = 0; i < n_c; i++)
                        p[i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
                r = poll(p, n_c, timeout);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        break;
                /* the run's first: a map it took over from a worker is its own before that worker's
                 * EOF is read. A new connection is polled from the next round on. */
                for (size_t i = 0, n_p = n_c; i < n_p; i++) {
                        int conn_fd = -EBADF;

                        if (!p[i].revents)
                                continue;
                        r = handle(c[i].fd, c[i].id, w, n, &conn_fd);
                        if (r > 0) {
                                struct conn *a = reallocarray(c, n_c + 1, sizeof(*a));

                                if (!a) {
                                        safe_close(conn_fd);
                                        continue;
                                }
                                c = a;
                                c[n_c++] = (struct conn){.fd = conn_fd, .id = next_id++};
                        } else if (r == 0) { /* EOF */
                                if (c[i].id == 0)
                                        until = usec_add(now_monotonic(), WORKERS_GONE_USEC);
                                put_back_now(*w, n, c[i].id, udev_sync);
                                c[i].fd = c[i].id == 0 ? -EBADF : safe_close(c[i].fd);
                        }
                }
                for (size_t i = 0, k = 0, m = n_c; i < m; i++) /* the closed ones go, in order */
                        if (c[i].fd >= 0)
                                c[k++] = c[i];
                        else
                                n_c--;
        }
        for (size_t i = 0; i < n_c; i++)
                if (c[i].id != 0)
                        safe_close(c[i].fd);
}

_Noreturn static void guardian_main(int sock, bool udev_sync)
{
        static const int ignored[] = {SIGINT,  SIGTERM, SIGHUP,  SIGPIPE, SIGQUIT, SIGTSTP,
                                      SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGALRM};
        struct watched *w = NULL;
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

        serve(sock, udev_sync, &w, &n);
        /* every map at once, each in a process of its own: the last is back as soon as the first */
        if (n > 0)
                (void)mpf_guardian_fan_out(
                        n, MPF_GUARDIAN_PUT_BACK_MAX, put_back_child, put_back_started,
                        &(struct put_back_all){
                                .w = w, .n = n, .udev_sync = udev_sync, .guardian = getpid()});
        /* and a dead worker's maps, put back while the run went on */
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        log_close();
        _exit(EXIT_SUCCESS);
}

int mpf_guardian_start(bool udev_sync, struct mpf_guardian **ret)
{
        struct mpf_guardian *g;
        int sock;
        pid_t pid;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        pid = fork_with_socket(0, &sock);
        if (pid < 0) {
                free(g);
                return (int)pid;
        }
        if (pid == 0)
                guardian_main(sock, udev_sync);
        g->pid = pid;
        g->sock = sock;
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

bool mpf_guardian_idle(const struct mpf_guardian *g)
{
        return !g || (g->watched == 0 && !g->unsure);
}

struct mpf_guardian *mpf_guardian_leave(struct mpf_guardian *g)
{
        if (!g)
                return NULL;
        if (!mpf_guardian_idle(g))
                return mpf_guardian_free(g);
        /* it reads our forgets, then our end: it exits with nothing to do (not waited for) */
        g->sock = safe_close(g->sock);
        free(g);
        return NULL;
}

int mpf_guardian_watch_fd(int sock, const char *uuid, int lock_fd)
{
        return send_msg(sock, MSG_WATCH, uuid, lock_fd);
}

int mpf_guardian_forked(struct mpf_guardian *g)
{
        int pair[2], r;

        if (!g)
                return 0;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        r = send_msg(g->sock, MSG_CONNECT, CONNECT_TAG, pair[1]);
        safe_close(pair[1]);
        if (r < 0) {
                safe_close(pair[0]);
                return r; /* the run's connection it is, then */
        }
        /* ours only: our death is seen at once, not when the run's ends */
        safe_close(g->sock);
        g->sock = pair[0];
        g->pid = 0; /* not our child */
        g->watched = 0;
        g->unsure = false;
        return 0;
}

int mpf_guardian_forget_fd(int sock, const char *uuid)
{
        return send_msg(sock, MSG_FORGET, uuid, -EBADF);
}

int mpf_guardian_watch(struct mpf_guardian *g, const char *uuid, int lock_fd)
{
        int r;

        if (!g)
                return 0;
        r = mpf_guardian_watch_fd(g->sock, uuid, lock_fd);
        if (r < 0)
                g->unsure = true;
        else
                g->watched++;
        return r;
}

int mpf_guardian_forget(struct mpf_guardian *g, const char *uuid)
{
        int r;

        if (!g)
                return 0;
        r = mpf_guardian_forget_fd(g->sock, uuid);
        if (r < 0 || g->watched == 0)
                g->unsure = true;
        else
                g->watched--;
        return r;
}

pid_t mpf_guardian_pid(const struct mpf_guardian *g)
{
        return g ? g->pid : 0;
}
