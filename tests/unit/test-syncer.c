/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bounded write-back worker, on ordinary files and pipes (no device-mapper needed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "syncer.h"
#include "syncer-internal.h"
#include "tests.h"

static int temp_file(char *p)
{
        int fd = mkstemp(p);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        return fd;
}

START_TEST(test_fsync_file)
{
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);

        ck_assert_int_eq(mpf_fsync_bounded(fd, now_monotonic() + 5 * USEC_PER_SEC), 0);
        close(fd);
        unlink(p);
}
END_TEST

START_TEST(test_fsync_error_passed_up)
{
        int pipefd[2];

        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        /* fsync on a pipe fails with EINVAL in the worker; the caller gets it */
        ck_assert_int_eq(mpf_fsync_bounded(pipefd[0], now_monotonic() + 5 * USEC_PER_SEC), -EINVAL);
        close(pipefd[0]);
        close(pipefd[1]);
}
END_TEST

START_TEST(test_fsync_deadline_passed)
{
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        usec_t t = now_monotonic();

        ck_assert_int_eq(mpf_fsync_bounded(fd, t), -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic(), t + USEC_PER_SEC);
        close(fd);
        unlink(p);
}
END_TEST

/* One worker for all maps of a run: --all forks once. Errors do not cost the worker. */
START_TEST(test_one_worker_serves_many)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p), pipefd[2];
        pid_t pid;

        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_pid(s), 0); /* started lazily */
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(mpf_syncer_sync(s, pipefd[0], now_monotonic() + 5 * USEC_PER_SEC, NULL), -EINVAL);
        for (int i = 0; i < 10; i++)
                ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(mpf_syncer_pid(s), pid);
        s = mpf_syncer_free(s);
        /* freed: the idle worker exited and was reaped */
        ck_assert_int_eq(kill(pid, 0), -1);
        ck_assert_int_eq(errno, ESRCH);
        close(fd);
        close(pipefd[0]);
        close(pipefd[1]);
        unlink(p);
}
END_TEST

/* The process exits: mpf_syncer_leave() does not wait for the idle worker (stopped here:
 * mpf_syncer_free() would wait for good); it ends by itself once it runs. */
START_TEST(test_leave_does_not_wait)
{
        struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p), st;
        usec_t t;
        pid_t pid;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(mpf_syncer_close(s, false, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        t = now_monotonic();
        s = mpf_syncer_leave(s);
        ck_assert_uint_lt(now_monotonic(), t + USEC_PER_SEC);
        ck_assert_int_eq(kill(pid, 0), 0);
        ck_assert_int_eq(kill(pid, SIGCONT), 0);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(fd);
        unlink(p);
}
END_TEST

/* Freeing waits for an idle worker's exit a moment only: a worker that does not exit at its EOF
 * (here: stopped) is left behind, not waited for without bound. */
START_TEST(test_free_bounded)
{
        struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p), st;
        usec_t t;
        pid_t pid;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(mpf_syncer_close(s, false, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
        t = now_monotonic();
        s = mpf_syncer_free(s);
        ck_assert_uint_lt(now_monotonic(), t + SYNCER_EXIT_WAIT_USEC + 500 * USEC_PER_MSEC);
        ck_assert_int_eq(kill(pid, 0), 0); /* left behind */
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        close(fd);
        unlink(p);
}
END_TEST

/* A worker that does not answer by the deadline (here: stopped) is killed and replaced. */
START_TEST(test_missed_deadline_replaces_worker)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        usec_t t;
        pid_t pid, r, stuck = -1;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_syncer_sync(s, fd, t + 200 * USEC_PER_MSEC, &stuck), -ETIMEDOUT);
        /* SIGKILL ends a stopped process at once: it is not reported as stuck */
        ck_assert_int_eq(stuck, 0);
        ck_assert_uint_ge(now_monotonic(), t + 200 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert_int_eq(mpf_syncer_pid(s), 0);
        /* it was killed (SIGKILL ends a stopped process), perhaps reaped already */
        r = waitpid(pid, NULL, 0);
        ck_assert(r == pid || (r < 0 && errno == ECHILD));
        ck_assert_int_eq(kill(pid, 0), -1);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_gt(mpf_syncer_pid(s), 0);
        ck_assert_int_ne(mpf_syncer_pid(s), pid);
        close(fd);
        unlink(p);
}
END_TEST

/* A worker killed by someone else while idle is replaced on the next sync. */
START_TEST(test_killed_worker_replaced)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        pid_t pid;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_ne(mpf_syncer_pid(s), pid);
        close(fd);
        unlink(p);
}
END_TEST

