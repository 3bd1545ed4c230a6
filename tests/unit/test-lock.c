/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "macro.h"
#include "tests.h"

static char rundir[] = "/tmp/mpf-test-lock-XXXXXX";

static void setup(void)
{
        ck_assert_ptr_nonnull(mkdtemp(rundir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void teardown(void)
{
        (void)nftw(rundir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int open_lockfile(const char *uuid)
{
        char p[256];
        snprintf(p, sizeof(p), "%s/lock/%s", rundir, uuid);
        return open(p, O_RDONLY | O_CLOEXEC);
}

START_TEST(test_map_lock_created)
{
        struct stat st;
        char p[256];
        int fd = -1, other;

        ck_assert_int_eq(mpf_lock_map(rundir, "mpath-3600a", false, now_monotonic() + USEC_PER_SEC, &fd), 0);
        snprintf(p, sizeof(p), "%s/lock", rundir);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        /* really held: another open file description cannot take it */
        other = open_lockfile("mpath-3600a");
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), -1);
        ck_assert_int_eq(errno, EWOULDBLOCK);
        close(fd);
        ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
        close(other);
        /* the file is never deleted */
        other = open_lockfile("mpath-3600a");
        ck_assert_int_ge(other, 0);
        close(other);
}
END_TEST

START_TEST(test_map_lock_timeout)
{
        int fd = -1, fd2 = -1;
        usec_t t;

        ck_assert_int_eq(mpf_lock_map(rundir, "mpath-3600b", false, now_monotonic() + USEC_PER_SEC, &fd), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_lock_map(rundir, "mpath-3600b", false, t + 100 * USEC_PER_MSEC, &fd2),
                         -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic(), t + 100 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 1 * USEC_PER_SEC);
        ck_assert_int_eq(fd2, -1);
        close(fd);
        ck_assert_int_eq(mpf_lock_map(rundir, "mpath-3600b", false, now_monotonic() + USEC_PER_SEC, &fd2),
                         0);
        close(fd2);
}
END_TEST

START_TEST(test_map_lock_waits_for_release)
{
        int fd = -1, fd2 = -1;
        pid_t pid;

        ck_assert_int_eq(mpf_lock_map(rundir, "mpath-3600c", false, now_monotonic() + USEC_PER_SEC, &fd), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                usleep(100 * 1000);
                _exit(0); /* our copy of fd goes, the lock with it (same open file description) */
        }
        close(fd);
        /* the child still holds the description; the lock is released when it exits */
        ck_assert_int_eq(
                mpf_lock_map(rundir, "mpath-3600c", false, now_monotonic() + 5 * USEC_PER_SEC, &fd2), 0);
        close(fd2);
}
END_TEST

START_TEST(test_bad_uuid)
{
        int fd = -1;

        ck_assert_int_eq(mpf_lock_map(rundir, "a/b", false, now_monotonic() + USEC_PER_SEC, &fd), -EINVAL);
        ck_assert_int_eq(mpf_lock_map(rundir, "..", false, now_monotonic() + USEC_PER_SEC, &fd), -EINVAL);
        ck_assert_int_eq(mpf_lock_map(rundir, "", false, now_monotonic() + USEC_PER_SEC, &fd), -EINVAL);
}
END_TEST

static void make_file(char *buf, size_t sz, const char *name)
{
        int fd;
        snprintf(buf, sz, "%s/%s", rundir, name);
        fd = open(buf, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
}

START_TEST(test_path_locks)
{
        char a[256], b[256], gone[256];
        char *paths[] = {a, gone, b, NULL};
        _cleanup_(freep) int *fds = NULL;
        size_t n = 0;
        int other;

        make_file(a, sizeof(a), "sda");
        make_file(b, sizeof(b), "sdb");
        snprintf(gone, sizeof(gone), "%s/sdz", rundir);
        ck_assert_int_eq(mpf_lock_paths(paths, 3, now_monotonic() + USEC_PER_SEC, &fds, &n), 0);
        ck_assert_uint_eq(n, 2); /* the vanished path is skipped */
        other = open(b, O_RDONLY | O_CLOEXEC);
        /* multipathd's LOCK_SH|LOCK_NB fails while we hold them */
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), -1);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        close(other);
}
END_TEST

START_TEST(test_path_lock_timeout)
{
        char a[256];
        char *paths[] = {a, NULL};
        int *fds = NULL;
        size_t n = 0;
        int holder;
        usec_t t;

        make_file(a, sizeof(a), "sdc");
        holder = open(a, O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(flock(holder, LOCK_SH), 0); /* multipathd creating the map */
        t = now_monotonic();
        ck_assert_int_eq(mpf_lock_paths(paths, 1, t + 80 * USEC_PER_MSEC, &fds, &n), -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic(), t + 80 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + USEC_PER_SEC);
        ck_assert_ptr_null(fds);
        close(holder);
}
END_TEST

START_TEST(test_acquire_release)
{
        char a[256];
        char *paths[] = {a, NULL};
        struct mpf_lock l;
        int other;

        make_file(a, sizeof(a), "sdd");
        ck_assert_int_eq(
                mpf_lock_map(rundir, "mpath-3600d", false, now_monotonic() + USEC_PER_SEC, &l.map_fd), 0);
        ck_assert_int_eq(
                mpf_lock_paths(paths, 1, now_monotonic() + USEC_PER_SEC, &l.path_fds, &l.n_path_fds), 0);
        ck_assert_uint_eq(l.n_path_fds, 1);
        other = open_lockfile("mpath-3600d");
        ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), -1);
        mpf_lock_release(&l);
        ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
        ck_assert_int_lt(l.map_fd, 0);
        mpf_lock_release(&l); /* idempotent */
        close(other);
}
END_TEST

START_TEST(test_rundir_env)
{
        ck_assert_int_eq(unsetenv(MPF_RUNDIR_ENV), 0);
        ck_assert_str_eq(mpf_rundir(), "/run/mpath-flush");
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, rundir, 1), 0);
        ck_assert_str_eq(mpf_rundir(), rundir);
}
END_TEST

static Suite *lock_suite(void)
{
        Suite *s = suite_create("lock");
        TCase *tc = tcase_create("lock");

        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_map_lock_created);
        tcase_add_test(tc, test_map_lock_timeout);
        tcase_add_test(tc, test_map_lock_waits_for_release);
        tcase_add_test(tc, test_bad_uuid);
        tcase_add_test(tc, test_path_locks);
        tcase_add_test(tc, test_path_lock_timeout);
        tcase_add_test(tc, test_acquire_release);
        tcase_add_test(tc, test_rundir_env);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(lock_suite)
