/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "lock.h"
#include "log.h"
#include "macro.h"
#include "pathlock.h"
#include "syncer.h"

/* A request: MPF_PATHLOCK_REQUEST, the deadline (usec_t), the node's path with its NUL. */
#define REQUEST_PATH_OFFSET (1 + sizeof(usec_t))

/* The answer to each request: one of MSG_LOCKED, MSG_GONE, MSG_FAILED. After MSG_LOCKED comes
 * MSG_RELEASED: the worker's copy of the descriptor is closed, the lock is ours alone (a flock
 * lives as long as any descriptor of its open file, so a copy closed late would hold it past our
 * unlock). */
enum {
        MSG_LOCKED,   /* the locked descriptor comes with it */
        MSG_GONE,     /* the node no longer exists: skipped */
        MSG_FAILED,   /* value: the negative errno of the open or the lock */
        MSG_RELEASED, /* after MSG_LOCKED: the worker closed its own copy */
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

int mpf_pathlock_serve(int sock, const void *req, size_t len)
{
        const char *q = req;
        _cleanup_(freep) int *one = NULL;
        char *path[1];
        usec_t deadline;
        size_t k = 0;
        int r;

        if (len <= REQUEST_PATH_OFFSET || len > MPF_PATHLOCK_REQUEST_MAX || q[0] != MPF_PATHLOCK_REQUEST ||
            q[len - 1] != 0)
                return say(sock, MSG_FAILED, -EBADMSG, -EBADF);
        memcpy(&deadline, q + 1, sizeof(deadline));
        path[0] = (char *)q + REQUEST_PATH_OFFSET;
        r = mpf_lock_paths(path, 1, deadline, &one, &k);
        if (r < 0)
                return say(sock, MSG_FAILED, r, -EBADF);
        if (k == 0)
                return say(sock, MSG_GONE, 0, -EBADF);
        r = say(sock, MSG_LOCKED, 0, one[0]);
        /* ours would keep the lock after the helper let go of it */
        (void)close(one[0]);
        return r < 0 ? r : say(sock, MSG_RELEASED, 0, -EBADF);
}

static int send_request(int sock, const char *path, usec_t deadline)
{
        char q[MPF_PATHLOCK_REQUEST_MAX];
        size_t l = strlen(path);

        if (REQUEST_PATH_OFFSET + l + 1 > sizeof(q))
                return -ENAMETOOLONG;
        q[0] = MPF_PATHLOCK_REQUEST;
        memcpy(q + 1, &deadline, sizeof(deadline));
        memcpy(q + REQUEST_PATH_OFFSET, path, l + 1);
        return fd_send(sock, q, REQUEST_PATH_OFFSET + l + 1, -EBADF);
}

/* The answer to one request, until the deadline: 0 with *ret_msg (and *ret_fd), -ETIMEDOUT, or
 * -EINTR when the worker went away or said something that is not an answer. */
static int receive_answer(int sock, usec_t deadline, struct msg *ret_msg, int *ret_fd)
{
        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int ms = deadline_poll_ms(deadline, now_monotonic()), fd;
                ssize_t k;

                if (ms == 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                k = fd_receive(sock, ret_msg, sizeof(*ret_msg), &fd);
                if (k == -EAGAIN)
                        continue;
                if (k == sizeof(*ret_msg) && fd == -EMFILE && ret_msg->kind == MSG_LOCKED)
                        return -EMFILE; /* it could not hand the lock over: we are out of fds */
                if (k != sizeof(*ret_msg) || (ret_msg->kind == MSG_LOCKED) != (fd >= 0) ||
                    ret_msg->kind < MSG_LOCKED || ret_msg->kind > MSG_RELEASED) {
                        safe_close(fd);
                        return k < 0 ? (int)k : -EINTR;
                }
                *ret_fd = fd;
                return 0;
        }
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        free(fds);
}

int mpf_pathlock_request(int sock, char *const *paths, size_t n, usec_t deadline, int **ret_fds,
                         size_t *ret_n, bool *ret_answered, size_t *ret_at)
{
        int *fds;
        size_t n_fds = 0;
        int r = 0;

        *ret_answered = true;
        *ret_at = 0;
        fds = calloc(n ? n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        /* one at a time: a path whose open sleeps is never sent on, and after an error the rest
         * are not opened */
        for (size_t i = 0; i < n; i++) {
                struct msg m;
                int fd = -EBADF;

                *ret_at = i;
                r = send_request(sock, paths[i], deadline);
                if (r == -ENAMETOOLONG)
                        break; /* not sent: the worker is idle */
                if (r >= 0)
                        r = receive_answer(sock, deadline, &m, &fd);
                if (r >= 0 && m.kind == MSG_LOCKED) {
                        struct msg released;
                        int none = -EBADF;

                        fds[n_fds++] = fd;
                        r = receive_answer(sock, deadline, &released, &none);
                        if (r >= 0 && released.kind != MSG_RELEASED) {
                                safe_close(none);
                                r = -EINTR;
                        }
                }
                if (r < 0) {
                        /* not answered as asked (-EMFILE: we could not take the fd): what it
                         * still sends would be read as the next request's answer, so the worker
                         * is abandoned */
                        *ret_answered = false;
                        break;
                }
                if (m.kind == MSG_FAILED) {
                        r = m.value < 0 ? m.value : -EIO;
                        break;
                }
        }
        if (r < 0) {
                close_fds(fds, n_fds);
                return r;
        }
        *ret_fds = fds;
        *ret_n = n_fds;
        return 0;
}

int mpf_pathlock_take(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n,
                      struct mpf_stuck *ret_stuck)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        int r;

        r = mpf_syncer_new(&s);
        if (r < 0)
                return r;
        return mpf_syncer_lock_paths(s, paths, n, deadline, ret_fds, ret_n, ret_stuck);
}
