/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pool's scheduling with a scripted executor (which flush finishes when is the test's choice),
 * and the worker's result message. The flush itself under the pool: test-flush.c. */
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "pool.h"
#include "tests.h"
#include "worker.h"

#define N_MAX 16

static struct {
        usec_t clock;
        usec_t deadline;
        size_t running[N_MAX]; /* started, not yet waited for, in the order they started */
        size_t n_running;
        size_t max_running;
        size_t started[N_MAX];
        size_t n_started;
        size_t done[N_MAX]; /* the done() calls, by index */
        size_t n_done;
        bool lifo;               /* the last started finishes first */
        usec_t cost;             /* each wait() takes this long */
        int start_r[N_MAX];      /* start() of map i fails so */
        bool contended[N_MAX];   /* map i's lock is held by another flusher */
        MpfResult result[N_MAX]; /* what map i's flush ends with */
        char *const *maps;
} S;

static usec_t s_now(void *u)
{
        return S.clock;
}

static int s_start(void *u, size_t i, const char *arg, const struct mpf_flush_params *p)
{
        ck_assert_str_eq(arg, S.maps[i]);
        ck_assert(p->deadline == S.deadline);
        /* no flush starts after the deadline */
        ck_assert(!deadline_passed(p->deadline, S.clock));
        if (S.start_r[i] < 0)
                return S.start_r[i];
        S.started[S.n_started++] = i;
        S.running[S.n_running++] = i;
        S.max_running = MAX(S.max_running, S.n_running);
        return 0;
}

static int s_wait(void *u, size_t *ret_i, struct mpf_map_result *ret)
{
        size_t i;

        ck_assert_uint_gt(S.n_running, 0);
        if (S.lifo)
                i = S.running[--S.n_running];
        else {
                i = S.running[0];
                memmove(S.running, S.running + 1, --S.n_running * sizeof(S.running[0]));
        }
        S.clock += S.cost;
        *ret = (struct mpf_map_result){.result = S.result[i], .lock_contended = S.contended[i]};
        ret->map = strdup(S.maps[i]);
        ck_assert_ptr_nonnull(ret->map);
        *ret_i = i;
        return 0;
}

static void s_done(void *u, const struct mpf_map_result *m)
{
        for (size_t i = 0; S.maps[i]; i++)
                if (strcmp(S.maps[i], m->map) == 0) {
                        S.done[S.n_done++] = i;
                        return;
                }
        ck_abort_msg("done() for an unknown map %s", m->map);
}

