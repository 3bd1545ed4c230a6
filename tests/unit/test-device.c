/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parts of the real device layer that need no device-mapper: the bounded fsync. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "device.h"
#include "tests.h"

START_TEST(test_fsync_file)
{
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = mkstemp(p);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        ck_assert_int_eq(mpf_fsync_bounded(fd, now_monotonic() + 5 * USEC_PER_SEC), 0);
        close(fd);
        unlink(p);
}
END_TEST

START_TEST(test_fsync_error_passed_up)
{
        int pipefd[2];

        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        /* fsync on a pipe fails with EINVAL in the child; the parent reports it */
        ck_assert_int_eq(mpf_fsync_bounded(pipefd[0], now_monotonic() + 5 * USEC_PER_SEC), -EINVAL);
        close(pipefd[0]);
        close(pipefd[1]);
}
END_TEST

START_TEST(test_fsync_deadline_passed)
{
        char p[] = "/tmp/mpf-test-fsync-XXXXXX";
        int fd = mkstemp(p);
        usec_t t = now_monotonic();

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(mpf_fsync_bounded(fd, t), -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic(), t + USEC_PER_SEC);
        close(fd);
        unlink(p);
}
END_TEST

static Suite *device_suite(void)
{
        Suite *s = suite_create("device");
        TCase *tc = tcase_create("fsync");

        tcase_add_test(tc, test_fsync_file);
        tcase_add_test(tc, test_fsync_error_passed_up);
        tcase_add_test(tc, test_fsync_deadline_passed);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(device_suite)
