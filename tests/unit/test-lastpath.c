/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --if-pathless: the decision table, and the look-act-look-again loop against a fake world. */
#include <errno.h>
#include <string.h>

#include "lastpath.h"
#include "macro.h"
#include "tests.h"

#define SEQ_MAX 8

static struct fake {
        bool exists;
        bool locked;
        int lock_r;
        const char *paths_seq[SEQ_MAX]; /* per paths() call: "" none, "sdb", "sda sdb"; the last repeats */
        size_t n_paths_seq, paths_pos;
        MpfLastDel policy;
        unsigned policy_calls;
        MpfResult flush_result;
        unsigned flush_calls;
        bool flush_saw_locked;
        bool flush_removes_path_seq; /* after a flush, paths() moves on */
        int message_r;
        bool record_left;            /* a flusher that died left its undo record: queueing off, both marks */
        int mpathd_restore_r;        /* restorequeueing's answer */
        int flush_queueing_after;    /* queueing as the flush reports it left (-1: unknown) */
        unsigned record_write_fails; /* the first this many record writes fail (EIO), changing nothing */
        char log[1024];              /* ops in order: "lock paths policy fail flush ..." */
} F;

static void record(const char *what)
{
        strncat(F.log, what, sizeof(F.log) - strlen(F.log) - 2);
        strcat(F.log, " ");
}

static int f_info(void *u, const char *s, struct mpf_dm_info *ret)
{
        *ret = (struct mpf_dm_info){.exists = F.exists, .devt = 1};
        if (F.exists) {
                strcpy(ret->name, "mpatha");
                strcpy(ret->uuid, "mpath-36001405aaaa");
                if (strcmp(s, "mpath-36001405aaaa") != 0 && strcmp(s, "mpatha") != 0)
                        ret->exists = false;
        }
        return 0;
}

static int f_lock(void *u, const struct mpf_dm_info *map, bool try_map, usec_t deadline, void **ret,
                  struct mpf_stuck *ret_stuck)
{
        *ret_stuck = (struct mpf_stuck){};
        record("lock");
        if (F.lock_r < 0)
                return F.lock_r;
        F.locked = true;
        *ret = &F;
        return 0;
}

static void f_unlock(void *u, void *lock)
{
        ck_assert_ptr_eq(lock, &F);
        F.locked = false;
        record("unlock");
}

static int f_paths(void *u, const struct mpf_dm_info *map, char ***ret)
{
        const char *s = F.paths_seq[F.paths_pos < F.n_paths_seq ? F.paths_pos : F.n_paths_seq - 1];
        char **l = calloc(4, sizeof(char *));
        char buf[64], *save = NULL;
        size_t n = 0;

        ck_assert(F.locked);
        if (F.paths_pos < F.n_paths_seq)
                F.paths_pos++;
        snprintf(buf, sizeof(buf), "%s", s);
        for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
                l[n++] = strdup(w);
        record(n ? "paths" : "paths-none");
        *ret = l;
        return 0;
}

static int f_mpathd(void *u, const char *cmd, usec_t deadline)
{
        ck_assert(F.locked);
        if (strcmp(cmd, "restorequeueing map mpatha") == 0) {
                record("mpathd-restore");
                return F.mpathd_restore_r;
        }
        ck_assert_str_eq(cmd, "disablequeueing map mpatha");
        record("mpathd-disable");
        return -ENOENT;
}

static int f_message(void *u, const char *name, const char *uuid, const char *msg)
{
        ck_assert(F.locked);
        ck_assert_str_eq(name, "mpatha");
        ck_assert_str_eq(uuid, "mpath-36001405aaaa"); /* the kernel is told the map by its UUID */
        if (strcmp(msg, "queue_if_no_path") == 0) {
                record("queue_if_no_path");
                return 0;
        }
        ck_assert_str_eq(msg, "fail_if_no_path");
        record("fail_if_no_path");
        return F.message_r;
}

static int f_record_read(void *u, const char *uuid, struct mpf_undo *ret)
{
        ck_assert(F.locked);
        ck_assert_str_eq(uuid, "mpath-36001405aaaa");
        if (!F.record_left)
                return -ENOENT;
        *ret = (struct mpf_undo){
                .devt = 1, .kernel_queueing_disabled = true, .mpathd_queueing_disabled = true};
        strcpy(ret->name, "mpatha");
        strcpy(ret->uuid, uuid);
        return 0;
}

