/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "macro.h"
#include "result.h"
#include "tests.h"

START_TEST(test_strings)
{
        static const char *const steps[] = {"resolve",    "lock",      "in-use", "queueing",
                                            "partitions", "claim",     "flush",  "sole-opener",
                                            "remove",     "udev-wait", "done"};
        static const char *const results[] = {"removed", "absent", "deferred", "busy",
                                              "timeout", "failed", "refused"};

        ck_assert_uint_eq(ELEMENTSOF(steps), _MPF_STEP_MAX);
        for (unsigned i = 0; i < ELEMENTSOF(steps); i++) {
                ck_assert_str_eq(mpf_step_to_string((MpfStep)i), steps[i]);
                ck_assert_int_eq(mpf_step_from_string(steps[i]), i);
        }
        ck_assert_uint_eq(ELEMENTSOF(results), _MPF_RESULT_MAX);
        for (unsigned i = 0; i < ELEMENTSOF(results); i++) {
                ck_assert_str_eq(mpf_result_to_string((MpfResult)i), results[i]);
                ck_assert_int_eq(mpf_result_from_string(results[i]), i);
        }
        ck_assert_ptr_null(mpf_step_to_string(_MPF_STEP_MAX));
        ck_assert_ptr_null(mpf_result_to_string(_MPF_RESULT_MAX));
        ck_assert_int_eq(mpf_step_from_string("nope"), _MPF_STEP_MAX);
}
END_TEST

START_TEST(test_exit_codes)
{
        struct mpf_map_result r = {};
        static const struct {
                MpfResult result;
                int code;
        } table[] = {
                {MPF_RESULT_REMOVED, 0}, {MPF_RESULT_ABSENT, 0},  {MPF_RESULT_DEFERRED, 0},
                {MPF_RESULT_BUSY, 4},    {MPF_RESULT_TIMEOUT, 5}, {MPF_RESULT_FAILED, 1},
                {MPF_RESULT_REFUSED, 3},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                r.result = table[i].result;
                r.restore_failed = false;
                ck_assert_int_eq(mpf_map_result_exit_code(&r), table[i].code);
                r.restore_failed = true;
                ck_assert_int_eq(mpf_map_result_exit_code(&r), 7);
        }
        /* written data lost: 8 for a removed map, only for a removed map */
        r.restore_failed = false;
        r.data_lost = true;
        r.result = MPF_RESULT_REMOVED;
        ck_assert_int_eq(mpf_map_result_exit_code(&r), 8);
        r.result = MPF_RESULT_BUSY;
        ck_assert_int_eq(mpf_map_result_exit_code(&r), 4);
        r.result = MPF_RESULT_REMOVED;
        r.restore_failed = true;
        ck_assert_int_eq(mpf_map_result_exit_code(&r), 7);
}
END_TEST

START_TEST(test_precedence)
{
        /* 7 > 8 > 1 > 5 > 4 > 3 > 0 */
        static const int order[] = {0, 3, 4, 5, 1, 8, 7};

        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                for (size_t j = 0; j < ELEMENTSOF(order); j++) {
                        int expect = order[i > j ? i : j];
                        ck_assert_int_eq(mpf_exit_code_merge(order[i], order[j]), expect);
                }
}
END_TEST

