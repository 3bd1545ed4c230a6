/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "pathlock.h"
#include "syncer.h"
#include "syncer-internal.h"

/* The worker's answer: 0; an errno (< 128) when dirty data could not be written back;
 * FLUSH_ONLY_FAILED | errno when all data was written back but the device cache flush failed. */
#define FLUSH_ONLY_FAILED 128

/* What the worker is asked to do; each is answered with a status. */
#define MSG_SYNC 'S'       /* sync the descriptor that comes with it (or the one it holds); keep it */
#define MSG_WRITE_BACK 'W' /* sync the one it holds, then close it */
#define MSG_CLOSE 'C'      /* close the one it holds */

struct mpf_syncer {
        pid_t pid;    /* 0: no worker */
        int sock;     /* our end of the worker's socket pair */
        bool holding; /* the worker holds a descriptor of a map open */
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

/* The worker keeps the descriptor it synced open until told to close it (MSG_CLOSE, or
 * MSG_WRITE_BACK: sync it again first, then close it), or until its socket closes. Its close is then
 * the map's last one, which writes back what others dirtied meanwhile: here, not in the caller. */
_Noreturn static void worker(int sock)
{
        int held = -EBADF;

        for (;;) {
                char req[MPF_PATHLOCK_REQUEST_MAX], kind;
                int fd = -EBADF, status = 0;
                ssize_t n = fd_receive(sock, req, sizeof(req), &fd);

                if (n <= 0) {
                        safe_close(held);
                        _exit(n == 0 || n == -ECONNRESET ? EXIT_SUCCESS : EXIT_FAILURE);
                }
                kind = req[0];
                if (kind == MPF_PATHLOCK_REQUEST) {
                        /* a map's path locks: answered in pathlock.c's terms, one answer a
                         * path as it is locked and a last one once its copies are closed */
                        safe_close(fd);
                        if (mpf_pathlock_serve(sock, req, (size_t)n) < 0)
                                _exit(EXIT_FAILURE);
                        continue;
                }
                if (fd >= 0) {
                        safe_close(held); /* one it still held (its release failed): not ours to keep */
                        held = fd;
                }
                switch (kind) {
                case MSG_SYNC:
                        status = held >= 0 ? sync_one(held) : EBADF;
                        break;
                case MSG_WRITE_BACK:
                        status = held >= 0 ? sync_one(held) : 0;
                        held = safe_close(held);
                        break;
                case MSG_CLOSE:
                default:
                        held = safe_close(held);
                        break;
                }
                if (send(sock, &status, sizeof(status), MSG_NOSIGNAL) != sizeof(status))
                        _exit(EXIT_FAILURE);
        }
}

static int spawn(struct mpf_syncer *s)
{
        int sock;
        pid_t pid, parent = getpid();

        /* The worker may hang in D state for good: it must not keep copies of our lock fds (a flock
         * lives as long as any copy of its open file description), nor our caller's stdin, stdout
         * and stderr (a caller reading our output until EOF, as $(mpath-flush ...) does, would wait
         * for it). */
        pid = fork_with_socket(FORK_NULL_STDIO | FORK_CLOSE_FDS | FORK_RESET_SIGNALS, &sock);
        if (pid < 0)
                return (int)pid;
        if (pid == 0) {
                /* Killed with the helper (SIGKILL included): the end of the socket is seen only
                 * between requests, and a path lock it waits for (until the deadline, with the
                 * path device open) would be taken for no one. What it holds goes as it dies: its
                 * open of the map is closed then (the last close writes back, as at EOF), and a call
                 * in uninterruptible sleep ends first. */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
                worker(sock);
        }
        s->pid = pid;
        s->sock = sock;
        return 0;
}

/* Wait until `until` for the worker's end of the socket to close (it exited, or is exiting): true
 * if it did. A late answer meanwhile is dropped. */
static bool wait_hangup(int sock, usec_t until)
{
        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int ms = deadline_poll_ms(until, now_monotonic());

                if (ms == 0)
                        return false;
                if (poll(&p, 1, ms) < 0 && errno != EINTR)
                        return false; /* cannot tell: not waited for (a stuck one would block waitpid) */
                if (p.revents & (POLLHUP | POLLERR))
                        return true;
                if (p.revents & POLLIN) {
                        int status;
                        /* a late answer: drop it and look again */
                        (void)recv(sock, &status, sizeof(status), MSG_DONTWAIT);
                }
        }
}

