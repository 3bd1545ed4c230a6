/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --wait-busy's retry loop against a fake flush and a fake clock: when it retries, how long it waits,
 * what it reports. */
#include <string.h>

#include "log.h"
#include "macro.h"
#include "tests.h"
#include "wait.h"

#define START (1000 * USEC_PER_SEC)
#define TIMEOUT (10 * USEC_PER_SEC)

static struct {
        usec_t clock;
        usec_t free_at;  /* the fake map is busy until this time (USEC_INFINITY: for ever) */
        usec_t event_at; /* wait_change returns early at this time (0: no event) */
        unsigned attempts;
        usec_t last_attempt; /* when the last attempt started */
        unsigned waits;      /* wait_change calls */
        unsigned done_calls;
        const struct mpf_map_result *done_last;
        const char *arg; /* what a retry must be given (NULL: "mpatha") */
} W;

static usec_t w_now(void *u)
{
        return W.clock;
}

static void w_sleep_until(void *u, usec_t t)
{
        if (t > W.clock)
                W.clock = t;
}

static void w_wait_change(void *u, usec_t t)
{
        W.waits++;
        if (W.event_at > W.clock && W.event_at < t) {
                W.clock = W.event_at;
                return;
        }
        w_sleep_until(u, t);
}

static int w_flush(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                   struct mpf_map_result *ret)
{
        ck_assert_str_eq(arg, W.arg ? W.arg : "mpatha"); /* only the busy map is tried again */
        W.attempts++;
        W.last_attempt = W.clock;
        *ret = (struct mpf_map_result){.map = strdup(arg), .attempts = 1, .elapsed_ms = 5};
        if (W.arg) /* resolved: the flush knows the map's UUID, as the first attempt did */
                ret->uuid = strdup(W.arg);
        if (W.clock >= W.free_at) {
                ret->result = MPF_RESULT_REMOVED;
                ret->step = MPF_STEP_DONE;
        } else {
                ret->result = MPF_RESULT_BUSY;
                ret->step = MPF_STEP_IN_USE;
                ck_assert_int_eq(mpf_blockers_add_mount(&ret->blockers, "mpatha", "/mnt", 1), 0);
        }
        W.clock += 5 * USEC_PER_MSEC;
        return 0;
}

static void w_done(void *u, const struct mpf_map_result *m)
{
        W.done_calls++;
        W.done_last = m;
}

static const struct mpf_ops wait_ops = {
        .now = w_now,
        .sleep_until = w_sleep_until,
        .wait_change = w_wait_change,
};

static void run(struct mpf_map_result *maps, size_t n)
{
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + TIMEOUT};

        ck_assert_int_eq(mpf_wait_busy(&wait_ops, &p, w_flush, maps, n, START, w_done, NULL), 0);
}

static void setup(usec_t free_at, struct mpf_map_result maps[2])
{
        memset(&W, 0, sizeof(W));
        W.clock = START + 5 * USEC_PER_MSEC; /* the first attempt took 5 ms */
        W.free_at = free_at;
        log_set_max_level(LOG_EMERG - 1);
        maps[0] = (struct mpf_map_result){.map = strdup("mpatha"),
                                          .result = MPF_RESULT_BUSY,
                                          .step = MPF_STEP_IN_USE,
                                          .attempts = 1,
                                          .elapsed_ms = 5};
        maps[1] = (struct mpf_map_result){.map = strdup("mpathb"),
                                          .result = MPF_RESULT_REMOVED,
                                          .step = MPF_STEP_DONE,
                                          .attempts = 1,
                                          .elapsed_ms = 3};
}

