/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include "lock.h"
#include "log.h"
#include "macro.h"
#include "pathlock.h"
#include "syncer.h"

/* A request: MPF_PATHLOCK_REQUEST, the deadline (usec_t), the number of paths (uint32_t), then
 * each node's path with its NUL, nothing after the last. The count lets the worker tell a request
 * cut short from a whole one. */
#define REQUEST_COUNT_OFFSET (1 + sizeof(usec_t))
#define REQUEST_PATHS_OFFSET (REQUEST_COUNT_OFFSET + sizeof(uint32_t))

/* The answers to a request, in the order of its paths: MSG_LOCKED or MSG_GONE for each, until the
 * first MSG_FAILED (the paths after it are not opened); then MSG_RELEASED, once, as the last
 * answer. The worker closes its copy of each descriptor right after sending it, so MSG_RELEASED
 * means the locks are ours alone (a flock lives as long as any descriptor of its open file, so a
 * copy closed late would hold it past our unlock). */
enum {
        MSG_LOCKED,   /* the locked descriptor comes with it */
        MSG_GONE,     /* the node no longer exists: skipped */
        MSG_FAILED,   /* value: the negative errno of the open or the lock (-EBADMSG: not a request) */
        MSG_RELEASED, /* the last answer: the worker holds no descriptor of these paths */
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

/* A request checked whole before anything is opened: 0 with the deadline, the first path and
 * the number of paths, each right after the NUL of the one before; or -EBADMSG. A request for no
 * path is malformed too: the helper never sends one, and a count of 0 leaves bytes unread. */
static int parse_request(const char *q, size_t len, usec_t *ret_deadline, const char **ret_first,
                         size_t *ret_n)
{
        size_t off = REQUEST_PATHS_OFFSET;
        uint32_t n;

        if (len <= REQUEST_PATHS_OFFSET || len > MPF_PATHLOCK_REQUEST_MAX || q[0] != MPF_PATHLOCK_REQUEST)
                return -EBADMSG;
        memcpy(&n, q + REQUEST_COUNT_OFFSET, sizeof(n));
        for (uint32_t i = 0; i < n; i++) {
                const char *end = off < len ? memchr(q + off, 0, len - off) : NULL;

                if (!end || end == q + off)
                        return -EBADMSG;
                off = (size_t)(end - q) + 1;
        }
        if (off != len)
                return -EBADMSG;
        memcpy(ret_deadline, q + 1, sizeof(*ret_deadline));
        *ret_first = q + REQUEST_PATHS_OFFSET;
        *ret_n = n;
        return 0;
}

/* One path: 0 with *ret_fd locked, 0 with *ret_fd -EBADF when the node is gone, or the error of
 * the open or the lock. */
static int lock_one(const char *p, usec_t deadline, int *ret_fd)
{
        _cleanup_(freep) int *one = NULL;
        char *path[1] = {(char *)p};
        size_t k = 0;
        int r;

        r = mpf_lock_paths(path, 1, deadline, &one, &k);
        if (r < 0)
                return r;
        *ret_fd = k > 0 ? one[0] : -EBADF;
        return 0;
}

int mpf_pathlock_serve(int sock, const void *req, size_t len)
{
        const char *p = NULL;
        usec_t deadline;
        size_t n = 0;
        int r;

        r = parse_request(req, len, &deadline, &p, &n);
        if (r < 0)
                r = say(sock, MSG_FAILED, r, -EBADF);
        for (size_t i = 0; r >= 0 && i < n; i++, p += strlen(p) + 1) {
                int fd = -EBADF;

                r = lock_one(p, deadline, &fd);
                if (r < 0) {
                        /* the rest are not opened: the helper lets go of what it has */
                        r = say(sock, MSG_FAILED, r, -EBADF);
                        break;
                }
                if (fd < 0) {
                        r = say(sock, MSG_GONE, 0, -EBADF);
                        continue;
                }
                r = say(sock, MSG_LOCKED, 0, fd);
                /* ours would keep the lock after the helper let go of it */
                (void)close(fd);
        }
        return r < 0 ? r : say(sock, MSG_RELEASED, 0, -EBADF);
}

/* paths[first..) as one request in q, as many as fit: *ret_len, and the index after its last path.
 * The caller made sure that each path fits alone. */
static size_t build_request(char *const *paths, size_t first, size_t n, usec_t deadline, char *q,
                            size_t *ret_len)
{
        size_t off = REQUEST_PATHS_OFFSET, i;
        uint32_t count;

        for (i = first; i < n && i - first < UINT32_MAX; i++) {
                size_t l = strlen(paths[i]) + 1;

                if (off + l > MPF_PATHLOCK_REQUEST_MAX)
                        break;
                memcpy(q + off, paths[i], l);
                off += l;
        }
        count = (uint32_t)(i - first);
        q[0] = MPF_PATHLOCK_REQUEST;
        memcpy(q + 1, &deadline, sizeof(deadline));
        memcpy(q + REQUEST_COUNT_OFFSET, &count, sizeof(count));
        *ret_len = off;
        return i;
}

/* One answer, until the deadline: 0 with *ret_msg (and *ret_fd), -ETIMEDOUT, or -EINTR when the
 * worker went away or said something that is not an answer. */
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

/* The answers to the request for paths[first..end), in order, until its MSG_RELEASED: 0 with the
 * locks appended to fds and *ret_failed the error it answered (0 if none); or -ETIMEDOUT, -EMFILE,
 * -EINTR when it did not answer as asked. *at follows the path it is busy with. */
static int receive_answers(int sock, size_t first, size_t end, usec_t deadline, int *fds, size_t *n_fds,
                           size_t *at, int *ret_failed)
{
        size_t i = first;
        int failed = 0;

        for (;;) {
                struct msg m;
                int fd = -EBADF, r;

                /* past the last path it is closing its copy of the last one */
                *at = i < end ? i : end - 1;
                r = receive_answer(sock, deadline, &m, &fd);
                if (r < 0)
                        return r;
                if (m.kind == MSG_RELEASED) {
                        if (failed == 0 && i < end)
                                return -EINTR; /* paths it did not answer for */
                        *ret_failed = failed;
                        return 0;
                }
                if (failed < 0 || i == end) {
                        safe_close(fd);
                        return -EINTR; /* more answers than paths */
                }
                if (m.kind == MSG_FAILED)
                        failed = m.value < 0 ? m.value : -EIO;
                else {
                        if (m.kind == MSG_LOCKED)
                                fds[(*n_fds)++] = fd;
                        i++;
                }
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
        char q[MPF_PATHLOCK_REQUEST_MAX];
        int *fds;
        size_t n_fds = 0;
        int r = 0;

        *ret_answered = true;
        *ret_at = 0;
        /* a path that fits no request: nothing is sent, the worker stays idle */
        for (size_t i = 0; i < n; i++)
                if (REQUEST_PATHS_OFFSET + strlen(paths[i]) + 1 > sizeof(q))
                        return -ENAMETOOLONG;
        fds = calloc(n ? n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        /* As few requests as the paths fit in, each sent when the one before is answered in full:
         * after an error the rest are not opened. */
        for (size_t first = 0, end; first < n; first = end) {
                size_t len;
                int failed = 0;

                end = build_request(paths, first, n, deadline, q, &len);
                *ret_at = first;
                r = fd_send(sock, q, len, -EBADF);
                if (r >= 0)
                        r = receive_answers(sock, first, end, deadline, fds, &n_fds, ret_at, &failed);
                if (r < 0) {
                        /* not answered as asked (-EMFILE: we could not take an fd): what it still
                         * sends would be read as the next request's answer, so the worker is
                         * abandoned */
                        *ret_answered = false;
                        break;
                }
                if (failed < 0) {
                        r = failed;
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