static int f_record_write(void *u, const struct mpf_undo *rec)
{
        ck_assert(F.locked);
        if (F.record_write_fails > 0) {
                F.record_write_fails--;
                record("record-write-fails");
                return -EIO;
        }
        record(mpf_undo_empty(rec) ? "record-gone" : "record-kept");
        F.record_left = !mpf_undo_empty(rec);
        return 0;
}

static usec_t f_now(void *u)
{
        return 1000;
}

static MpfLastDel f_policy(const char *wwid, usec_t deadline, char **ret_source)
{
        ck_assert_str_eq(wwid, "36001405aaaa");
        F.policy_calls++;
        record("policy");
        *ret_source = strdup("test");
        return F.policy;
}

static int f_flush(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                   struct mpf_map_result *ret)
{
        F.flush_calls++;
        F.flush_saw_locked = p->locked && F.locked;
        record("flush");
        ck_assert_str_eq(arg, "mpath-36001405aaaa");
        /* its lock step puts the map back from a record left behind, as the real one does */
        (void)mpf_undo_leftover(ops, arg, p->deadline, NULL);
        *ret = (struct mpf_map_result){.result = F.flush_result,
                                       .step = MPF_STEP_DONE,
                                       .queueing_before = -1,
                                       .queueing_after = F.flush_queueing_after};
        ret->reason = strdup("test");
        if (F.flush_result == MPF_RESULT_REMOVED)
                F.exists = false;
        return 0;
}

static const struct mpf_ops ops = {
        .info_by_uuid = f_info,
        .info_by_name = f_info,
        .lock = f_lock,
        .unlock = f_unlock,
        .paths = f_paths,
        .mpathd = f_mpathd,
        .message = f_message,
        .now = f_now,
        .record_read = f_record_read,
        .record_write = f_record_write,
};

static const struct mpf_lastpath_params params = {
        .deadline = 10 * USEC_PER_SEC,
        .policy = f_policy,
        .flush = f_flush,
};

static void setup(void)
{
        F = (struct fake){.exists = true,
                          .policy = MPF_LAST_DEL_UNUSED,
                          .flush_result = MPF_RESULT_REMOVED,
                          .flush_queueing_after = -1};
}

#define PATHS(...)                                                                                          \
        do {                                                                                                \
                const char *_s[] = {__VA_ARGS__};                                                           \
                F.n_paths_seq = ELEMENTSOF(_s);                                                             \
                memcpy(F.paths_seq, _s, sizeof(_s));                                                        \
        } while (0)

START_TEST(test_decide)
{
        /* a path left: nothing, whatever the policy */
        for (int p = 0; p < _MPF_LAST_DEL_MAX; p++) {
                ck_assert_int_eq(mpf_lastpath_decide(1, p), MPF_LASTPATH_NOT_LAST);
                ck_assert_int_eq(mpf_lastpath_decide(2, p), MPF_LASTPATH_NOT_LAST);
        }
        ck_assert_int_eq(mpf_lastpath_decide(0, MPF_LAST_DEL_ALWAYS), MPF_LASTPATH_FAIL_AND_FLUSH);
        ck_assert_int_eq(mpf_lastpath_decide(0, MPF_LAST_DEL_UNUSED), MPF_LASTPATH_FLUSH);
        ck_assert_int_eq(mpf_lastpath_decide(0, MPF_LAST_DEL_NEVER), MPF_LASTPATH_KEEP);
        ck_assert_str_eq(mpf_lastpath_do_to_string(MPF_LASTPATH_FAIL_AND_FLUSH), "fail-and-flush");
}
END_TEST

START_TEST(test_not_last)
{
        setup();
        PATHS("sdb");
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        /* looked twice, the policy never read, nothing done */
        ck_assert_str_eq(F.log, "lock paths paths unlock ");
        ck_assert_uint_eq(F.policy_calls, 0);
}
END_TEST

START_TEST(test_absent)
{
        setup();
        F.exists = false;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_str_eq(F.log, "");
}
END_TEST

START_TEST(test_unused_removed)
{
        setup();
        PATHS("");
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_str_eq(F.log, "lock paths-none policy flush unlock ");
        ck_assert(F.flush_saw_locked);
}
END_TEST

START_TEST(test_unused_busy_keeps_queueing)
{
        setup();
        PATHS("");
        F.flush_result = MPF_RESULT_BUSY;
        /* in use under "unused" is the policy, not a failure; queueing is not touched */
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "mpatha"), 0);
        ck_assert_str_eq(F.log, "lock paths-none policy flush paths-none unlock ");
}
END_TEST