/* Open fds above stdio in process pid. */
static int count_fds(pid_t pid)
{
        char dir[64];
        struct dirent *de;
        DIR *d;
        int n = 0;

        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && atoi(de->d_name) > 2)
                        n++;
        closedir(d);
        return n;
}

/* The worker holds /dev/null as stdio, its socket, and its own open of what it synced (not our fd:
 * opened again, so that it shares no O_EXCL claim): none of the fds we had open when it started
 * (locks, the map). */
START_TEST(test_worker_holds_nothing_of_ours)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX", dir[64];
        int fd = temp_file(p), lockfd = open("/dev/null", O_RDONLY | O_CLOEXEC), n = 0;
        DIR *d;
        struct dirent *de;

        ck_assert_int_ge(lockfd, 0);
        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)mpf_syncer_pid(s));
        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                int k;

                if (de->d_name[0] == '.')
                        continue;
                k = atoi(de->d_name);
                if (k > 2)
                        n++;
        }
        closedir(d);
        ck_assert_int_eq(n, 2); /* its socket, and its own open of the file it synced */
        /* and not our stdin, stdout, stderr: a caller reading our output to EOF must not wait for it */
        for (int k = 0; k < 3; k++) {
                char link[128], target[64] = "";

                snprintf(link, sizeof(link), "%s/%d", dir, k);
                ck_assert_int_gt(readlink(link, target, sizeof(target) - 1), 0);
                ck_assert_str_eq(target, "/dev/null");
        }
        close(lockfd);
        close(fd);
        unlink(p);
}
END_TEST

/* After its write-back the worker keeps its own open of the file until told to close it: then our
 * close is never the last. Closing with write_back syncs it first and passes the error up. */
START_TEST(test_worker_holds_until_closed)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        pid_t pid, stuck = -1;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert(!mpf_syncer_holding(s));
        ck_assert_int_eq(mpf_syncer_close(s, true, now_monotonic() + 5 * USEC_PER_SEC, &stuck), 0);
        ck_assert_int_eq(mpf_syncer_pid(s), 0); /* nothing held: no worker started for it */
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert(mpf_syncer_holding(s));
        ck_assert_int_eq(count_fds(pid), 2);
        close(fd); /* ours goes: the worker's open is the last */
        ck_assert_int_eq(mpf_syncer_close(s, true, now_monotonic() + 5 * USEC_PER_SEC, &stuck), 0);
        ck_assert_int_eq(stuck, 0);
        ck_assert(!mpf_syncer_holding(s));
        ck_assert_int_eq(count_fds(pid), 1);
        ck_assert_int_eq(mpf_syncer_pid(s), pid); /* the same worker serves the next map */
        unlink(p);
}
END_TEST

/* A worker that does not close by the deadline is killed and named if it does not die; one that
 * was killed by someone is reported (-EINTR): its open went with it, unseen. */
START_TEST(test_close_bounded)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        pid_t pid, stuck = -1;
        usec_t t;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_syncer_close(s, true, t + 200 * USEC_PER_MSEC, &stuck), -ETIMEDOUT);
        ck_assert_int_eq(stuck, 0); /* SIGKILL ends a stopped process at once */
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert(!mpf_syncer_holding(s));
        ck_assert_int_eq(mpf_syncer_pid(s), 0);

        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        ck_assert_int_eq(mpf_syncer_close(s, false, now_monotonic() + 5 * USEC_PER_SEC, &stuck), -EINTR);
        ck_assert(!mpf_syncer_holding(s));
        close(fd);
        unlink(p);
}
END_TEST

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        free(fds);
}

/* One worker for a run's maps: it locks a map's paths (and keeps no descriptor of them: its copy
 * of each is closed before it answers, or our unlock would not let go), writes the map back, and
 * locks the next map's paths. One that misses a lock step's deadline (a path held by someone else)
 * is discarded; the next map's lock step starts a new one, and nothing stays locked. */
