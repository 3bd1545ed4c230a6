/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/file.h>

#include "macro.h"

/* Each test-<module>.c defines one suite and ends with MPF_TEST_MAIN(its_suite). */
#define MPF_TEST_MAIN(make_suite)                                                                           \
        int main(int argc, char *argv[])                                                                    \
        {                                                                                                   \
                SRunner *sr = srunner_create(make_suite());                                                 \
                int failed;                                                                                 \
                test_argc = argc;                                                                           \
                test_argv = argv;                                                                           \
                srunner_run_all(sr, CK_NORMAL);                                                             \
                failed = srunner_ntests_failed(sr);                                                         \
                srunner_free(sr);                                                                           \
                return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                           \
        }

static int test_argc __attribute__((unused));
static char **test_argv __attribute__((unused));

/* Can we take LOCK_EX on path right now (nobody holds a lock on it)? */
static inline bool flock_free(const char *path)
{
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                ck_assert_int_eq(errno, EWOULDBLOCK);
                return false;
        }
        return true;
}
