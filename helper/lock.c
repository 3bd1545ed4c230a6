/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "log.h"
#include "lock.h"
#include "macro.h"

const char *mpf_rundir(void)
{
        const char *e = getenv(MPF_RUNDIR_ENV);
        return e && *e ? e : MPF_RUNDIR_DEFAULT;
}

static void alarm_handler(int sig)
{
        /* nothing: only there to interrupt flock() with EINTR */
}

static struct timeval usec_to_timeval(usec_t u)
{
        return (struct timeval){.tv_sec = (time_t)(u / USEC_PER_SEC),
                                .tv_usec = (suseconds_t)(u % USEC_PER_SEC)};
}

int flock_until(int fd, int op, usec_t deadline)
{
        struct sigaction sa = {.sa_handler = alarm_handler}, old_sa;
        struct itimerval it = {}, old_it;
        sigset_t mask, old_mask;
        int r;

        if (flock(fd, op | LOCK_NB) >= 0)
                return 0;
        if (errno != EWOULDBLOCK)
                return negative_errno();

        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: flock() must return EINTR */
        if (sigaction(SIGALRM, &sa, &old_sa) < 0)
                return negative_errno();
        sigemptyset(&mask);
        sigaddset(&mask, SIGALRM);
        (void)sigprocmask(SIG_UNBLOCK, &mask, &old_mask);

        for (;;) {
                usec_t left = deadline_left(deadline, now_monotonic());

                if (left == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                it.it_value = usec_to_timeval(left);
                it.it_interval = usec_to_timeval(LOCK_TIMER_REARM_USEC);
                if (setitimer(ITIMER_REAL, &it, &old_it) < 0) {
                        r = negative_errno();
                        break;
                }
                r = flock(fd, op) < 0 ? -errno : 0;
                it = (struct itimerval){};
                (void)setitimer(ITIMER_REAL, &it, NULL);
                if (r != -EINTR)
                        break;
        }

        (void)sigprocmask(SIG_SETMASK, &old_mask, NULL);
        (void)sigaction(SIGALRM, &old_sa, NULL);
        return r;
}

int mpf_lock_map(const char *rundir, const char *uuid, bool try_only, usec_t deadline, int *ret_fd)
{
        _cleanup_(freep) char *dir = NULL, *path = NULL;
        _cleanup_(closep) int fd = -EBADF;
        int r;

        if (!uuid || !*uuid || strchr(uuid, '/') || strcmp(uuid, ".") == 0 || strcmp(uuid, "..") == 0)
                return -EINVAL;
        if (mkdir(rundir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (asprintf_safe(&dir, "%s/lock", rundir) < 0 || asprintf_safe(&path, "%s/%s", dir, uuid) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        if (try_only)
                r = flock(fd, LOCK_EX | LOCK_NB) < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : 0;
        else
                r = flock_until(fd, LOCK_EX, deadline);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        free(fds);
}

int mpf_lock_paths(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n)
{
        int *fds;
        size_t k = 0;
        int r = 0;

        fds = calloc(n ? n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct backoff b;
                int fd;

                fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                if (fd < 0) {
                        if (errno == ENOENT || errno == ENXIO || errno == ENODEV) {
                                log_debug("Path device %s is gone, not locking it", paths[i]);
                                continue;
                        }
                        r = negative_errno();
                        break;
                }
                fds[k++] = fd;
                backoff_init(&b, PATH_LOCK_BACKOFF_FIRST_USEC, PATH_LOCK_BACKOFF_MAX_USEC);
                for (;;) {
                        usec_t now, d;

                        if (flock(fd, LOCK_EX | LOCK_NB) >= 0) {
                                r = 0;
                                break;
                        }
                        if (errno != EWOULDBLOCK) {
                                r = negative_errno();
                                break;
                        }
                        now = now_monotonic();
                        d = backoff_step(&b, deadline, now);
                        if (d == 0) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        log_debug("Path device %s is locked by someone else, trying again in %llu us",
                                  paths[i], (unsigned long long)d);
                        sleep_until(now + d);
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                close_all(fds, k);
                return r;
        }
        *ret_fds = fds;
        *ret_n = k;
        return 0;
}

void mpf_lock_release(struct mpf_lock *l)
{
        if (!l)
                return;
        /* paths first, the map lock last: the reverse of taking them */
        close_all(l->path_fds, l->n_path_fds);
        l->path_fds = NULL;
        l->n_path_fds = 0;
        /* explicitly: a copy of the fd (the guardian's) must not keep it locked */
        if (l->map_fd >= 0)
                (void)flock(l->map_fd, LOCK_UN);
        l->map_fd = safe_close(l->map_fd);
}
