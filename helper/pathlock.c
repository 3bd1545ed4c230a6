/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "lock.h"
#include "log.h"
#include "macro.h"
#include "pathlock.h"

/* The worker's messages, in order: MSG_OPENING before each open, MSG_LOCKED with each locked
 * descriptor, MSG_DONE once at the end. */
enum {
        MSG_OPENING, /* value: the index of the path it opens now */
        MSG_LOCKED,  /* value: that index; the descriptor comes with it */
        MSG_DONE,    /* value: 0 or a negative errno */
};

struct msg {
        int kind;
        int value;
};

static int say(int sock, int kind, int value, int fd)
{
        struct msg m = {.kind = kind, .value = value};

        return fd_send(sock, &m, sizeof(m), fd);
}

/* Each send fails once the helper has closed its end (it gave up on us): then there is nothing
 * left to do but exit, which lets go of whatever we hold. */
_Noreturn static void worker(int sock, char *const *paths, size_t n, usec_t deadline)
{
        int r = 0;

        (void)prctl(PR_SET_NAME, "mpath-flush-pl");
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(freep) int *one = NULL;
                size_t k = 0;

                if (say(sock, MSG_OPENING, (int)i, -EBADF) < 0)
                        _exit(EXIT_FAILURE);
                r = mpf_lock_paths(&paths[i], 1, deadline, &one, &k);
                if (r < 0 || k == 0) /* an error, or a node that is gone */
                        continue;
                r = say(sock, MSG_LOCKED, (int)i, one[0]);
                /* ours would keep the lock after the helper let go of it */
                (void)close(one[0]);
                if (r < 0)
                        _exit(EXIT_FAILURE);
        }
        _exit(say(sock, MSG_DONE, r, -EBADF) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

/* Wait (until `until`) for the worker's end of the socket to close: it exited. Whatever it still
 * sends is dropped (descriptors too). */
static bool wait_gone(int sock, usec_t until)
{
        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int ms = deadline_poll_ms(until, now_monotonic());

                if (ms == 0)
                        return false;
                if (poll(&p, 1, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        return false;
                }
                if (p.revents & POLLIN) {
                        struct msg m;
                        int fd;
                        ssize_t k = fd_receive(sock, &m, sizeof(m), &fd);

                        safe_close(fd);
                        if (k == 0 || k == -ECONNRESET)
                                return true;
                        continue;
                }
                if (p.revents & (POLLHUP | POLLERR))
                        return true;
        }
}

/* Abandon the worker: kill it and close our end, so that it dies as soon as it can. Returns its
 * pid if it is still there after PATHLOCK_EXIT_WAIT_USEC (stuck in the kernel), else 0. */
static pid_t abandon(pid_t pid, int sock)
{
        (void)kill(pid, SIGKILL);
        if (!wait_gone(sock, usec_add(now_monotonic(), PATHLOCK_EXIT_WAIT_USEC)))
                return pid; /* a zombie later, reaped by whoever waits for any child, or init */
        (void)waitpid(pid, NULL, 0);
        return 0;
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        free(fds);
}

int mpf_pathlock_take(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n,
                      struct mpf_stuck *ret_stuck)
{
        _cleanup_(closep) int sock = -EBADF;
        int *fds = NULL;
        size_t n_fds = 0;
        int opening = -1, r;
        pid_t pid;

        *ret_stuck = (struct mpf_stuck){};
        if (deadline_passed(deadline, now_monotonic()))
                return -ETIMEDOUT;
        fds = calloc(n ? n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        if (n == 0) {
                /* no path device left: nothing to lock, no worker */
                *ret_fds = fds;
                *ret_n = 0;
                return 0;
        }
        pid = fork_with_socket(FORK_NULL_STDIO | FORK_CLOSE_FDS | FORK_RESET_SIGNALS, &sock);
        if (pid < 0) {
                free(fds);
                return (int)pid;
        }
        if (pid == 0)
                worker(sock, paths, n, deadline);

        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int ms = deadline_poll_ms(deadline, now_monotonic()), fd;
                struct msg m;
                ssize_t k;

                if (ms == 0) {
                        close_fds(fds, n_fds);
                        ret_stuck->pid = abandon(pid, sock);
                        if (ret_stuck->pid > 0)
                                (void)snprintf(ret_stuck->in, sizeof(ret_stuck->in), "opening %s",
                                               opening >= 0 && (size_t)opening < n ? paths[opening]
                                                                                   : "a path device");
                        return -ETIMEDOUT;
                }
                if (poll(&p, 1, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }
                if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                k = fd_receive(sock, &m, sizeof(m), &fd);
                if (k == -EAGAIN)
                        continue;
                if (k != sizeof(m) || (m.kind == MSG_LOCKED) != (fd >= 0) || m.value >= (int)n) {
                        /* it went away (killed by someone), or could not hand a lock over */
                        safe_close(fd);
                        r = k < 0 ? (int)k : fd == -EMFILE ? -EMFILE : -EINTR;
                        break;
                }
                if (m.kind == MSG_OPENING) {
                        opening = m.value;
                        continue;
                }
                if (m.kind == MSG_LOCKED) {
                        if (n_fds >= n) {
                                safe_close(fd);
                                r = -EBADMSG;
                                break;
                        }
                        fds[n_fds++] = fd;
                        continue;
                }
                r = m.value;
                if (r >= 0) {
                        /* it exits by itself at once */
                        if (wait_gone(sock, usec_add(now_monotonic(), PATHLOCK_EXIT_WAIT_USEC)))
                                (void)waitpid(pid, NULL, 0);
                        else
                                (void)kill(pid, SIGKILL);
                        *ret_fds = fds;
                        *ret_n = n_fds;
                        return 0;
                }
                break;
        }
        close_fds(fds, n_fds);
        (void)abandon(pid, sock);
        return r;
}