/* Freed after 1 s without any event: the backoff finds it within its longest step. */
START_TEST(test_freed_by_backoff)
{
        struct mpf_map_result maps[2];

        setup(START + 1 * USEC_PER_SEC, maps);
        run(maps, 2);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_le(W.last_attempt, W.free_at + WAIT_BUSY_BACKOFF_MAX_USEC);
        ck_assert_uint_ge(maps[0].waited_ms, 900);
        ck_assert_uint_le(maps[0].waited_ms, 1000 + WAIT_BUSY_BACKOFF_MAX_USEC / USEC_PER_MSEC);
        ck_assert_uint_eq(maps[0].attempts, W.attempts + 1);
        ck_assert_uint_ge(maps[0].attempts, 3);
        ck_assert_uint_ge(maps[0].elapsed_ms, maps[0].waited_ms);
        ck_assert_uint_eq(maps[1].attempts, 1); /* the free map was not touched */
        ck_assert_uint_eq(maps[1].waited_ms, 0);
        ck_assert_uint_eq(W.done_calls, 1);
        ck_assert_ptr_eq(W.done_last, &maps[0]);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* A busy map whose first attempt found its UUID is tried again by that UUID (the name given may
 * belong to another map by then: two aliases swapped), and reported under the name given. */
START_TEST(test_retry_by_uuid)
{
        struct mpf_map_result maps[2];

        setup(START + 1 * USEC_PER_SEC, maps);
        maps[0].uuid = strdup("mpath-3600140500000001");
        ck_assert_ptr_nonnull(maps[0].uuid);
        W.arg = "mpath-3600140500000001";
        run(maps, 2);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_ge(W.attempts, 1);
        ck_assert_str_eq(maps[0].map, "mpatha");
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* An event (an unmount) ends the wait at once: the retry comes right after it, not at the backoff. */
START_TEST(test_event_ends_wait)
{
        struct mpf_map_result maps[2];

        setup(START + 3 * USEC_PER_SEC, maps);
        W.event_at = W.free_at;
        run(maps, 2);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_le(W.last_attempt, W.free_at + WAIT_BUSY_MIN_INTERVAL_USEC);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* A flood of events: attempts stay WAIT_BUSY_MIN_INTERVAL_USEC apart. */
static void w_wait_change_storm(void *u, usec_t t)
{
        W.waits++; /* an event is always there */
}

START_TEST(test_event_storm_rate_limited)
{
        struct mpf_map_result maps[2];
        struct mpf_ops ops = wait_ops;
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + TIMEOUT};

        setup(START + 2 * USEC_PER_SEC, maps);
        ops.wait_change = w_wait_change_storm;
        ck_assert_int_eq(mpf_wait_busy(&ops, &p, w_flush, maps, 2, START, w_done, NULL), 0);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_le(W.attempts, 2 * USEC_PER_SEC / WAIT_BUSY_MIN_INTERVAL_USEC + 1);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* Never freed: busy at the end, naming the mount, the last attempt no later than the reserve allows,
 * and the whole wait within the deadline. */
START_TEST(test_stays_busy)
{
        struct mpf_map_result maps[2];

        setup(USEC_INFINITY, maps);
        run(maps, 2);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_BUSY);
        ck_assert_uint_eq(maps[0].blockers.n_mounts, 1);
        ck_assert_uint_le(W.last_attempt, START + TIMEOUT - WAIT_BUSY_RESERVE_USEC);
        ck_assert_uint_ge(W.last_attempt,
                          START + TIMEOUT - WAIT_BUSY_RESERVE_USEC - WAIT_BUSY_BACKOFF_MAX_USEC);
        ck_assert_uint_le(W.clock, START + TIMEOUT);
        ck_assert_uint_ge(maps[0].waited_ms, 8000);
        ck_assert_uint_eq(W.done_calls, 1);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* Nothing busy: no wait, no attempt, no callback (the caller reported those maps already). */
START_TEST(test_nothing_busy)
{
        struct mpf_map_result maps[2];

        setup(0, maps);
        maps[0].result = MPF_RESULT_ABSENT;
        run(maps, 2);
        ck_assert_uint_eq(W.attempts, 0);
        ck_assert_uint_eq(W.waits, 0);
        ck_assert_uint_eq(W.done_calls, 0);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

/* A short --timeout keeps a quarter of itself for the last attempt. */
START_TEST(test_short_timeout_reserve)
{
        struct mpf_map_result maps[2];
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + 2 * USEC_PER_SEC};

        setup(USEC_INFINITY, maps);
        ck_assert_int_eq(mpf_wait_busy(&wait_ops, &p, w_flush, maps, 2, START, w_done, NULL), 0);
        ck_assert_int_eq(maps[0].result, MPF_RESULT_BUSY);
        ck_assert_uint_le(W.last_attempt, START + 2 * USEC_PER_SEC - 500 * USEC_PER_MSEC);
        ck_assert_uint_ge(W.attempts, 2);
        for (size_t i = 0; i < 2; i++)
                mpf_map_result_done(&maps[i]);
}
END_TEST

static Suite *wait_suite(void)
{
        Suite *s = suite_create("wait");
        TCase *tc = tcase_create("wait");

        tcase_add_test(tc, test_freed_by_backoff);
        tcase_add_test(tc, test_retry_by_uuid);
        tcase_add_test(tc, test_event_ends_wait);
        tcase_add_test(tc, test_event_storm_rate_limited);
        tcase_add_test(tc, test_stays_busy);
        tcase_add_test(tc, test_nothing_busy);
        tcase_add_test(tc, test_short_timeout_reserve);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(wait_suite)
