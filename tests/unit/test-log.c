/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "tests.h"

/* Runs fn with stderr redirected; returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
        char path[] = "/tmp/mpf-test-log-XXXXXX";
        int fd = mkstemp(path), saved;
        char *buf = calloc(1, 4096);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        fn();
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
        n = read(fd, buf, 4095);
        ck_assert_int_ge(n, 0);
        close(fd);
        unlink(path);
        return buf;
}

static void emit(void)
{
        log_set_journal(false);
        log_set_max_level(LOG_INFO);
        ck_assert_int_eq(log_map(LOG_ERR, 0, "mpatha", "mpath-3600a", "claim", "opened by %d", 5), 0);
        ck_assert_int_eq(log_map(LOG_WARNING, -EBUSY, "mpatha", NULL, NULL, "remove: %m, ignoring"), -EBUSY);
        ck_assert_int_eq(log_error_errno(EIO, "plain %s: %m", "line"), -EIO);
        log_debug("not shown at info level");
        log_set_max_level(LOG_ERR);
        log_warning("not shown with -q");
        log_error("shown with -q");
}

START_TEST(test_lines)
{
        _cleanup_(freep) char *out = capture_stderr(emit);

        ck_assert_str_eq(out, "mpath-flush: mpatha: claim: opened by 5\n"
                              "mpath-flush: mpatha: remove: Device or resource busy, ignoring\n"
                              "mpath-flush: plain line: Input/output error\n"
                              "mpath-flush: shown with -q\n");
}
END_TEST

START_TEST(test_stamp_format)
{
        char buf[64];

        ck_assert_int_gt(log_format_stamp(buf, sizeof(buf), 1000, 1000 + 13456789, 42), 0);
        ck_assert_str_eq(buf, "[13456.789 42] ");
        ck_assert_int_gt(log_format_stamp(buf, sizeof(buf), 5000, 4000, 7), 0); /* never negative */
        ck_assert_str_eq(buf, "[0.000 7] ");
}
END_TEST

static void emit_stamped(void)
{
        log_set_journal(false);
        log_set_max_level(LOG_DEBUG);
        log_set_timestamps(now_monotonic());
        log_map(LOG_DEBUG, 0, "mpatha", NULL, "remove", "starting");
        log_set_timestamps(0);
        log_debug("no stamp");
}

/* -vv: each line carries the time since the run started and the pid; without it, none. */
START_TEST(test_stamped_lines)
{
        _cleanup_(freep) char *out = capture_stderr(emit_stamped);
        char pid[32], *p, *end;

        (void)snprintf(pid, sizeof(pid), " %d] ", (int)getpid());
        ck_assert_ptr_nonnull(startswith(out, "mpath-flush: ["));
        p = out + strlen("mpath-flush: [");
        (void)strtoul(p, &end, 10);
        ck_assert(end > p && *end == '.');
        ck_assert_ptr_nonnull(strstr(out, pid));
        ck_assert_ptr_nonnull(strstr(out, "] mpatha: remove: starting\nmpath-flush: no stamp\n"));
}
END_TEST

static Suite *log_suite(void)
{
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");

        tcase_add_test(tc, test_lines);
        tcase_add_test(tc, test_stamp_format);
        tcase_add_test(tc, test_stamped_lines);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(log_suite)