/* Reap a worker that was told to go (killed, or sent its EOF). One whose end of the socket closed
 * (gone) is exiting: it is waited for up to SYNCER_EXIT_WAIT_USEC, as the map it holds may close
 * after it, and that last close writes back. One whose end did not close (stopped, or stuck in the
 * kernel) is tried once, never waited for. True if it was reaped. */
static bool reap_bounded(pid_t pid, bool gone)
{
        if (gone)
                return waitpid_until(pid, NULL, usec_add(now_monotonic(), SYNCER_EXIT_WAIT_USEC)) >= 0;
        return waitpid(pid, NULL, WNOHANG) == pid;
}

/* Kill the worker and forget it. A worker that is not stuck dies at once, and its end of the
 * socket closes with it; one in uninterruptible sleep (an fsync waiting for I/O) dies only when the
 * I/O ends, if ever: then it is left behind. Returns its pid if it did not die within
 * SYNCER_EXIT_WAIT_USEC, else 0. */
static pid_t discard(struct mpf_syncer *s)
{
        pid_t stuck = 0;
        bool gone;

        if (s->pid <= 0)
                return 0;
        (void)kill(s->pid, SIGKILL);
        gone = wait_hangup(s->sock, usec_add(now_monotonic(), SYNCER_EXIT_WAIT_USEC));
        /* reaped within the same bound, or left behind: a stuck one is a zombie later, reaped by
         * whoever waits for any child, or init */
        if (!reap_bounded(s->pid, gone))
                stuck = s->pid;
        s->sock = safe_close(s->sock);
        s->pid = 0;
        s->holding = false;
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

static struct mpf_syncer *end(struct mpf_syncer *s, bool reap)
{
        if (!s)
                return NULL;
        if (s->pid > 0) {
                /* Idle (a busy worker is always discarded), it exits when its socket closes; if it
                 * still holds a map open, that close may be the map's last and write back for long:
                 * it is waited for a moment only, then left to finish on its own. */
                if (s->holding)
                        (void)mpf_syncer_close(s, false, usec_add(now_monotonic(), SYNCER_EXIT_WAIT_USEC),
                                               NULL);
                /* Idle: our half-close is its EOF, and it exits. To reap it, one that does not
                 * within SYNCER_EXIT_WAIT_USEC (stopped, or stuck in the kernel) is left behind, not
                 * waited for; one whose end closed is exiting, and reaped. */
                if (s->pid > 0) {
                        bool gone = false;

                        if (reap) {
                                (void)shutdown(s->sock, SHUT_WR);
                                gone = wait_hangup(s->sock,
                                                   usec_add(now_monotonic(), SYNCER_EXIT_WAIT_USEC));
                        }
                        s->sock = safe_close(s->sock);
                        if (reap)
                                (void)reap_bounded(s->pid, gone);
                }
        }
        free(s);
        return NULL;
}

struct mpf_syncer *mpf_syncer_free(struct mpf_syncer *s)
{
        return end(s, true);
}

struct mpf_syncer *mpf_syncer_leave(struct mpf_syncer *s)
{
        return end(s, false);
}

struct mpf_syncer *mpf_syncer_forked(struct mpf_syncer *s)
{
        if (!s)
                return NULL;
        /* not our child: nothing is sent to it and it is not waited for; our copy of its socket
         * goes, so that it sees its EOF when its parent closes its end */
        safe_close(s->sock);
        free(s);
        return NULL;
}

pid_t mpf_syncer_pid(const struct mpf_syncer *s)
{
        return s->pid;
}

/* The worker's answer, or -ETIMEDOUT, or -EINTR if it died or said something that is not an
 * answer (a status comes alone, as one int: anything else, such as a path lock's message, means
 * the two ends no longer agree on what answers what, and the worker is discarded). */
int mpf_syncer_receive_status(int sock, usec_t deadline, int *ret_status)
{
        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int ms = deadline_poll_ms(deadline, now_monotonic()), fd;
                char buf[2 * sizeof(int)];
                ssize_t n;
                int k;

                if (ms == 0)
                        return -ETIMEDOUT;
                k = poll(&p, 1, ms);
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (k <= 0)
                        continue;
                n = fd_receive(sock, buf, sizeof(buf), &fd);
                if (n == -EAGAIN)
                        continue;
                if (fd >= 0 || fd == -EMFILE || n != sizeof(*ret_status)) {
                        safe_close(fd);
                        return -EINTR;
                }
                memcpy(ret_status, buf, sizeof(*ret_status));
                return 0;
        }
}