START_TEST(test_lock_paths_across_maps)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX",
             m[] = "/tmp/mpf-test-fsync-XXXXXX";
        char *paths[] = {a, b, NULL};
        int fa = temp_file(a), fb = temp_file(b), fm = temp_file(m), other, *fds = NULL;
        struct mpf_stuck stuck;
        size_t n = 0;
        pid_t pid, pid2;
        usec_t t;

        close(fa);
        close(fb);
        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        /* map 1: lock, write back, release */
        ck_assert_int_eq(
                mpf_syncer_lock_paths(s, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck), 0);
        ck_assert_uint_eq(n, 2);
        pid = mpf_syncer_pid(s);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(count_fds(pid), 1); /* its socket: no path */
        ck_assert_int_eq(mpf_syncer_sync(s, fm, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(mpf_syncer_pid(s), pid);
        ck_assert(!flock_free(a) && !flock_free(b));
        close_all(fds, n);
        fds = NULL;
        ck_assert(flock_free(a) && flock_free(b));
        ck_assert_int_eq(mpf_syncer_close(s, true, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(count_fds(pid), 1);

        /* map 2: b is held by someone else until the deadline */
        other = open(b, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_syncer_lock_paths(s, paths, 2, t + 200 * USEC_PER_MSEC, &fds, &n, &stuck),
                         -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert_int_eq(stuck.pid, 0); /* it was waiting, not stuck */
        ck_assert(flock_free(a));       /* what it had handed over went */
        /* it answered at the deadline (idle, kept, holding no path) or was discarded */
        ck_assert(mpf_syncer_pid(s) == 0 || (mpf_syncer_pid(s) == pid && count_fds(pid) == 1));
        close(other);

        /* map 3: the worker does not answer by the deadline (stopped): discarded */
        ck_assert_int_eq(
                mpf_syncer_lock_paths(s, paths, 1, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck), 0);
        close_all(fds, n);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_syncer_lock_paths(s, paths, 2, t + 200 * USEC_PER_MSEC, &fds, &n, &stuck),
                         -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert_int_eq(stuck.pid, 0); /* SIGKILL ends a stopped process at once */
        ck_assert_int_eq(mpf_syncer_pid(s), 0);
        ck_assert_int_eq(kill(pid, 0), -1); /* killed and reaped */
        ck_assert(flock_free(a) && flock_free(b));

        /* map 4: a new worker */
        ck_assert_int_eq(
                mpf_syncer_lock_paths(s, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck), 0);
        pid2 = mpf_syncer_pid(s);
        ck_assert_int_gt(pid2, 0);
        ck_assert_int_ne(pid2, pid);
        ck_assert_int_eq(count_fds(pid2), 1);
        ck_assert(!flock_free(a) && !flock_free(b));
        close_all(fds, n);
        ck_assert(flock_free(a) && flock_free(b));
        close(fm);
        unlink(a);
        unlink(b);
        unlink(m);
}
END_TEST

/* A map's paths in one request to the run's worker: an error on the 2nd of 3 comes back, the 1st
 * (handed over already) is let go, and the worker, which answered in full, stays and holds
 * nothing of them; it serves the next map as usual. */
START_TEST(test_lock_paths_error_keeps_worker)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        char a[] = "/tmp/mpf-test-pl-XXXXXX", c[] = "/tmp/mpf-test-pl-XXXXXX", bad[64];
        char *paths[] = {a, bad, c, NULL};
        int fa = temp_file(a), fc = temp_file(c), *fds = NULL;
        struct mpf_stuck stuck;
        size_t n = 0;
        pid_t pid;

        close(fa);
        close(fc);
        snprintf(bad, sizeof(bad), "%s/x", a); /* a is no directory */
        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(
                mpf_syncer_lock_paths(s, paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck),
                -ENOTDIR);
        ck_assert_int_eq(stuck.pid, 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(count_fds(pid), 1); /* its socket: no path */
        ck_assert(flock_free(a) && flock_free(c));
        paths[1] = c;
        ck_assert_int_eq(
                mpf_syncer_lock_paths(s, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(mpf_syncer_pid(s), pid);
        ck_assert_int_eq(count_fds(pid), 1);
        ck_assert(!flock_free(a) && !flock_free(c));
        close_all(fds, n);
        ck_assert(flock_free(a) && flock_free(c));
        unlink(a);
        unlink(c);
}
END_TEST

/* The helper is killed (SIGKILL) while its worker waits for a path lock that someone else holds:
 * the worker goes with it, at once. It must not live on until the deadline with the path device
 * open, to take the lock for no one the moment it is free (and a killed run's workers must all be
 * gone within a moment, E6). */
START_TEST(test_worker_dies_with_the_helper)
{
        char b[] = "/tmp/mpf-test-pl-XXXXXX", m[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fb = temp_file(b), fm = temp_file(m), pipefd[2], other, st;
        pid_t helper, w = 0, r = 0;
        usec_t t;

        close(fb);
        other = open(b, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        /* its worker is reparented to us when the helper dies: we can see it end */
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        helper = fork();
        ck_assert_int_ge(helper, 0);
        if (helper == 0) {
                struct mpf_syncer *s = NULL;
                char *paths[] = {b, NULL};
                struct mpf_stuck stuck;
                int *fds = NULL;
                size_t n = 0;
                pid_t pid;

                if (mpf_syncer_new(&s) < 0 ||
                    mpf_syncer_sync(s, fm, now_monotonic() + 5 * USEC_PER_SEC, NULL) < 0)
                        _exit(1);
                pid = mpf_syncer_pid(s);
                if (write(pipefd[1], &pid, sizeof(pid)) != sizeof(pid))
                        _exit(1);
                (void)mpf_syncer_lock_paths(s, paths, 1, now_monotonic() + 20 * USEC_PER_SEC, &fds, &n,
                                            &stuck);
                _exit(0);
        }
        close(pipefd[1]);
        ck_assert_int_eq(read(pipefd[0], &w, sizeof(w)), sizeof(w));
        close(pipefd[0]);
        ck_assert_int_gt(w, 0);
        usleep(300 * 1000); /* it waits for the lock now */
        ck_assert_int_eq(kill(w, 0), 0);
        ck_assert_int_eq(kill(helper, SIGKILL), 0);
        ck_assert_int_eq(waitpid(helper, NULL, 0), helper);
        t = now_monotonic();
        while (now_monotonic() < t + 2 * USEC_PER_SEC && (r = waitpid(w, &st, WNOHANG)) == 0)
                usleep(10 * 1000);
        if (r == 0) {
                (void)kill(w, SIGKILL);
                (void)waitpid(w, NULL, 0);
        }
        ck_assert_int_eq(r, w); /* gone within 2 s, not at the deadline 20 s on */
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
        close(other);
        close(fm);
        unlink(b);
        unlink(m);
}
END_TEST

/* The signals a terminal, timeout(1) or a unit's stop send to the whole process group or cgroup
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP...) are held back by the run; they must not end or
 * stop its write-back worker either, or the flush fails (or waits for the deadline) in the middle
 * of a run that rides them out. */
START_TEST(test_worker_survives_group_signals)
{
        _cleanup_(mpf_syncer_freep) struct mpf_syncer *s = NULL;
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p);
        pid_t pid, stuck = -1;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                ck_assert_int_eq(kill(pid, sigs[i]), 0);
        (void)usleep(100 * 1000);
        close(fd);
        ck_assert_int_eq(mpf_syncer_close(s, true, now_monotonic() + USEC_PER_SEC, &stuck), 0);
        ck_assert_int_eq(stuck, 0);
        ck_assert_int_eq(mpf_syncer_pid(s), pid);
        unlink(p);
}
END_TEST

/* A process forked while the worker ran (a pool worker) drops its copy of the worker's socket
 * (else the worker would not see its EOF while that process lives) and leaves the worker alone:
 * the parent's free ends and reaps it. */
START_TEST(test_forked_drops_worker_socket)
{
        struct mpf_syncer *s = NULL;
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = temp_file(p), go[2], st;
        pid_t pid, child;
        char c;

        ck_assert_int_eq(mpf_syncer_new(&s), 0);
        ck_assert_int_eq(mpf_syncer_sync(s, fd, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        ck_assert_int_eq(mpf_syncer_close(s, false, now_monotonic() + 5 * USEC_PER_SEC, NULL), 0);
        pid = mpf_syncer_pid(s);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                int before;

                close(go[1]);
                before = count_fds(getpid());
                s = mpf_syncer_forked(s);
                if (count_fds(getpid()) != before - 1)
                        _exit(1);
                (void)read(go[0], &c, 1); /* lives until the parent is done */
                _exit(0);
        }
        close(go[0]);
        s = mpf_syncer_free(s);
        ck_assert_int_eq(kill(pid, 0), -1); /* exited and reaped */
        ck_assert_int_eq(errno, ESRCH);
        close(go[1]);
        ck_assert_int_eq(waitpid(child, &st, 0), child);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        close(fd);
        unlink(p);
}
END_TEST

/* The worker's answer is one int and nothing else: two ints, one byte (a path lock's message has
 * another length), an int with a descriptor, an int whose descriptor could not be installed, or the
 * worker's end closing are a desync (-EINTR: the caller discards the worker), not a status. Here
 * the test is the worker, on the other end of a socket pair like the real one's. */
START_TEST(test_receive_status_one_int_alone)
{
        int pair[2], status = -1, two[2] = {0, 0}, st, lowest;
        struct rlimit rl;
        usec_t soon = now_monotonic() + 5 * USEC_PER_SEC;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);

        /* an answer */
        st = 5;
        ck_assert_int_eq(send(pair[1], &st, sizeof(st), 0), (ssize_t)sizeof(st));
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), 0);
        ck_assert_int_eq(status, 5);

        /* nothing: the deadline */
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], now_monotonic() + 20 * USEC_PER_MSEC, &status),
                         -ETIMEDOUT);

        /* two ints: not an answer, whatever the first one says */
        ck_assert_int_eq(send(pair[1], two, sizeof(two), 0), (ssize_t)sizeof(two));
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), -EINTR);

        /* one byte */
        ck_assert_int_eq(send(pair[1], "L", 1, 0), 1);
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), -EINTR);

        /* one int with a descriptor: not an answer, and the descriptor is not kept */
        st = 0;
        lowest = fcntl(pair[0], F_DUPFD_CLOEXEC, 0);
        ck_assert_int_ge(lowest, 0);
        close(lowest);
        ck_assert_int_eq(fd_send(pair[1], &st, sizeof(st), pair[1]), 0);
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), -EINTR);
        ck_assert_int_eq(fcntl(lowest, F_GETFD), -1); /* closed again */
        ck_assert_int_eq(errno, EBADF);

        /* one int whose descriptor we have no room for (the kernel drops it, MSG_CTRUNC) */
        ck_assert_int_eq(fd_send(pair[1], &st, sizeof(st), pair[1]), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE,
                                   &(struct rlimit){.rlim_cur = (rlim_t)lowest, .rlim_max = rl.rlim_max}),
                         0);
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), -EINTR);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

        /* the worker's end closed */
        close(pair[1]);
        ck_assert_int_eq(mpf_syncer_receive_status(pair[0], soon, &status), -EINTR);
        ck_assert_int_eq(status, 5); /* untouched by anything that was not an answer */
        close(pair[0]);
}
END_TEST

static Suite *syncer_suite(void)
{
        Suite *s = suite_create("syncer");
        TCase *tc = tcase_create("syncer");

        tcase_add_test(tc, test_free_bounded);
        tcase_add_test(tc, test_forked_drops_worker_socket);
        tcase_add_test(tc, test_fsync_file);
        tcase_add_test(tc, test_fsync_error_passed_up);
        tcase_add_test(tc, test_fsync_deadline_passed);
        tcase_add_test(tc, test_one_worker_serves_many);
        tcase_add_test(tc, test_leave_does_not_wait);
        tcase_add_test(tc, test_missed_deadline_replaces_worker);
        tcase_add_test(tc, test_killed_worker_replaced);
        tcase_add_test(tc, test_worker_holds_nothing_of_ours);
        tcase_add_test(tc, test_worker_holds_until_closed);
        tcase_add_test(tc, test_close_bounded);
        tcase_add_test(tc, test_worker_survives_group_signals);
        tcase_add_test(tc, test_lock_paths_across_maps);
        tcase_add_test(tc, test_lock_paths_error_keeps_worker);
        tcase_add_test(tc, test_worker_dies_with_the_helper);
        tcase_add_test(tc, test_receive_status_one_int_alone);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(syncer_suite)
