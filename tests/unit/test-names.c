/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "names.h"
#include "tests.h"

START_TEST(test_name_valid)
{
        char longname[MPF_NAME_MAX + 1];

        ck_assert(mpf_name_valid("mpatha"));
        ck_assert(mpf_name_valid("3600140512345678"));
        ck_assert(mpf_name_valid("a b"));
        ck_assert(!mpf_name_valid(""));
        ck_assert(!mpf_name_valid(NULL));
        ck_assert(!mpf_name_valid("a/b"));
        ck_assert(!mpf_name_valid("a\nb"));
        ck_assert(!mpf_name_valid("a\x7f"));
        memset(longname, 'x', MPF_NAME_MAX - 1);
        longname[MPF_NAME_MAX - 1] = 0;
        ck_assert(mpf_name_valid(longname)); /* 127 bytes */
        memset(longname, 'x', MPF_NAME_MAX);
        longname[MPF_NAME_MAX] = 0;
        ck_assert(!mpf_name_valid(longname)); /* 128 bytes */
}
END_TEST

START_TEST(test_classify)
{
        ck_assert_int_eq(mpf_arg_classify("mpatha"), MPF_ARG_NAME);
        ck_assert_int_eq(mpf_arg_classify("3600140512345678"), MPF_ARG_NAME);
        ck_assert_int_eq(mpf_arg_classify("mpath-3600140512345678"), MPF_ARG_UUID);
        ck_assert_int_eq(mpf_arg_classify("/dev/mapper/mpatha"), MPF_ARG_PATH);
        ck_assert_int_eq(mpf_arg_classify("/dev/dm-0"), MPF_ARG_PATH);
        ck_assert_int_eq(mpf_arg_classify(""), -EINVAL);
        ck_assert_int_eq(mpf_arg_classify("mapper/mpatha"), -EINVAL);
        ck_assert_int_eq(mpf_arg_classify("mpath-"), -EINVAL);
        ck_assert_int_eq(mpf_arg_classify("mpath-a/b"), -EINVAL);
        ck_assert_int_eq(mpf_arg_classify("bad\tname"), -EINVAL);
        ck_assert_int_eq(mpf_arg_classify("/dev/bad\001"), -EINVAL);
}
END_TEST

START_TEST(test_uuids)
{
        ck_assert(mpf_uuid_is_mpath("mpath-3600a"));
        ck_assert(!mpf_uuid_is_mpath("mpath-"));
        ck_assert(!mpf_uuid_is_mpath("LVM-xyz"));
        ck_assert(!mpf_uuid_is_mpath("part1-mpath-3600a"));
        ck_assert(!mpf_uuid_is_mpath(NULL));
        ck_assert(mpf_uuid_is_partition_of("part1-mpath-3600a", "mpath-3600a"));
        ck_assert(mpf_uuid_is_partition_of("part12-mpath-3600a", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("part1-mpath-3600b", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("part-mpath-3600a", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("partx-mpath-3600a", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("part1-mpath-3600ab", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("LVM-x", "mpath-3600a"));
        ck_assert(!mpf_uuid_is_partition_of("part1-LVM-x", "LVM-x"));
}
END_TEST

/* Status lines as dm-multipath prints them: round-robin (no per-path selector args), service-time
 * (two), two groups, failed paths, a hardware handler. */
START_TEST(test_status_active_paths)
{
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16 A 0 "), 2);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 1 1 E 0 2 0 8:0 F 1 8:16 F 3"), 0);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 1 0 0 1 1 A 0 2 0 8:0 F 1 8:16 A 0"), 1);
        ck_assert_int_eq(
                mpf_multipath_status_active_paths("2 0 0 0 2 1 A 0 1 2 8:0 A 0 0 1 E 0 1 2 8:16 A 0 0 1"),
                2);
        ck_assert_int_eq(
                mpf_multipath_status_active_paths("2 0 0 0 2 2 D 0 1 2 8:0 F 2 0 1 A 0 1 2 8:16 A 0 0 1"),
                1);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 1 alua 1 1 A 0 1 1 65:160 A 0 3"), 1);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 0 0"), 0); /* no paths at all */
        /* not the format: */
        ck_assert_int_eq(mpf_multipath_status_active_paths(NULL), -EBADMSG);
        ck_assert_int_eq(mpf_multipath_status_active_paths(""), -EBADMSG);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 1 1 A 0 2 0 8:0 A 0"), -EBADMSG);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 1 1 A 0 1 0 8:0 X 0"), -EBADMSG);
        ck_assert_int_eq(mpf_multipath_status_active_paths("2 0 0 0 1 1 A 0 1 0 8:0 A 0 extra"), -EBADMSG);
        ck_assert_int_eq(mpf_multipath_status_active_paths("x 0 0 0 1 1 A 0 1 0 8:0 A 0"), -EBADMSG);
}
END_TEST

START_TEST(test_features)
{
        ck_assert_int_eq(
                mpf_features_queue_if_no_path("1 queue_if_no_path 1 alua 1 1 service-time 0 1 1 8:0 1"), 1);
        ck_assert_int_eq(mpf_features_queue_if_no_path("0 1 alua 1 1 service-time 0 1 1 8:0 1"), 0);
        ck_assert_int_eq(mpf_features_queue_if_no_path("3 queue_if_no_path queue_mode bio 0 1 1"), 1);
        ck_assert_int_eq(mpf_features_queue_if_no_path("2 pg_init_retries 50 0 1 1"), 0);
        /* a hardware handler arg called like the feature does not count */
        ck_assert_int_eq(mpf_features_queue_if_no_path("0 1 queue_if_no_path 1 1"), 0);
        ck_assert_int_eq(mpf_features_queue_if_no_path("2 queue_mode bio"), 0);
        ck_assert_int_eq(mpf_features_queue_if_no_path(""), -EBADMSG);
        ck_assert_int_eq(mpf_features_queue_if_no_path("x"), -EBADMSG);
        ck_assert_int_eq(mpf_features_queue_if_no_path("2 queue_if_no_path"), -EBADMSG);
        ck_assert_int_eq(mpf_features_queue_if_no_path(NULL), -EBADMSG);
}
END_TEST

static Suite *names_suite(void)
{
        Suite *s = suite_create("names");
        TCase *tc = tcase_create("names");

        tcase_add_test(tc, test_name_valid);
        tcase_add_test(tc, test_classify);
        tcase_add_test(tc, test_uuids);
        tcase_add_test(tc, test_features);
        tcase_add_test(tc, test_status_active_paths);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(names_suite)
