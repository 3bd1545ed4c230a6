/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guardian as a process: it holds nothing its caller waits on, and it keeps a map lock
 * handed to it after the helper is gone, until it has looked at the map. (What it undoes is
 * tested with the fakes in test-flush.c.) */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guardian.h"
#include "lock.h"
#include "macro.h"
#include "tests.h"

static bool fd_is_null(pid_t pid, int fd)
{
        char p[64], target[PATH_MAX] = {};

        snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int)pid, fd);
        return readlink(p, target, sizeof(target) - 1) > 0 && strcmp(target, "/dev/null") == 0;
}

START_TEST(test_holds_nothing_of_the_caller)
{
        struct mpf_guardian *g = NULL;
        char p[64];
        int pipefd[2], saved, n = 0;
        struct dirent *de;
        DIR *d;
        pid_t pid;

        /* the caller reads our stdout through a pipe */
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        saved = dup(STDOUT_FILENO);
        ck_assert_int_eq(dup2(pipefd[1], STDOUT_FILENO), STDOUT_FILENO);
        ck_assert_int_eq(mpf_guardian_start(false, &g), 0);
        ck_assert_int_eq(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
        close(saved);
        close(pipefd[1]);
        pid = mpf_guardian_pid(g);
        ck_assert_int_gt(pid, 0);

        for (int i = 0; i < 200 && !(fd_is_null(pid, 0) && fd_is_null(pid, 1) && fd_is_null(pid, 2)); i++)
                usleep(10000);
        ck_assert(fd_is_null(pid, 0) && fd_is_null(pid, 1) && fd_is_null(pid, 2));
        ck_assert_int_eq(getsid(pid), pid); /* its own session: no terminal signal reaches it */
        /* the caller's pipe reads EOF although the guardian runs */
        {
                char c;
                ck_assert_int_eq(read(pipefd[0], &c, 1), 0);
        }
        close(pipefd[0]);
        /* no fd but stdio, its socket to us, and its own udev/dm handles */
        snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
        d = opendir(p);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        ck_assert_int_le(n, 6);
        /* SIGTERM is ignored: only the end of its socket ends it */
        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        usleep(50000);
        ck_assert_int_eq(kill(pid, 0), 0);
        g = mpf_guardian_free(g); /* reaps it */
        ck_assert_int_eq(kill(pid, 0), -1);
}
END_TEST

/* The helper takes a map lock, hands it to the guardian and dies: the lock stays held (the guardian
 * is stopped meanwhile, so it cannot have let go yet) until the guardian has looked at the map. */
START_TEST(test_keeps_the_lock_until_it_looked)
{
        char dir[] = "/tmp/mpf-guard-XXXXXX";
        _cleanup_(freep) char *path = NULL;
        int pfd[2], lock, st;
        pid_t helper, gpid = 0;
        usec_t t;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, dir, 1), 0);
        ck_assert_int_ge(asprintf(&path, "%s/lock/mpath-x", dir), 0);
        ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
        helper = fork();
        ck_assert_int_ge(helper, 0);
        if (helper == 0) {
                struct mpf_guardian *g = NULL;
                int fd = -EBADF;

                if (mpf_guardian_start(false, &g) < 0 ||
                    mpf_lock_map(dir, "mpath-x", false, now_monotonic() + USEC_PER_SEC, &fd) < 0 ||
                    mpf_guardian_watch(g, "mpath-x", fd) < 0)
                        _exit(1);
                gpid = mpf_guardian_pid(g);
                usleep(100000); /* let it take the fd */
                (void)kill(gpid, SIGSTOP);
                if (write(pfd[1], &gpid, sizeof(gpid)) != sizeof(gpid))
                        _exit(1);
                _exit(0); /* killed, in effect: no unlock, no goodbye */
        }
        close(pfd[1]);
        ck_assert_int_eq(read(pfd[0], &gpid, sizeof(gpid)), (ssize_t)sizeof(gpid));
        close(pfd[0]);
        ck_assert_int_eq(waitpid(helper, &st, 0), helper);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

        lock = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(lock, 0);
        ck_assert_int_eq(flock(lock, LOCK_EX | LOCK_NB), -1); /* the helper is gone, its lock is not */
        ck_assert_int_eq(kill(gpid, SIGCONT), 0);
        t = now_monotonic();
        while (flock(lock, LOCK_EX | LOCK_NB) < 0 && now_monotonic() < t + 5 * USEC_PER_SEC)
                usleep(10000);
        ck_assert_int_eq(flock(lock, LOCK_EX | LOCK_NB), 0); /* it looked (no record), let go, exited */
        for (int i = 0; i < 500 && kill(gpid, 0) == 0; i++)
                usleep(10000);
        ck_assert_int_eq(kill(gpid, 0), -1);
        close(lock);
        (void)unlink(path);
        *strrchr(path, '/') = 0;
        (void)rmdir(path);
        (void)rmdir(dir);
}
END_TEST

#define NAP_USEC (300 * USEC_PER_MSEC)