START_TEST(test_blockers)
{
        struct mpf_blockers b = {};
        char *s;

        ck_assert(!mpf_blockers_any(&b));
        s = mpf_blockers_describe(&b);
        ck_assert_str_eq(s, "");
        free(s);

        ck_assert_int_eq(mpf_blockers_add_mount(&b, "mpatha", "/mnt", 123), 0);
        ck_assert_int_eq(mpf_blockers_add_opener(&b, 456, "sleep", "mpatha"), 0);
        ck_assert_int_eq(mpf_blockers_add_opener(&b, 456, "sleep", "mpatha"), 0); /* deduplicated */
        ck_assert_int_eq(strv_extend(&b.holders, "dm-3"), 0);
        ck_assert_int_eq(strv_extend(&b.swaps, "/dev/dm-4"), 0);
        b.unexplained_opens = 2;
        ck_assert(mpf_blockers_any(&b));
        ck_assert_uint_eq(b.n_openers, 1);
        s = mpf_blockers_describe(&b);
        ck_assert_str_eq(s,
                         "mpatha mounted on /mnt (pid 123), mpatha opened by pid 456 (sleep), held by dm-3, "
                         "swap /dev/dm-4, 2 unexplained open(s)");
        free(s);
        ck_assert_int_eq(mpf_blockers_add_kernel_user(&b, "loop", "loop0", "mpatha"), 0);
        ck_assert_int_eq(mpf_blockers_add_kernel_user(&b, "loop", "loop0", "mpatha"), 0); /* deduplicated */
        ck_assert_uint_eq(b.n_kernel_users, 1);
        s = mpf_blockers_describe(&b);
        ck_assert_ptr_nonnull(strstr(s, "swap /dev/dm-4, mpatha backs loop device loop0, 2 unexplained"));
        free(s);
        ck_assert_int_eq(strv_extend(&b.holder_names, "vg0-lv0"), 0);
        s = mpf_blockers_describe(&b);
        ck_assert_ptr_nonnull(strstr(s, "held by dm-3 (vg0-lv0),"));
        free(s);
        /* the same mount seen from another (service's) mount namespace: kept, named once */
        ck_assert_int_eq(mpf_blockers_add_mount(&b, "mpatha", "/mnt", 153), 0);
        ck_assert_uint_eq(b.n_mounts, 2);
        s = mpf_blockers_describe(&b);
        ck_assert_ptr_nonnull(strstr(s, "mpatha mounted on /mnt (pid 123), mpatha opened by"));
        ck_assert_ptr_null(strstr(s, "pid 153"));
        free(s);
        mpf_blockers_done(&b);
        mpf_blockers_done(&b);
        mpf_blockers_done(NULL);
}
END_TEST

/* A map held open by thousands of processes: the first MPF_BLOCKERS_LIST_MAX are listed, the
 * rest only counted (once per process), so its result stays small. */
START_TEST(test_blockers_capped)
{
        struct mpf_blockers b = {};
        _cleanup_(freep) char *s = NULL;

        for (int pid = 1000; pid < 8000; pid++) {
                ck_assert_int_eq(mpf_blockers_add_opener(&b, pid, "reader", "mpatha"), 0);
                ck_assert_int_eq(mpf_blockers_add_opener(&b, pid, "reader", "mpatha-part1"), 0);
        }
        for (int i = 0; i < 150; i++)
                ck_assert_int_eq(mpf_blockers_add_mount(&b, "mpatha", "/mnt", 2000 + i), 0);
        ck_assert_uint_eq(b.n_openers, MPF_BLOCKERS_LIST_MAX);
        ck_assert_uint_eq(b.openers_omitted, 7000 - MPF_BLOCKERS_LIST_MAX / 2);
        ck_assert_uint_eq(b.n_mounts, MPF_BLOCKERS_LIST_MAX);
        ck_assert_uint_eq(b.mounts_omitted, 50);
        s = mpf_blockers_describe(&b);
        ck_assert_ptr_nonnull(strstr(s, "opened by 6950 more processes"));
        ck_assert_ptr_nonnull(strstr(s, "50 more mounts"));
        ck_assert_uint_lt(strlen(s), 16384);
        mpf_blockers_done(&b);
        ck_assert_uint_eq(b.openers_omitted, 0);
        ck_assert(!mpf_blockers_any(&b));
}
END_TEST

static Suite *result_suite(void)
{
        Suite *s = suite_create("result");
        TCase *tc = tcase_create("result");

        tcase_add_test(tc, test_strings);
        tcase_add_test(tc, test_exit_codes);
        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_blockers);
        tcase_add_test(tc, test_blockers_capped);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(result_suite)
