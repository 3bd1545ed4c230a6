/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>

#include "deadline.h"
#include "tests.h"

START_TEST(test_parse_timeout)
{
        usec_t t = 0;

        ck_assert_int_eq(parse_timeout("30", &t), 0);
        ck_assert_uint_eq(t, 30 * USEC_PER_SEC);
        ck_assert_int_eq(parse_timeout("0.5", &t), 0);
        ck_assert_uint_eq(t, 500 * USEC_PER_MSEC);
        ck_assert_int_eq(parse_timeout(".25", &t), 0);
        ck_assert_uint_eq(t, 250 * USEC_PER_MSEC);
        ck_assert_int_eq(parse_timeout("3600", &t), 0);
        ck_assert_uint_eq(t, 3600 * USEC_PER_SEC);
        ck_assert_int_eq(parse_timeout("0.000001", &t), 0);
        ck_assert_uint_eq(t, 1);
        ck_assert_int_eq(parse_timeout("0", &t), -ERANGE);
        ck_assert_int_eq(parse_timeout("0.0", &t), -ERANGE);
        ck_assert_int_eq(parse_timeout("3600.5", &t), -ERANGE);
        ck_assert_int_eq(parse_timeout("3601", &t), -ERANGE);
        ck_assert_int_eq(parse_timeout("99999999999999999999", &t), -ERANGE);
        ck_assert_int_eq(parse_timeout("-1", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout("1e3", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout("10s", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout(".", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout("", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout(" 1", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout("0.0000001", &t), -EINVAL);
        ck_assert_int_eq(parse_timeout(NULL, &t), -EINVAL);
}
END_TEST

START_TEST(test_deadline)
{
        ck_assert_uint_eq(deadline_left(100, 40), 60);
        ck_assert_uint_eq(deadline_left(100, 140), 0);
        ck_assert(deadline_passed(100, 100));
        ck_assert(!deadline_passed(100, 99));
        ck_assert_int_eq(deadline_poll_ms(10 * USEC_PER_MSEC, 0), 10);
        ck_assert_int_eq(deadline_poll_ms(1, 0), 1); /* rounds up, never a busy 0 */
        ck_assert_int_eq(deadline_poll_ms(5, 5), 0);
        ck_assert_int_eq(deadline_poll_ms(USEC_INFINITY, 0), INT_MAX);
        ck_assert_uint_eq(usec_add(USEC_INFINITY - 1, 5), USEC_INFINITY);
        ck_assert_uint_eq(usec_add(1, 2), 3);
        ck_assert_uint_eq(usec_sub_unsigned(1, 2), 0);
        ck_assert_uint_gt(now_monotonic(), 0);
}
END_TEST

START_TEST(test_backoff)
{
        struct backoff b;

        backoff_init(&b, 5, 40);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 5);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 10);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 20);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 40);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 40);
        /* never past the deadline */
        ck_assert_uint_eq(backoff_step(&b, 1000, 990), 10);
        ck_assert_uint_eq(backoff_step(&b, 1000, 1000), 0);
        backoff_init(&b, 0, 0);
        ck_assert_uint_eq(backoff_step(&b, 1000, 0), 1);
}
END_TEST

START_TEST(test_sleep_until)
{
        usec_t t = now_monotonic();

        sleep_until(t + 20 * USEC_PER_MSEC);
        ck_assert_uint_ge(now_monotonic(), t + 20 * USEC_PER_MSEC);
}
END_TEST

static Suite *deadline_suite(void)
{
        Suite *s = suite_create("deadline");
        TCase *tc = tcase_create("deadline");

        tcase_add_test(tc, test_parse_timeout);
        tcase_add_test(tc, test_deadline);
        tcase_add_test(tc, test_backoff);
        tcase_add_test(tc, test_sleep_until);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(deadline_suite)
