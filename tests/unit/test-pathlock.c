/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The path lock worker, on ordinary files (no SCSI disk needed; the lab shows the open that waits
 * out error recovery, E7). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "pathlock.h"
#include "tests.h"

static void temp_file(char *p)
{
        int fd = mkstemp(p);

        ck_assert_int_ge(fd, 0);
        close(fd);
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        free(fds);
}

/* No child of ours is left: the worker exited and was reaped. */
static void assert_no_child(void)
{
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
}

/* The worker locks each path (a missing one is skipped) and hands the locks over: we hold them,
 * with descriptors of our own, and no process is left; closing ours lets go. */
START_TEST(test_take_hands_locks_over)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX", link[64], target[64] = "";
        char *paths[] = {a, (char *)"/tmp/mpf-test-pl-none", b, NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;
        ssize_t k;

        temp_file(a);
        temp_file(b);
        ck_assert_int_eq(mpf_pathlock_take(paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck),
                         0);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert_uint_eq(n, 2);
        assert_no_child();
        ck_assert(!flock_free(a));
        ck_assert(!flock_free(b));
        /* in order, and really ours */
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[0]);
        k = readlink(link, target, sizeof(target) - 1);
        ck_assert_int_gt(k, 0);
        target[k] = 0;
        ck_assert_str_eq(target, a);
        ck_assert_int_ge(fcntl(fds[1], F_GETFD), 0);
        ck_assert(fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
        close_fds(fds, n);
        ck_assert(flock_free(a));
        ck_assert(flock_free(b));
        unlink(a);
        unlink(b);
}
END_TEST

/* A path locked by someone else (multipathd creating the map) until the deadline: -ETIMEDOUT, the
 * worker killed (it was waiting, not stuck, so not named), nothing left locked, not even the path
 * it had locked and handed over already. */
START_TEST(test_timeout_when_held)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, b, NULL};
        struct mpf_stuck stuck;
        _cleanup_(closep) int other = -EBADF;
        int *fds = NULL;
        size_t n = 0;
        usec_t t;

        temp_file(a);
        temp_file(b);
        other = open(b, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_pathlock_take(paths, 2, t + 200 * USEC_PER_MSEC, &fds, &n, &stuck), -ETIMEDOUT);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert_uint_ge(now_monotonic(), t + 200 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert(flock_free(a));
        assert_no_child();
        unlink(a);
        unlink(b);
}
END_TEST

/* A deadline already past: no worker at all. */
START_TEST(test_deadline_passed)
{
        char *paths[] = {(char *)"/dev/null", NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;

        ck_assert_int_eq(mpf_pathlock_take(paths, 1, now_monotonic() - 1, &fds, &n, &stuck), -ETIMEDOUT);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
}
END_TEST

/* An open that fails (not a missing node) is passed up; what was locked before is let go. */
START_TEST(test_open_error)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, (char *)"/proc/self/mem/x", NULL};
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 0;

        temp_file(a);
        ck_assert_int_eq(mpf_pathlock_take(paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &stuck),
                         -ENOTDIR);
        ck_assert_ptr_null(fds);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert(flock_free(a));
        assert_no_child();
        unlink(a);
}
END_TEST

/* No path device: nothing to lock, and no worker. */
START_TEST(test_no_paths)
{
        struct mpf_stuck stuck;
        int *fds = NULL;
        size_t n = 1;

        ck_assert_int_eq(mpf_pathlock_take(NULL, 0, now_monotonic() + USEC_PER_SEC, &fds, &n, &stuck), 0);
        ck_assert_uint_eq(n, 0);
        free(fds);
}
END_TEST

/* What the fake worker below does to each request before it serves it. */
enum mangle {
        MANGLE_NONE,
        MANGLE_CUT,      /* one byte short: the last path has no NUL */
        MANGLE_COUNT_0,  /* names no path */
        MANGLE_COUNT_UP, /* says one path more than it holds */
        MANGLE_TRAILING, /* a byte after the last path */
        MANGLE_LATER,    /* its deadline 10 s later: the worker outlasts us */
};

/* The test is the helper, and a child of ours the worker: it serves each request it receives with
 * mpf_pathlock_serve() (after mangling it), and exits with the number of requests it saw when its
 * socket closes. Returns its pid; *ret_sock is our end. */
