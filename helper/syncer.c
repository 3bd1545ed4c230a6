/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "log.h"
#include "macro.h"
#include "syncer.h"

/* The worker's answer: 0; an errno (< 128) when dirty data could not be written back;
 * FLUSH_ONLY_FAILED | errno when all data was written back but the device cache flush failed. */
#define FLUSH_ONLY_FAILED 128

struct mpf_syncer {
        pid_t pid; /* 0: no worker */
        int sock;  /* our end of the worker's socket pair */
};

static int errno_status(int e)
{
        return e > 0 && e < FLUSH_ONLY_FAILED ? e : EIO;
}

static int sync_one(int fd)
{
        /* Write back and wait for the dirty pages: an error here is data that did not reach the paths. */
        if (sync_file_range(fd, 0, 0,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                    SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
                if (errno != EINVAL && errno != ESPIPE && errno != ENOSYS)
                        return errno_status(errno);
                /* not supported here: fsync alone decides */
                return fsync(fd) < 0 ? errno_status(errno) : 0;
        }
        /* Then fsync: writes back what was dirtied meanwhile and flushes the device's write cache.
         * A failure now, with the write-back clean, is the cache flush (e.g. a map without any
         * usable path fails the empty flush request). */
        if (fsync(fd) < 0)
                return FLUSH_ONLY_FAILED | errno_status(errno);
        return 0;
}

/* One fd from the socket: >= 0; -ECONNRESET when the other end is gone. */
static int receive_fd(int sock)
{
        char byte;
        ssize_t n;
        int fd;

        n = fd_receive(sock, &byte, 1, &fd);
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ECONNRESET;
        if (fd < 0)
                return -EBADMSG;
        return fd;
}

static int send_fd(int sock, int fd)
{
        return fd_send(sock, "S", 1, fd);
}

_Noreturn static void worker(int sock)
{
        for (;;) {
                int fd = receive_fd(sock), status;

                if (fd < 0)
                        _exit(fd == -ECONNRESET ? EXIT_SUCCESS : EXIT_FAILURE);
                status = sync_one(fd);
                (void)close(fd);
                if (send(sock, &status, sizeof(status), MSG_NOSIGNAL) != sizeof(status))
                        _exit(EXIT_FAILURE);
        }
}

static int spawn(struct mpf_syncer *s)
{
        int pair[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                (void)close(pair[0]);
                (void)close(pair[1]);
                return r;
        }
        if (pid == 0) {
                int null;

                /* The worker may hang in D state for good: it must not keep copies of our lock
                 * fds (a flock lives as long as any copy of its open file description), nor our
                 * caller's stdin, stdout and stderr (a caller reading our output until EOF, as
                 * $(mpath-flush ...) does, would wait for it). */
                null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
                for (int i = 0; i < 3; i++)
                        if (null < 0 || dup2(null, i) < 0)
                                (void)close(i);
                close_all_but(pair[1]);
                worker(pair[1]);
        }
        (void)close(pair[1]);
        s->pid = pid;
        s->sock = pair[0];
        return 0;
}

/* Kill the worker and forget it. A worker that is not stuck dies at once, and its end of the
 * socket closes with it; one in uninterruptible sleep (an fsync waiting for I/O) dies only when the
 * I/O ends, if ever: then it is left behind. Returns its pid if it did not die within
 * SYNCER_EXIT_WAIT_USEC, else 0. */
static pid_t discard(struct mpf_syncer *s)
{
        usec_t until = usec_add(now_monotonic(), SYNCER_EXIT_WAIT_USEC);
        pid_t stuck = 0;

        if (s->pid <= 0)
                return 0;
        (void)kill(s->pid, SIGKILL);
        for (;;) {
                struct pollfd p = {.fd = s->sock, .events = POLLIN};
                int ms = deadline_poll_ms(until, now_monotonic());

                if (ms == 0) {
                        stuck = s->pid;
                        break;
                }
                if (poll(&p, 1, ms) < 0 && errno != EINTR)
                        break;
                if (p.revents & (POLLHUP | POLLERR))
                        break; /* its end is closed: it is gone (or going) */
                if (p.revents & POLLIN) {
                        int status;
                        /* a late answer: drop it and look again */
                        (void)recv(s->sock, &status, sizeof(status), MSG_DONTWAIT);
                }
        }
        (void)waitpid(s->pid, NULL, WNOHANG);
        s->sock = safe_close(s->sock);
        s->pid = 0;
        return stuck;
}

/* A descriptor of the same block device that is not the caller's: opened again through
 * /proc/self/fd, it shares neither the caller's O_EXCL claim (the claim belongs to the open file
 * and ends when that file is released, which a worker stuck with a copy would prevent) nor its
 * file position. Any descriptor of the device writes back its page cache and flushes its cache. */
static int reopen_plain(int fd)
{
        char p[64];
        int r;

        (void)snprintf(p, sizeof(p), "/proc/self/fd/%i", fd);
        r = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        return r < 0 ? negative_errno() : r;
}

int mpf_syncer_new(struct mpf_syncer **ret)
{
        struct mpf_syncer *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->sock = -EBADF;
        *ret = s;
        return 0;
}

struct mpf_syncer *mpf_syncer_free(struct mpf_syncer *s)
{
        if (!s)
                return NULL;
        if (s->pid > 0) {
                /* idle (a busy worker is always discarded): it exits when its socket closes */
                s->sock = safe_close(s->sock);
                (void)waitpid(s->pid, NULL, 0);
        }
        free(s);
        return NULL;
}

pid_t mpf_syncer_pid(const struct mpf_syncer *s)
{
        return s->pid;
}

/* The worker's answer, or -ETIMEDOUT, or -EINTR if it died. */
static int receive_status(struct mpf_syncer *s, usec_t deadline, int *ret_status)
{
        for (;;) {
                struct pollfd p = {.fd = s->sock, .events = POLLIN};
                int ms = deadline_poll_ms(deadline, now_monotonic());
                ssize_t n;
                int k;

                if (ms == 0)
                        return -ETIMEDOUT;
                k = poll(&p, 1, ms);
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (k <= 0)
                        continue;
                n = recv(s->sock, ret_status, sizeof(*ret_status), MSG_DONTWAIT);
                if (n == sizeof(*ret_status))
                        return 0;
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                return -EINTR; /* the worker went away: killed by someone */
        }
}

int mpf_syncer_sync(struct mpf_syncer *s, int fd, usec_t deadline, pid_t *ret_stuck)
{
        _cleanup_(closep) int plain = -EBADF;
        int status = 0, r;

        if (ret_stuck)
                *ret_stuck = 0;
        if (deadline_passed(deadline, now_monotonic()))
                return -ETIMEDOUT;
        plain = reopen_plain(fd);
        if (plain < 0) {
                /* no /proc: the worker gets our descriptor, and with it, if it is left behind, our
                 * claim */
                log_debug_errno(plain,
                                "Cannot open the device again through /proc (%m), passing our descriptor");
                plain = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (plain < 0)
                        return negative_errno();
        }
        for (int attempt = 0;; attempt++) {
                if (s->pid <= 0) {
                        r = spawn(s);
                        if (r < 0)
                                return r;
                }
                r = send_fd(s->sock, plain);
                if (r >= 0)
                        break;
                /* a worker that died while idle (killed by someone): one new one */
                (void)discard(s);
                if (attempt > 0 || (r != -EPIPE && r != -ECONNRESET && r != -ECONNREFUSED))
                        return r;
        }
        /* the worker has its copy; ours would keep the device open for nothing */
        plain = safe_close(plain);
        r = receive_status(s, deadline, &status);
        if (r < 0) {
                /* fsync on a map without paths can hang for good: leave the worker behind */
                pid_t stuck = discard(s);

                if (stuck > 0)
                        log_debug("Write-back worker %i did not die when killed: stuck in the kernel, left "
                                  "behind",
                                  (int)stuck);
                if (ret_stuck)
                        *ret_stuck = stuck;
                return r;
        }
        if (status & FLUSH_ONLY_FAILED) {
                log_debug_errno(status & ~FLUSH_ONLY_FAILED, "Device cache flush failed: %m");
                return 1;
        }
        return -status;
}

int mpf_fsync_bounded(int fd, usec_t deadline)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        int r;

        r = mpf_syncer_new(&s);
        if (r < 0)
                return r;
        return mpf_syncer_sync(s, fd, deadline, NULL);
}