/* flush_on_last_del always, no path left, the map in use */
static void setup_always_busy(void)
{
        setup();
        PATHS("");
        F.policy = MPF_LAST_DEL_ALWAYS;
        F.flush_result = MPF_RESULT_BUSY;
}

START_TEST(test_always)
{
        setup_always_busy();
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        /* queueing off under the lock, before the flush */
        ck_assert_str_eq(F.log,
                         "lock paths-none policy mpathd-disable fail_if_no_path flush paths-none unlock ");
}
END_TEST

/* A flusher that died left its undo record (queueing off, to be switched on again): the flush
 * would put it back from its lock step, over the policy. Its queueing marks go first, and
 * queueing is never switched on again, also when multipathd would not have answered
 * restorequeueing (a put-back that keeps both marks). */
START_TEST(test_always_after_a_record_left_behind)
{
        for (int late = 0; late <= 1; late++) {
                setup_always_busy();
                F.record_left = true;
                F.mpathd_restore_r = late ? -ETIMEDOUT : 0;
                ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
                ck_assert_str_eq(F.log, "lock paths-none policy record-gone mpathd-disable fail_if_no_path "
                                        "flush paths-none unlock ");
        }
}
END_TEST

/* The record's queueing marks could not be dropped (rewriting it failed): the flush puts queueing
 * back on from it and says so in its result; the policy switches it off again after the flush. */
START_TEST(test_always_policy_comes_last)
{
        setup_always_busy();
        F.record_left = true;
        F.record_write_fails = 1;
        F.flush_queueing_after = 1;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_str_eq(F.log,
                         "lock paths-none policy record-write-fails mpathd-disable fail_if_no_path flush "
                         "mpathd-restore queue_if_no_path record-gone mpathd-disable fail_if_no_path "
                         "paths-none unlock ");
}
END_TEST

START_TEST(test_always_fail_if_no_path_fails)
{
        setup_always_busy();
        F.message_r = -EIO;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), MPF_EXIT_FAILED);
}
END_TEST

START_TEST(test_never)
{
        setup();
        PATHS("");
        F.policy = MPF_LAST_DEL_NEVER;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_str_eq(F.log, "lock paths-none policy paths-none unlock ");
        ck_assert_uint_eq(F.flush_calls, 0);
}
END_TEST

START_TEST(test_removal_while_running)
{
        setup();
        /* the first look sees sdb; sdb goes before the look again: the map is handled */
        PATHS("sdb", "");
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_str_eq(F.log, "lock paths paths-none policy flush unlock ");
        ck_assert_uint_eq(F.flush_calls, 1);
}
END_TEST

START_TEST(test_flush_failure_is_reported)
{
        setup();
        PATHS("");
        F.flush_result = MPF_RESULT_TIMEOUT;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), MPF_EXIT_TIMEOUT);
        F.locked = false;
}
END_TEST

START_TEST(test_lock_timeout)
{
        setup();
        PATHS("");
        F.lock_r = -ETIMEDOUT;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), MPF_EXIT_TIMEOUT);
        ck_assert_uint_eq(F.flush_calls, 0);
}
END_TEST

START_TEST(test_paths_keep_changing)
{
        setup();
        PATHS("sda", "sdb", "sda", "sdb", "sda", "sdb", "sda", "sdb");
        /* bounded: never more than LASTPATH_MAX_ROUNDS + 1 looks */
        F.n_paths_seq = SEQ_MAX;
        ck_assert_int_eq(mpf_lastpath(&ops, &params, "36001405aaaa"), 0);
        ck_assert_uint_le(F.paths_pos, LASTPATH_MAX_ROUNDS + 1);
}
END_TEST

static Suite *lastpath_suite(void)
{
        Suite *s = suite_create("lastpath");
        TCase *tc = tcase_create("lastpath");

        tcase_add_test(tc, test_decide);
        tcase_add_test(tc, test_not_last);
        tcase_add_test(tc, test_absent);
        tcase_add_test(tc, test_unused_removed);
        tcase_add_test(tc, test_unused_busy_keeps_queueing);
        tcase_add_test(tc, test_always);
        tcase_add_test(tc, test_always_after_a_record_left_behind);
        tcase_add_test(tc, test_always_policy_comes_last);
        tcase_add_test(tc, test_always_fail_if_no_path_fails);
        tcase_add_test(tc, test_never);
        tcase_add_test(tc, test_removal_while_running);
        tcase_add_test(tc, test_flush_failure_is_reported);
        tcase_add_test(tc, test_lock_timeout);
        tcase_add_test(tc, test_paths_keep_changing);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(lastpath_suite)