static pid_t fake_worker(enum mangle how, int *ret_sock)
{
        int pair[2];
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char q[MPF_PATHLOCK_REQUEST_MAX + 1];
                int requests = 0;
                uint32_t count;

                close(pair[0]);
                for (;;) {
                        ssize_t k = recv(pair[1], q, sizeof(q) - 1, 0);

                        if (k <= 0)
                                _exit(k == 0 ? requests : 255);
                        requests++;
                        memcpy(&count, q + 1 + sizeof(usec_t), sizeof(count));
                        if (how == MANGLE_CUT)
                                k--;
                        else if (how == MANGLE_COUNT_0)
                                count = 0;
                        else if (how == MANGLE_COUNT_UP)
                                count++;
                        else if (how == MANGLE_TRAILING)
                                q[k++] = 'x';
                        else if (how == MANGLE_LATER) {
                                usec_t d;

                                memcpy(&d, q + 1, sizeof(d));
                                d += 10 * USEC_PER_SEC;
                                memcpy(q + 1, &d, sizeof(d));
                        }
                        memcpy(q + 1 + sizeof(usec_t), &count, sizeof(count));
                        if (mpf_pathlock_serve(pair[1], q, (size_t)k) < 0)
                                _exit(254);
                }
        }
        close(pair[1]);
        *ret_sock = pair[0];
        return pid;
}

/* Close our end and reap the fake worker: the number of requests it received. */
static int fake_worker_end(pid_t pid, int sock)
{
        int st;

        close(sock);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        return WEXITSTATUS(st);
}

/* An inotify watch for opens of path: the fd to read with opened(). */
static int watch_opens(const char *path)
{
        int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(inotify_add_watch(fd, path, IN_OPEN), 0);
        return fd;
}

static bool opened(int watch)
{
        char buf[4096];

        return read(watch, buf, sizeof(buf)) > 0;
}

static char *must_strdup(const char *s)
{
        char *d = strdup(s);

        ck_assert_ptr_nonnull(d);
        return d;
}

/* A path of about len bytes naming the same file as p ("/./" repeated), so that a few paths fill
 * a request. */
static char *long_path(const char *p, size_t len)
{
        const char *slash = strrchr(p, '/');
        size_t dir = (size_t)(slash - p), pad = len > strlen(p) ? (len - strlen(p)) / 2 : 0;
        char *l = malloc(strlen(p) + 2 * pad + 1), *w = l;

        ck_assert_ptr_nonnull(l);
        memcpy(w, p, dir);
        w += dir;
        for (size_t i = 0; i < pad; i++, w += 2)
                memcpy(w, "/.", 2);
        strcpy(w, slash);
        return l;
}

/* A map's paths cost one request, whatever is missing among them: the answers for a, the gone one
 * and b come back in order, and we hold a and b. */
START_TEST(test_one_request_a_map)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, (char *)"/tmp/mpf-test-pl-none", b, NULL};
        bool answered = false;
        size_t n = 0, at = 99;
        int *fds = NULL, sock;
        pid_t w;

        temp_file(a);
        temp_file(b);
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         0);
        ck_assert(answered);
        ck_assert_uint_eq(n, 2);
        ck_assert(!flock_free(a) && !flock_free(b));
        ck_assert_int_eq(fake_worker_end(w, sock), 1);
        close_fds(fds, n);
        ck_assert(flock_free(a) && flock_free(b));
        unlink(a);
        unlink(b);
}
END_TEST

/* The 2nd of 3 paths fails to open: the error comes back, the 1st (locked and handed over
 * already) is let go, and the 3rd is never opened. The worker answered in full, so it stays. */
START_TEST(test_failure_stops_the_rest)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", c[] = "/tmp/mpf-test-pl-XXXXXX", bad[64];
        char *paths[] = {a, bad, c, NULL};
        _cleanup_(closep) int watch_a = -EBADF, watch_c = -EBADF;
        bool answered = false;
        size_t n = 0, at = 99;
        int *fds = NULL, sock;
        pid_t w;

        temp_file(a);
        temp_file(c);
        snprintf(bad, sizeof(bad), "%s/x", a); /* a is no directory */
        watch_a = watch_opens(a);
        watch_c = watch_opens(c);
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         -ENOTDIR);
        ck_assert(answered);
        ck_assert(opened(watch_a)); /* the watch sees opens */
        ck_assert(!opened(watch_c));
        ck_assert(flock_free(a));
        /* the worker is idle again: it serves the next request */
        paths[1] = c;
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         0);
        ck_assert_uint_eq(n, 2);
        close_fds(fds, n);
        ck_assert_int_eq(fake_worker_end(w, sock), 2);
        unlink(a);
        unlink(c);
}
END_TEST