/* Send one request (with fd, if >= 0), starting a worker if none runs (a worker that died while
 * idle is replaced once), and wait for its answer until the deadline. A worker that misses it is
 * discarded, and *ret_stuck is its pid if it did not die. */
static int request(struct mpf_syncer *s, char kind, int fd, usec_t deadline, pid_t *ret_stuck)
{
        int status = 0, r;

        for (int attempt = 0;; attempt++) {
                if (s->pid <= 0) {
                        r = spawn(s);
                        if (r < 0)
                                return r;
                }
                r = fd_send(s->sock, &kind, 1, fd);
                if (r >= 0)
                        break;
                /* a worker that died while idle (killed by someone): one new one; what it held
                 * went with it, unseen */
                (void)discard(s);
                if (kind != MSG_SYNC)
                        return -EINTR;
                if (attempt > 0 || (r != -EPIPE && r != -ECONNRESET && r != -ECONNREFUSED))
                        return r;
        }
        r = mpf_syncer_receive_status(s->sock, deadline, &status);
        if (r < 0) {
                /* fsync (or the last close) on a map without paths can hang for good: leave the
                 * worker behind */
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

int mpf_syncer_sync(struct mpf_syncer *s, int fd, usec_t deadline, pid_t *ret_stuck)
{
        _cleanup_(closep) int plain = -EBADF;
        int r;

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
        r = request(s, MSG_SYNC, plain, deadline, ret_stuck);
        /* whatever it answered, it holds the descriptor now (unless it was discarded) */
        s->holding = s->pid > 0;
        return r;
}

bool mpf_syncer_holding(const struct mpf_syncer *s)
{
        return s && s->holding;
}

int mpf_syncer_close(struct mpf_syncer *s, bool write_back, usec_t until, pid_t *ret_stuck)
{
        int r;

        if (ret_stuck)
                *ret_stuck = 0;
        if (!s || s->pid <= 0)
                return 0;
        /* Asked whenever it runs, not only when our bookkeeping says it holds an open: an open of
         * the map left to the bookkeeping would make its remove meet EBUSY until the deadline
         * (the lab once read such a stall as `holding` being false after a sync; a review of every
         * write to it found no way, see the README's issue 11 notes). A worker that holds none
         * answers at once. */
        if (!s->holding)
                log_debug("Write-back worker %i: closing whatever it holds", (int)s->pid);
        r = request(s, write_back ? MSG_WRITE_BACK : MSG_CLOSE, -EBADF, until, ret_stuck);
        s->holding = false;
        return r;
}

int mpf_syncer_lock_paths(struct mpf_syncer *s, char *const *paths, size_t n, usec_t deadline, int **ret_fds,
                          size_t *ret_n, struct mpf_stuck *ret_stuck)
{
        bool answered;
        size_t at;
        int r;

        *ret_stuck = (struct mpf_stuck){};
        if (deadline_passed(deadline, now_monotonic()))
                return -ETIMEDOUT;
        if (n == 0) {
                /* no path device left: nothing to lock, no worker */
                *ret_fds = calloc(1, sizeof(int));
                if (!*ret_fds)
                        return -ENOMEM;
                *ret_n = 0;
                return 0;
        }
        for (int attempt = 0;; attempt++) {
                pid_t stuck;

                if (s->pid <= 0) {
                        r = spawn(s);
                        if (r < 0)
                                return r;
                }
                r = mpf_pathlock_request(s->sock, paths, n, deadline, ret_fds, ret_n, &answered, &at);
                if (r >= 0 || answered)
                        return r;
                /* Abandon it: killed, with our end closed, it dies as soon as its open returns. */
                stuck = discard(s);
                if (stuck > 0) {
                        ret_stuck->pid = stuck;
                        (void)snprintf(ret_stuck->in, sizeof(ret_stuck->in), "opening %s", paths[at]);
                        return r;
                }
                /* a worker that died while idle (killed by someone): one new one */
                if (attempt > 0 || at > 0 || (r != -EPIPE && r != -ECONNRESET && r != -ECONNREFUSED))
                        return r;
        }
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
