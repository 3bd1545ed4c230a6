/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The path lock worker, on ordinary files (no SCSI disk needed; the lab shows the open that waits
 * out error recovery, E7). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "pathlock.h"
#include "tests.h"

static void temp_file(char *p)
{
        int fd = mkstemp(p);

        ck_assert_int_ge(fd, 0);
        close(fd);
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        free(fds);
}

/* No child of ours is left: the worker exited and was reaped. */
static void assert_no_child(void)
{
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
}

/* The worker locks each path (a missing one is skipped) and hands the locks over: we hold them,
 * with descriptors of our own, and no process is left; closing ours lets go. */
START_TEST(test_take_hands_locks_over)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX", link[64], target[64] = "";
        char *paths[] = {a, (char *)"/tmp/mpf-test-pl-none", b, NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;
        ssize_t k;

        temp_file(a);
        temp_file(b);
        ck_assert_int_eq(mpf_pathlock_take(paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck),
                         0);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert_uint_eq(n, 2);
        assert_no_child();
        ck_assert(!flock_free(a));
        ck_assert(!flock_free(b));
        /* in order, and really ours */
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[0]);
        k = readlink(link, target, sizeof(target) - 1);
        ck_assert_int_gt(k, 0);
        target[k] = 0;
        ck_assert_str_eq(target, a);
        ck_assert_int_ge(fcntl(fds[1], F_GETFD), 0);
        ck_assert(fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
        close_fds(fds, n);
        ck_assert(flock_free(a));
        ck_assert(flock_free(b));
        unlink(a);
        unlink(b);
}
END_TEST

/* A path locked by someone else (multipathd creating the map) until the deadline: -ETIMEDOUT, the
 * worker killed (it was waiting, not stuck, so not named), nothing left locked, not even the path
 * it had locked and handed over already. */
START_TEST(test_timeout_when_held)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, b, NULL};
        struct mpf_stuck stuck;
        _cleanup_(closep) int other = -EBADF;
        int *fds = NULL;
        size_t n = 0;
        usec_t t;

        temp_file(a);
        temp_file(b);
        other = open(b, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_pathlock_take(paths, 2, t + 200 * USEC_PER_MSEC, &fds, &n, &stuck), -ETIMEDOUT);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert_uint_ge(now_monotonic(), t + 200 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert(flock_free(a));
        assert_no_child();
        unlink(a);
        unlink(b);
}
END_TEST

/* A deadline already past: no worker at all. */
START_TEST(test_deadline_passed)
{
        char *paths[] = {(char *)"/dev/null", NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;

        ck_assert_int_eq(mpf_pathlock_take(paths, 1, now_monotonic() - 1, &fds, &n, &stuck), -ETIMEDOUT);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
}
END_TEST

/* An open that fails (not a missing node) is passed up; what was locked before is let go. */
START_TEST(test_open_error)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, (char *)"/proc/self/mem/x", NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;

        temp_file(a);
        ck_assert_int_eq(mpf_pathlock_take(paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck),
                         -ENOTDIR);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert(flock_free(a));
        assert_no_child();
        unlink(a);
}
END_TEST

/* No path device: nothing to lock, and no worker. */
START_TEST(test_no_paths)
{
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 1;

        ck_assert_int_eq(mpf_pathlock_take(NULL, 0, now_monotonic() + USEC_PER_SEC, &fds, &n, &stuck), 0);
        ck_assert_uint_eq(n, 0);
        free(fds);
}
END_TEST

static Suite *pathlock_suite(void)
{
        Suite *s = suite_create("pathlock");
        TCase *tc = tcase_create("pathlock");

        tcase_add_test(tc, test_take_hands_locks_over);
        tcase_add_test(tc, test_timeout_when_held);
        tcase_add_test(tc, test_deadline_passed);
        tcase_add_test(tc, test_open_error);
        tcase_add_test(tc, test_no_paths);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(pathlock_suite)