/* Paths that do not fit in one request go in several, each sent once the one before is answered:
 * all are locked in order. An error in the second lets go of what the first locked; an error in
 * the first means the second is never sent. */
START_TEST(test_split_request)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX",
             c[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[5] = {}, link[64], target[64];
        _cleanup_(closep) int watch_c = -EBADF;
        bool answered = false;
        size_t n = 0, at = 99;
        int *fds = NULL, sock;
        ssize_t k;
        pid_t w;

        temp_file(a);
        temp_file(b);
        temp_file(c);
        /* two fit in a request, not three */
        paths[0] = long_path(a, MPF_PATHLOCK_REQUEST_MAX / 3);
        paths[1] = long_path("/tmp/mpf-test-pl-none", MPF_PATHLOCK_REQUEST_MAX / 3);
        paths[2] = long_path(b, MPF_PATHLOCK_REQUEST_MAX / 3);
        paths[3] = long_path(c, MPF_PATHLOCK_REQUEST_MAX / 3);
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 4, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         0);
        ck_assert(answered);
        ck_assert_uint_eq(n, 3);
        ck_assert(!flock_free(a) && !flock_free(b) && !flock_free(c));
        for (size_t i = 0; i < n; i++) {
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
                k = readlink(link, target, sizeof(target) - 1);
                ck_assert_int_gt(k, 0);
                target[k] = 0;
                ck_assert_str_eq(target, i == 0 ? a : i == 1 ? b : c);
        }
        close_fds(fds, n);
        ck_assert_int_eq(fake_worker_end(w, sock), 2);

        /* the second request fails: a and b, locked by the first, are let go */
        free(paths[3]);
        paths[3] = must_strdup("/proc/self/mem/x");
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 4, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         -ENOTDIR);
        ck_assert(answered);
        ck_assert_int_eq(fake_worker_end(w, sock), 2);
        ck_assert(flock_free(a) && flock_free(b));

        /* the first request fails: the second is not sent, c is never opened */
        free(paths[3]);
        paths[3] = long_path(c, MPF_PATHLOCK_REQUEST_MAX / 3);
        free(paths[1]);
        paths[1] = must_strdup("/proc/self/mem/x");
        watch_c = watch_opens(c);
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 4, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         -ENOTDIR);
        ck_assert_int_eq(fake_worker_end(w, sock), 1);
        ck_assert(!opened(watch_c));
        ck_assert(flock_free(a));
        for (size_t i = 0; i < 4; i++)
                free(paths[i]);
        unlink(a);
        unlink(b);
        unlink(c);
}
END_TEST

/* A path too long for any request: nothing is sent, nothing opened, the worker stays idle. */
START_TEST(test_path_too_long)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, NULL, NULL};
        bool answered = false;
        size_t n = 0, at = 99;
        int *fds = NULL, sock;
        pid_t w;

        temp_file(a);
        paths[1] = long_path(a, MPF_PATHLOCK_REQUEST_MAX);
        w = fake_worker(MANGLE_NONE, &sock);
        ck_assert_int_eq(mpf_pathlock_request(sock, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n,
                                              &answered, &at),
                         -ENAMETOOLONG);
        ck_assert(answered);
        ck_assert_int_eq(fake_worker_end(w, sock), 0);
        free(paths[1]);
        unlink(a);
}
END_TEST

/* A request that is not well formed is answered -EBADMSG, in full (the worker stays in step with
 * us), and opens nothing. */
START_TEST(test_malformed_request)
{
        static const enum mangle how[] = {MANGLE_CUT, MANGLE_COUNT_0, MANGLE_COUNT_UP, MANGLE_TRAILING};
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, b, NULL};
        _cleanup_(closep) int watch = -EBADF;

        temp_file(a);
        temp_file(b);
        watch = watch_opens(a);
        for (size_t i = 0; i < ELEMENTSOF(how); i++) {
                bool answered = false;
                size_t n = 0, at = 99;
                int *fds = NULL, sock;
                pid_t w = fake_worker(how[i], &sock);

                ck_assert_msg(mpf_pathlock_request(sock, paths, 2, now_monotonic() + 5 * USEC_PER_SEC, &fds,
                                                   &n, &answered, &at) == -EBADMSG,
                              "case %zu", i);
                ck_assert_msg(answered, "case %zu", i);
                ck_assert_ptr_null(fds);
                ck_assert_int_eq(fake_worker_end(w, sock), 1);
                ck_assert_msg(!opened(watch), "case %zu", i);
        }
        unlink(a);
        unlink(b);
}
END_TEST