static char *maps8[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", NULL};

static int run(unsigned jobs, size_t n, struct mpf_map_result *res, size_t **contended, size_t *n_contended)
{
        static const struct mpf_pool_exec x = {.start = s_start, .wait = s_wait};
        struct mpf_flush_params fp = {.deadline = S.deadline};
        struct mpf_pool_params p = {
                .jobs = jobs,
                .flush = &fp,
                .now = s_now,
                .done = s_done,
        };

        return mpf_pool_run(&x, &p, S.maps, n, res, contended, n_contended);
}

static void setup(void)
{
        memset(&S, 0, sizeof(S));
        S.clock = 1000 * USEC_PER_SEC;
        S.deadline = S.clock + 30 * USEC_PER_SEC;
        S.maps = maps8;
}

static void results_done(struct mpf_map_result *res, size_t n)
{
        for (size_t i = 0; i < n; i++)
                mpf_map_result_done(&res[i]);
}

/* At most jobs at once, started in the order given, results in the order given whatever order
 * they finish in; done() as each finishes. */
START_TEST(test_bounded_and_ordered)
{
        struct mpf_map_result res[8] = {};
        _cleanup_(freep) size_t *contended = NULL;
        size_t n_contended = 99;

        setup();
        S.lifo = true;
        S.result[5] = MPF_RESULT_BUSY;
        ck_assert_int_eq(run(3, 8, res, &contended, &n_contended), 0);
        ck_assert_uint_eq(S.max_running, 3);
        ck_assert_uint_eq(S.n_started, 8);
        for (size_t i = 0; i < 8; i++) {
                ck_assert_uint_eq(S.started[i], i);
                ck_assert_str_eq(res[i].map, maps8[i]);
        }
        ck_assert_int_eq(res[5].result, MPF_RESULT_BUSY);
        ck_assert_uint_eq(n_contended, 0);
        ck_assert_uint_eq(S.n_done, 8);
        /* LIFO: m2 finished first, m0 not before m3 had started */
        ck_assert_uint_eq(S.done[0], 2);
        ck_assert_uint_ne(S.done[7], 7);
        results_done(res, 8);
}
END_TEST

/* jobs 1: one after another, each done before the next starts */
START_TEST(test_one_job)
{
        struct mpf_map_result res[4] = {};
        _cleanup_(freep) size_t *contended = NULL;
        size_t n_contended;

        setup();
        ck_assert_int_eq(run(1, 4, res, &contended, &n_contended), 0);
        ck_assert_uint_eq(S.max_running, 1);
        for (size_t i = 0; i < 4; i++)
                ck_assert_uint_eq(S.done[i], i);
        results_done(res, 4);
}
END_TEST

/* No flush starts after the deadline: those maps are timeout at resolve, reported all the same. */
START_TEST(test_deadline_no_new_start)
{
        struct mpf_map_result res[8] = {};
        _cleanup_(freep) size_t *contended = NULL;
        size_t n_contended;

        setup();
        S.cost = 11 * USEC_PER_SEC; /* the third wait passes the 30 s deadline */
        ck_assert_int_eq(run(2, 8, res, &contended, &n_contended), 0);
        /* m0 m1 start; m0 ends at 11 s: m2; m1 ends at 22 s: m3; m2 ends at 33 s: none after */
        ck_assert_uint_eq(S.n_started, 4);
        for (size_t i = 4; i < 8; i++) {
                ck_assert_int_eq(res[i].result, MPF_RESULT_TIMEOUT);
                ck_assert_int_eq(res[i].step, MPF_STEP_RESOLVE);
                ck_assert_str_eq(res[i].map, maps8[i]);
                ck_assert_ptr_nonnull(strstr(res[i].reason, "deadline"));
        }
        ck_assert_int_eq(res[3].result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(S.n_done, 8);
        results_done(res, 8);
}
END_TEST

/* A map whose lock another flusher holds is set aside (no result, no done()); the others go on. */
START_TEST(test_contended_set_aside)
{
        struct mpf_map_result res[6] = {};
        _cleanup_(freep) size_t *contended = NULL;
        size_t n_contended;

        setup();
        S.lifo = true;
        S.contended[4] = S.contended[1] = true;
        ck_assert_int_eq(run(4, 6, res, &contended, &n_contended), 0);
        ck_assert_uint_eq(n_contended, 2);
        ck_assert_uint_eq(contended[0], 1); /* ascending: they run again in the order given */
        ck_assert_uint_eq(contended[1], 4);
        ck_assert_ptr_null(res[1].map);
        ck_assert_ptr_null(res[4].map);
        ck_assert_uint_eq(S.n_done, 4);
        for (size_t k = 0; k < S.n_done; k++)
                ck_assert(S.done[k] != 1 && S.done[k] != 4);
        results_done(res, 6);
}
END_TEST

START_TEST(test_start_fails)
{
        struct mpf_map_result res[3] = {};
        _cleanup_(freep) size_t *contended = NULL;
        size_t n_contended;

        setup();
        S.start_r[1] = -EAGAIN; /* fork() failed */
        ck_assert_int_eq(run(2, 3, res, &contended, &n_contended), 0);
        ck_assert_int_eq(res[1].result, MPF_RESULT_FAILED);
        ck_assert_ptr_nonnull(strstr(res[1].reason, "start"));
        ck_assert_int_eq(mpf_map_result_exit_code(&res[1]), MPF_EXIT_FAILED);
        ck_assert_int_eq(res[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(res[2].result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(S.n_done, 3);
        results_done(res, 3);
}
END_TEST

START_TEST(test_jobs_default)
{
        ck_assert_uint_eq(mpf_jobs_default(-1), MPF_JOBS_PER_CPU);
        ck_assert_uint_eq(mpf_jobs_default(1), MPF_JOBS_PER_CPU);
        ck_assert_uint_eq(mpf_jobs_default(2), 2 * MPF_JOBS_PER_CPU);
        ck_assert_uint_eq(mpf_jobs_default(64), MPF_JOBS_DEFAULT_MAX);
        ck_assert_uint_le(MPF_JOBS_DEFAULT_MAX, MPF_JOBS_MAX);
}
END_TEST

/* The run keeps lock fds only within half its fd limit, counting the maps still running. */
START_TEST(test_may_keep_locks)
{
        ck_assert(mpf_pool_may_keep_locks(0, 0, 1024));
        ck_assert(mpf_pool_may_keep_locks(512 - 16 * MPF_POOL_FDS_PER_MAP, 15, 1024));
        ck_assert(!mpf_pool_may_keep_locks(512 - 16 * MPF_POOL_FDS_PER_MAP + 1, 15, 1024));
        ck_assert(!mpf_pool_may_keep_locks(512, 0, 1024));
        ck_assert(!mpf_pool_may_keep_locks(600, 0, 1024)); /* no wrap-around past the budget */
        ck_assert(!mpf_pool_may_keep_locks(0, 0, 16));
        /* at a limit of 1024, about 120 two-path maps keep their locks, not ~330 that overflow it */
        ck_assert(!mpf_pool_may_keep_locks(3 * 170, 0, 1024));
}
END_TEST

/* An fd that cannot be received (RLIMIT_NOFILE reached) is not lost in silence: -EMFILE. */
START_TEST(test_fd_receive_emfile)
{
        int pair[2], status;
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl;
                char buf[4];
                int fd = -EBADF, lim, ok;
                ssize_t n;

                /* the lowest free fd is the limit: no fd can be received */
                lim = fcntl(pair[1], F_DUPFD, 0);
                close(lim);
                (void)getrlimit(RLIMIT_NOFILE, &rl);
                rl.rlim_cur = (rlim_t)lim;
                for (int i = lim; i < lim + 64; i++)
                        (void)close(i);
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(3);
                if (fd_send(pair[1], "L", 1, pair[1]) < 0)
                        _exit(4);
                n = fd_receive(pair[0], buf, sizeof(buf), &fd);
                ok = n == 1 && buf[0] == 'L' && fd == -EMFILE;
                /* with room again, the next one comes with its fd */
                rl.rlim_cur = (rlim_t)lim + 8;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
                if (fd_send(pair[1], "L", 1, pair[1]) < 0)
                        _exit(4);
                n = fd_receive(pair[0], buf, sizeof(buf), &fd);
                ok = ok && n == 1 && fd >= 0;
                _exit(ok ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        close(pair[0]);
        close(pair[1]);
}
END_TEST

/* The soft fd limit goes up to the hard one, or the cap below it. */
START_TEST(test_rlimit_nofile_raise)
{
        int status;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl;

                (void)getrlimit(RLIMIT_NOFILE, &rl);
                if (rl.rlim_max < 64)
                        _exit(2);
                rl.rlim_cur = 32;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rlimit_nofile_raise(48) < 0)
                        _exit(3);
                (void)getrlimit(RLIMIT_NOFILE, &rl);
                if (rl.rlim_cur != 48)
                        _exit(1);
                if (rlimit_nofile_raise(RLIM_INFINITY) < 0)
                        _exit(3);
                (void)getrlimit(RLIMIT_NOFILE, &rl);
                _exit(rl.rlim_cur == rl.rlim_max ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* What a worker sends is what the parent gets: every field but held_lock. */
START_TEST(test_result_round_trip)
{
        struct mpf_map_result a =
                                      {
                                              .devt = 0xfd03,
                                              .have_devt = true,
                                              .remove_seqnum = 4294967301ULL,
                                              .result = MPF_RESULT_BUSY,
                                              .step = MPF_STEP_IN_USE,
                                              .queueing_before = 1,
                                              .queueing_after = 0,
                                              .elapsed_ms = 1234,
                                              .waited_ms = 56,
                                              .attempts = 3,
                                              .partitions_lost = true,
                                              .data_lost = true,
                                              .failed_write_bytes = 4096,
                                              .stuck_worker = 4321,
                                      },
                              b = {};
        _cleanup_(freep) char *s = NULL;

        a.map = strdup("/dev/mapper/mpatha");
        a.name = strdup("mpatha");
        a.uuid = strdup("mpath-3600a");
        a.reason = strdup("in use: \"quoted\"\n");
        ck_assert_int_eq(strv_extend(&a.partitions, "mpatha-part1"), 0);
        ck_assert_int_eq(strv_extend(&a.plan, "lock: x"), 0);
        ck_assert_int_eq(strv_extend(&a.blockers.holders, "dm-9"), 0);
        ck_assert_int_eq(strv_extend(&a.blockers.holder_names, "vg-lv"), 0);
        ck_assert_int_eq(strv_extend(&a.blockers.swaps, "/dev/dm-4"), 0);
        ck_assert_int_eq(mpf_blockers_add_mount(&a.blockers, "mpatha-part1", "/mnt/a b", 77), 0);
        ck_assert_int_eq(mpf_blockers_add_opener(&a.blockers, 88, "sleep", "mpatha"), 0);
        /* one of our own: who it is travels with it */
        ck_assert_int_eq(mpf_blockers_add_opener(&a.blockers, 89, "mpath-flush-w", "mpatha"), 0);
        ck_assert_int_eq(
                mpf_blockers_mark_own(&a.blockers, 89, "mpatha", "a pool worker", "fd 7 -> /dev/dm-0"), 0);
        ck_assert_int_eq(mpf_blockers_add_kernel_user(&a.blockers, "loop", "loop0", "mpatha"), 0);
        a.blockers.unexplained_opens = 2;
        /* 7000 readers: one message, well within a SOCK_SEQPACKET socket's buffer (~212 KB) */
        for (int pid = 1000; pid < 8000; pid++)
                ck_assert_int_eq(mpf_blockers_add_opener(&a.blockers, pid, "a-long-command", "mpatha"), 0);

        ck_assert_int_eq(mpf_result_encode(&a, &s), 0);
        ck_assert_uint_lt(strlen(s), 32768);
        ck_assert_int_eq(mpf_result_decode(s, &b), 0);
        ck_assert_str_eq(b.map, a.map);
        ck_assert_str_eq(b.name, a.name);
        ck_assert_str_eq(b.uuid, a.uuid);
        ck_assert_str_eq(b.reason, a.reason);
        ck_assert(b.have_devt && b.devt == a.devt);
        /* the seqnum read before a pool worker's remove reaches the main process's wait */
        ck_assert_uint_eq(b.remove_seqnum, 4294967301ULL);
        ck_assert_int_eq(b.result, a.result);
        ck_assert_int_eq(b.step, a.step);
        ck_assert_int_eq(b.queueing_before, 1);
        ck_assert_int_eq(b.queueing_after, 0);
        ck_assert_uint_eq(b.elapsed_ms, 1234);
        ck_assert_uint_eq(b.waited_ms, 56);
        ck_assert_uint_eq(b.attempts, 3);
        ck_assert(!b.restore_failed && b.partitions_lost && b.data_lost && !b.lock_contended);
        ck_assert_uint_eq(b.failed_write_bytes, 4096);
        ck_assert_int_eq(b.stuck_worker, 4321);
        ck_assert(strv_contains(b.partitions, "mpatha-part1"));
        ck_assert(strv_contains(b.plan, "lock: x"));
        ck_assert(strv_contains(b.blockers.holders, "dm-9"));
        ck_assert(strv_contains(b.blockers.holder_names, "vg-lv"));
        ck_assert(strv_contains(b.blockers.swaps, "/dev/dm-4"));
        ck_assert_uint_eq(b.blockers.openers_omitted, 7002 - MPF_BLOCKERS_LIST_MAX);
        ck_assert_uint_eq(b.blockers.n_mounts, 1);
        ck_assert_str_eq(b.blockers.mounts[0].target, "/mnt/a b");
        ck_assert_str_eq(b.blockers.mounts[0].device, "mpatha-part1");
        ck_assert_int_eq(b.blockers.mounts[0].pid, 77);
        ck_assert_uint_eq(b.blockers.n_openers, MPF_BLOCKERS_LIST_MAX);
        ck_assert_str_eq(b.blockers.openers[0].comm, "sleep");
        ck_assert_ptr_null(b.blockers.openers[0].own);
        ck_assert_str_eq(b.blockers.openers[1].own, "a pool worker, fd 7 -> /dev/dm-0");
        ck_assert_uint_eq(b.blockers.n_kernel_users, 1);
        ck_assert_str_eq(b.blockers.kernel_users[0].kind, "loop");
        ck_assert_str_eq(b.blockers.kernel_users[0].name, "loop0");
        ck_assert_str_eq(b.blockers.kernel_users[0].device, "mpatha");
        ck_assert_uint_eq(b.blockers.unexplained_opens, 2);
        /* the text the JSON output and the log make from it is the same */
        {
                _cleanup_(freep) char *da = mpf_blockers_describe(&a.blockers);
                _cleanup_(freep) char *db = mpf_blockers_describe(&b.blockers);
                ck_assert_str_eq(da, db);
        }
        mpf_map_result_done(&b);

        /* NULL stays NULL, the flag travels */
        mpf_map_result_done(&a);
        a = (struct mpf_map_result){
                .result = MPF_RESULT_BUSY, .lock_contended = true, .queueing_before = -1};
        free(s);
        s = NULL;
        ck_assert_int_eq(mpf_result_encode(&a, &s), 0);
        ck_assert_int_eq(mpf_result_decode(s, &b), 0);
        ck_assert_ptr_null(b.map);
        ck_assert_ptr_null(b.partitions);
        ck_assert(!b.have_devt);
        ck_assert_uint_eq(b.remove_seqnum, 0);
        ck_assert(b.lock_contended);
        ck_assert_int_eq(b.queueing_before, -1);
        mpf_map_result_done(&b);

        ck_assert_int_eq(mpf_result_decode("{\"result\": 99}", &b), -EBADMSG);
        ck_assert_int_eq(mpf_result_decode("not json", &b), -EBADMSG);
}
END_TEST

static Suite *pool_suite(void)
{
        Suite *s = suite_create("pool");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_bounded_and_ordered);
        tcase_add_test(tc, test_one_job);
        tcase_add_test(tc, test_deadline_no_new_start);
        tcase_add_test(tc, test_contended_set_aside);
        tcase_add_test(tc, test_start_fails);
        tcase_add_test(tc, test_jobs_default);
        tcase_add_test(tc, test_result_round_trip);
        tcase_add_test(tc, test_may_keep_locks);
        tcase_add_test(tc, test_fd_receive_emfile);
        tcase_add_test(tc, test_rlimit_nofile_raise);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(pool_suite)