/* a map put back: it takes a while; odd ones find the lock another flusher's (0) */
static int nap(size_t i, void *u)
{
        usleep(NAP_USEC);
        return i % 2 == 0;
}

static void count_started(size_t i, void *u)
{
        (*(size_t *)u)++;
}

/* The maps are put back at the same time, not one after the other, and no more at once than the
 * bound. */
START_TEST(test_fan_out_at_once)
{
        size_t started = 0;
        usec_t t;
        int r;

        t = now_monotonic();
        r = mpf_guardian_fan_out(8, MPF_GUARDIAN_PUT_BACK_MAX, nap, count_started, &started);
        t = now_monotonic() - t;
        ck_assert_int_eq(r, 4);
        ck_assert_uint_eq(started, 8);
        ck_assert_uint_ge(t, NAP_USEC);
        ck_assert_uint_lt(t, 3 * NAP_USEC); /* one after the other: 8 naps */

        started = 0;
        t = now_monotonic();
        r = mpf_guardian_fan_out(8, 2, nap, count_started, &started);
        t = now_monotonic() - t;
        ck_assert_int_eq(r, 4);
        ck_assert_uint_eq(started, 8);
        ck_assert_uint_ge(t, 4 * NAP_USEC); /* two at a time: four rounds */

        ck_assert_int_eq(mpf_guardian_fan_out(0, 4, nap, NULL, NULL), 0);
        ck_assert_int_eq(mpf_guardian_fan_out(1, 0, nap, NULL, NULL), -EINVAL);
}
END_TEST

/* Several maps in flight when the helper dies: the guardian lets go of every lock, each once it
 * looked at its map. */
START_TEST(test_several_maps)
{
        char dir[] = "/tmp/mpf-guard-XXXXXX";
        static const char *const maps[] = {"mpath-a", "mpath-b", "mpath-c", "mpath-d"};
        int fds[ELEMENTSOF(maps)];
        pid_t helper;
        usec_t t;
        int st;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, dir, 1), 0);
        helper = fork();
        ck_assert_int_ge(helper, 0);
        if (helper == 0) {
                struct mpf_guardian *g = NULL;

                if (mpf_guardian_start(false, &g) < 0)
                        _exit(1);
                for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                        int fd = -EBADF;

                        if (mpf_lock_map(dir, maps[i], false, now_monotonic() + USEC_PER_SEC, &fd) < 0 ||
                            mpf_guardian_watch(g, maps[i], fd) < 0)
                                _exit(1);
                }
                _exit(0); /* killed, in effect */
        }
        ck_assert_int_eq(waitpid(helper, &st, 0), helper);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                _cleanup_(freep) char *path = NULL;

                ck_assert_int_ge(asprintf(&path, "%s/lock/%s", dir, maps[i]), 0);
                fds[i] = open(path, O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(fds[i], 0);
        }
        t = now_monotonic();
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                while (flock(fds[i], LOCK_EX | LOCK_NB) < 0 && now_monotonic() < t + 5 * USEC_PER_SEC)
                        usleep(10000);
                ck_assert_int_eq(flock(fds[i], LOCK_EX | LOCK_NB), 0);
                close(fds[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                _cleanup_(freep) char *path = NULL;

                ck_assert_int_ge(asprintf(&path, "%s/lock/%s", dir, maps[i]), 0);
                (void)unlink(path);
        }
        {
                _cleanup_(freep) char *path = NULL;

                ck_assert_int_ge(asprintf(&path, "%s/lock", dir), 0);
                (void)rmdir(path);
        }
        (void)rmdir(dir);
}
END_TEST

/* A worker of the run dies (killed, out of memory) while the run goes on: the guardian looks at
 * its map at once, not when the run ends. */
START_TEST(test_worker_dies_run_goes_on)
{
        char dir[] = "/tmp/mpf-guard-XXXXXX";
        _cleanup_(freep) char *path = NULL;
        int ready[2], go[2], lock, st;
        pid_t helper;
        usec_t t;
        char c = 0;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, dir, 1), 0);
        ck_assert_int_ge(asprintf(&path, "%s/lock/mpath-w", dir), 0);
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        helper = fork();
        ck_assert_int_ge(helper, 0);
        if (helper == 0) {
                struct mpf_guardian *g = NULL;
                pid_t worker;

                close(ready[0]);
                close(go[1]);
                if (mpf_guardian_start(false, &g) < 0)
                        _exit(1);
                worker = fork();
                if (worker == 0) {
                        int fd = -EBADF;

                        if (mpf_guardian_forked(g) < 0 ||
                            mpf_lock_map(dir, "mpath-w", false, now_monotonic() + USEC_PER_SEC, &fd) < 0 ||
                            mpf_guardian_watch(g, "mpath-w", fd) < 0)
                                _exit(1);
                        _exit(0); /* killed, in effect, with the map lock held */
                }
                if (worker < 0 || waitpid(worker, &st, 0) != worker || !WIFEXITED(st) ||
                    WEXITSTATUS(st) != 0)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1)
                        _exit(1);
                (void)read(go[0], &c, 1); /* the run goes on until the test is done */
                g = mpf_guardian_free(g);
                _exit(0);
        }
        close(ready[1]);
        close(go[0]);
        ck_assert_int_eq(read(ready[0], &c, 1), 1);
        lock = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(lock, 0);
        t = now_monotonic();
        while (flock(lock, LOCK_EX | LOCK_NB) < 0 && now_monotonic() < t + 3 * USEC_PER_SEC)
                usleep(10000);
        /* the guardian looked (no record) and let go while the run still runs */
        ck_assert_int_eq(flock(lock, LOCK_EX | LOCK_NB), 0);
        ck_assert_int_eq(kill(helper, 0), 0);
        ck_assert_int_eq(write(go[1], "g", 1), 1);
        ck_assert_int_eq(waitpid(helper, &st, 0), helper);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(lock);
        close(ready[0]);
        close(go[1]);
        (void)unlink(path);
        *strrchr(path, '/') = 0;
        (void)rmdir(path);
        (void)rmdir(dir);
}
END_TEST