/* The worker is still waiting for the 2nd path's lock at our deadline: -ETIMEDOUT, it did not
 * answer as asked, and we know it was busy with the 2nd path (the stuck report names it); the
 * 1st, handed over already, is let go. */
START_TEST(test_busy_with_which_path)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, b, NULL};
        _cleanup_(closep) int other = -EBADF;
        bool answered = true;
        size_t n = 0, at = 99;
        int *fds = NULL, sock;
        usec_t t;
        pid_t w;

        temp_file(a);
        temp_file(b);
        other = open(b, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(flock(other, LOCK_SH | LOCK_NB), 0);
        w = fake_worker(MANGLE_LATER, &sock);
        t = now_monotonic();
        ck_assert_int_eq(
                mpf_pathlock_request(sock, paths, 2, t + 200 * USEC_PER_MSEC, &fds, &n, &answered, &at),
                -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);
        ck_assert(!answered);
        ck_assert_uint_eq(at, 1);
        ck_assert_ptr_null(fds);
        ck_assert(flock_free(a));
        (void)kill(w, SIGKILL);
        close(sock);
        ck_assert_int_eq(waitpid(w, NULL, 0), w);
        unlink(a);
        unlink(b);
}
END_TEST

/* More paths than we have room for descriptors: the one we cannot receive is -EMFILE, the worker
 * (whose next answers we would misread) is abandoned, and nothing stays locked. */
START_TEST(test_more_paths_than_fds)
{
        char a[] = "/tmp/mpf-test-pl-XXXXXX", b[] = "/tmp/mpf-test-pl-XXXXXX",
             c[] = "/tmp/mpf-test-pl-XXXXXX";
        char *paths[] = {a, b, c, NULL};
        bool answered = true;
        size_t n = 0, at = 99;
        int *fds = NULL, sock, lowest, r;
        struct rlimit rl;
        pid_t w;

        temp_file(a);
        temp_file(b);
        temp_file(c);
        w = fake_worker(MANGLE_NONE, &sock);
        lowest = fcntl(sock, F_DUPFD_CLOEXEC, 0);
        ck_assert_int_ge(lowest, 0);
        close(lowest);
        /* room for one more descriptor: a's */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &(struct rlimit){.rlim_cur = (rlim_t)lowest + 1,
                                                                   .rlim_max = rl.rlim_max}),
                         0);
        r = mpf_pathlock_request(sock, paths, 3, now_monotonic() + 5 * USEC_PER_SEC, &fds, &n, &answered,
                                 &at);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(r, -EMFILE);
        ck_assert(!answered);
        ck_assert_uint_eq(at, 1);
        ck_assert_int_eq(fcntl(lowest, F_GETFD), -1); /* a's descriptor is closed again */
        /* as mpf_syncer_lock_paths() abandons it */
        (void)kill(w, SIGKILL);
        close(sock);
        ck_assert_int_eq(waitpid(w, NULL, 0), w);
        ck_assert(flock_free(a) && flock_free(b) && flock_free(c));
        unlink(a);
        unlink(b);
        unlink(c);
}
END_TEST

static Suite *pathlock_suite(void)
{
        Suite *s = suite_create("pathlock");
        TCase *tc = tcase_create("pathlock");

        tcase_add_test(tc, test_take_hands_locks_over);
        tcase_add_test(tc, test_timeout_when_held);
        tcase_add_test(tc, test_deadline_passed);
        tcase_add_test(tc, test_open_error);
        tcase_add_test(tc, test_no_paths);
        tcase_add_test(tc, test_one_request_a_map);
        tcase_add_test(tc, test_failure_stops_the_rest);
        tcase_add_test(tc, test_split_request);
        tcase_add_test(tc, test_path_too_long);
        tcase_add_test(tc, test_malformed_request);
        tcase_add_test(tc, test_busy_with_which_path);
        tcase_add_test(tc, test_more_paths_than_fds);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(pathlock_suite)
