/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <check.h>
#include <stdlib.h>

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