/* The run ends with every map it watched forgotten: mpf_guardian_leave() does not wait for the
 * guardian (stopped here: mpf_guardian_free() would wait for good), which exits by itself once it
 * runs. With a map still watched it waits, as mpf_guardian_free() does, until the guardian has
 * looked at the map and exited. */
START_TEST(test_leave_waits_only_with_a_map)
{
        char dir[] = "/tmp/mpf-guard-XXXXXX";
        _cleanup_(freep) char *path = NULL;
        struct mpf_guardian *g = NULL;
        int fd = -EBADF, lock, st;
        pid_t gpid;
        usec_t t;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, dir, 1), 0);
        ck_assert_int_ge(asprintf(&path, "%s/lock/mpath-x", dir), 0);

        /* forgotten: not waited for */
        ck_assert_int_eq(mpf_guardian_start(false, &g), 0);
        ck_assert(mpf_guardian_idle(g));
        ck_assert_int_eq(mpf_lock_map(dir, "mpath-x", false, now_monotonic() + USEC_PER_SEC, &fd), 0);
        ck_assert_int_eq(mpf_guardian_watch(g, "mpath-x", fd), 0);
        ck_assert(!mpf_guardian_idle(g));
        ck_assert_int_eq(mpf_guardian_forget(g, "mpath-x"), 0);
        ck_assert(mpf_guardian_idle(g));
        gpid = mpf_guardian_pid(g);
        ck_assert_int_eq(kill(gpid, SIGSTOP), 0);
        t = now_monotonic();
        g = mpf_guardian_leave(g);
        ck_assert_uint_lt(now_monotonic(), t + USEC_PER_SEC);
        ck_assert_int_eq(kill(gpid, 0), 0); /* still there, stopped */
        fd = safe_close(fd);
        ck_assert_int_eq(kill(gpid, SIGCONT), 0);
        ck_assert_int_eq(waitpid(gpid, &st, 0), gpid); /* it ends by itself */
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

        /* still watched: waited for, until it looked at the map (no record) and let go */
        ck_assert_int_eq(mpf_guardian_start(false, &g), 0);
        ck_assert_int_eq(mpf_lock_map(dir, "mpath-x", false, now_monotonic() + USEC_PER_SEC, &fd), 0);
        ck_assert_int_eq(mpf_guardian_watch(g, "mpath-x", fd), 0);
        fd = safe_close(fd); /* its copy holds the lock now */
        gpid = mpf_guardian_pid(g);
        g = mpf_guardian_leave(g);
        ck_assert_int_eq(waitpid(gpid, NULL, WNOHANG), -1); /* reaped already */
        ck_assert_int_eq(errno, ECHILD);
        lock = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(lock, 0);
        ck_assert_int_eq(flock(lock, LOCK_EX | LOCK_NB), 0);
        close(lock);

        /* a forget that matches no watch: it may hold a map we do not know of */
        ck_assert_int_eq(mpf_guardian_start(false, &g), 0);
        ck_assert_int_eq(mpf_guardian_forget(g, "mpath-y"), 0);
        ck_assert(!mpf_guardian_idle(g));
        g = mpf_guardian_leave(g);

        (void)unlink(path);
        *strrchr(path, '/') = 0;
        (void)rmdir(path);
        (void)rmdir(dir);
        ck_assert_int_eq(unsetenv(MPF_RUNDIR_ENV), 0);
}
END_TEST

static Suite *guardian_suite(void)
{
        Suite *s = suite_create("guardian");
        TCase *tc = tcase_create("guardian");

        tcase_add_test(tc, test_holds_nothing_of_the_caller);
        tcase_add_test(tc, test_keeps_the_lock_until_it_looked);
        tcase_add_test(tc, test_fan_out_at_once);
        tcase_add_test(tc, test_several_maps);
        tcase_add_test(tc, test_worker_dies_run_goes_on);
        tcase_add_test(tc, test_leave_waits_only_with_a_map);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(guardian_suite)
