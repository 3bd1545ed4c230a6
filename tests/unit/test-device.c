/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parts of the real device layer that need no device-mapper. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "macro.h"
#include <unistd.h>

#include "device.h"
#include "lock.h"
#include "usage.h"
#include "tests.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The write-back worker keeps nothing but its socket: an abandoned worker must not hold our flocks. */
START_TEST(test_close_all_but)
{
        int a = open("/dev/null", O_RDONLY | O_CLOEXEC), keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int b = open("/dev/null", O_RDONLY | O_CLOEXEC), st;
        pid_t pid;

        ck_assert_int_ge(a, 3);
        ck_assert_int_gt(keep, a);
        ck_assert_int_gt(b, keep);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close_all_but(keep);
                if (fcntl(keep, F_GETFD) < 0)
                        _exit(1);
                if (fcntl(a, F_GETFD) >= 0 || fcntl(b, F_GETFD) >= 0)
                        _exit(2);
                if (fcntl(STDERR_FILENO, F_GETFD) < 0)
                        _exit(3);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        close(a);
        close(b);
        close(keep);
}
END_TEST

/* fork_with_socket()'s child hygiene: stdio on /dev/null, nothing else of ours but its socket,
 * default dispositions, and blocked only what the run holds back (a signal sent to the process
 * group, such as SIGTERM, must not end a worker; another blocked one, SIGUSR1, is let through); the
 * two ends talk. */
START_TEST(test_fork_with_socket)
{
        int other = open("/dev/null", O_RDONLY | O_CLOEXEC), sock = -EBADF, st;
        sigset_t mask, old;
        char byte = 0;
        pid_t pid;

        ck_assert_int_ge(other, 3);
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &mask, &old), 0);
        ck_assert(signal(SIGHUP, SIG_IGN) != SIG_ERR);
        pid = fork_with_socket(FORK_NULL_STDIO | FORK_CLOSE_FDS | FORK_RESET_SIGNALS, &sock);
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char target[64] = "";
                sigset_t now;
                struct sigaction sa;

                if (fcntl(other, F_GETFD) >= 0 || fcntl(sock, F_GETFD) < 0)
                        _exit(1);
                if (readlink("/proc/self/fd/2", target, sizeof(target) - 1) <= 0 ||
                    strcmp(target, "/dev/null") != 0)
                        _exit(2);
                if (sigprocmask(SIG_SETMASK, NULL, &now) < 0 || !sigismember(&now, SIGTERM) ||
                    !sigismember(&now, SIGINT) || sigismember(&now, SIGUSR1))
                        _exit(3);
                if (sigaction(SIGHUP, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
                        _exit(4);
                if (send(sock, "k", 1, 0) != 1)
                        _exit(5);
                _exit(0);
        }
        ck_assert_int_eq(recv(sock, &byte, 1, 0), 1);
        ck_assert_int_eq(byte, 'k');
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
        signal(SIGHUP, SIG_DFL);
        close(sock);
        close(other);
}
END_TEST

/* Run check() in a child of its own with stdin and stdout closed; it answers with its exit
 * status, 0 for success. */
static void with_stdio_closed(int (*check)(void))
{
        pid_t pid = fork();
        int st;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void)close(STDIN_FILENO);
                (void)close(STDOUT_FILENO);
                _exit(check());
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
}

/* The socket's ends would land on 0 and 1, where the child's /dev/null goes; they do not, and
 * the two ends still talk. */
static int fork_with_socket_closed_stdio(void)
{
        int sock = -EBADF, st;
        char byte = 0;
        pid_t pid;

        pid = fork_with_socket(FORK_NULL_STDIO | FORK_CLOSE_FDS, &sock);
        if (pid < 0)
                return 10;
        if (pid == 0)
                _exit(sock >= 3 && send(sock, "k", 1, 0) == 1 ? 0 : 1);
        if (sock < 3)
                return 11;
        if (recv(sock, &byte, 1, 0) != 1 || byte != 'k')
                return 12;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return 13;
        return 0;
}

START_TEST(test_fork_with_socket_closed_stdio)
{
        with_stdio_closed(fork_with_socket_closed_stdio);
}
END_TEST

/* stdio_fill_null(): the closed ones get /dev/null; the next open lands above 2. */
static int stdio_filled(void)
{
        char target[64] = "";

        if (stdio_fill_null() < 0)
                return 1;
        if (readlink("/proc/self/fd/1", target, sizeof(target) - 1) <= 0 || strcmp(target, "/dev/null") != 0)
                return 2;
        if (fcntl(STDIN_FILENO, F_GETFD) < 0)
                return 3;
        return open("/dev/null", O_RDONLY | O_CLOEXEC) > 2 ? 0 : 4;
}

START_TEST(test_stdio_fill_null)
{
        with_stdio_closed(stdio_filled);
}
END_TEST

/* waitpid_until(): a child that does not exit is not waited for past the bound; one that does is
 * reaped, with its status. */
START_TEST(test_waitpid_until)
{
        pid_t pid = fork();
        usec_t t;
        int st = 0;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void)pause();
                _exit(3);
        }
        t = now_monotonic();
        ck_assert_int_eq(waitpid_until(pid, &st, t + 50 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic() - t, 50 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic() - t, 2 * USEC_PER_SEC);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid_until(pid, &st, now_monotonic() + 10 * USEC_PER_SEC), 0);
        ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        ck_assert_int_eq(waitpid_until(pid, &st, now_monotonic() + 10 * USEC_PER_SEC), -ECHILD);
}
END_TEST

/* A socket file left behind by a killed udevd does not count as a running udevd. */
START_TEST(test_socket_listening)
{
        char dir[] = "/tmp/mpf-test-sock-XXXXXX", path[128];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/control", dir);
        ck_assert(!mpf_socket_listening(path)); /* no file */
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert(!mpf_socket_listening(path)); /* bound, not listening */
        ck_assert_int_eq(listen(fd, 4), 0);
        ck_assert(mpf_socket_listening(path));
        close(fd);
        ck_assert(!mpf_socket_listening(path)); /* stale file */
        unlink(path);
        rmdir(dir);
}
END_TEST

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* The path devices are listed once the map lock is ours: a path added while another flusher held
 * the map lock is locked too. (/dev/null and /dev/zero stand in for the path devices.) */
START_TEST(test_lock_lists_paths_after_map_lock)
{
        char dir[] = "/tmp/mpf-test-dev-XXXXXX", p[512], run[64], sys[64];
        struct mpf_dm_info map = {.exists = true, .name = "mpatha", .uuid = "mpath-3600a"};
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        struct mpf_ops ops;
        struct mpf_stuck stuck;
        void *lock = NULL;
        int ready[2], st;
        char c;
        pid_t pid;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(sys, sizeof(sys), "%s/sys", dir);
        snprintf(run, sizeof(run), "%s/run", dir);
        map.devt = makedev(254, 0);
        ck_assert_int_eq(mkdir(sys, 0755), 0);
        snprintf(p, sizeof(p), "%s/dev", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/dev/block", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/dev/block/254:0", sys);
        ck_assert_int_eq(symlink("../../block/dm-0", p), 0);
        snprintf(p, sizeof(p), "%s/block", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/block/dm-0", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/block/dm-0/slaves", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/block/dm-0/slaves/null", sys);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/block/dm-0/slaves/null/dev", sys);
        write_file(p, "1:3\n");
        ck_assert_int_eq(setenv(MPF_SYSFS_ENV, sys, 1), 0);
        ck_assert_int_eq(setenv(MPF_RUNDIR_ENV, run, 1), 0);

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd;

                /* another flusher: holds the map lock while a path is added */
                if (mpf_lock_map(run, map.uuid, false, now_monotonic() + 5 * USEC_PER_SEC, &fd) < 0)
                        _exit(1);
                if (write(ready[1], "x", 1) != 1)
                        _exit(2);
                sleep_until(now_monotonic() + 200 * USEC_PER_MSEC);
                snprintf(p, sizeof(p), "%s/block/dm-0/slaves/zero", sys);
                if (mkdir(p, 0755) < 0)
                        _exit(3);
                snprintf(p, sizeof(p), "%s/block/dm-0/slaves/zero/dev", sys);
                write_file(p, "1:5\n");
                _exit(0);
        }
        close(ready[1]);
        ck_assert_int_eq(read(ready[0], &c, 1), 1);
        close(ready[0]);

        ck_assert_int_eq(mpf_device_new(false, &d), 0);
        mpf_device_ops(d, &ops);
        ck_assert_int_eq(
                ops.lock(ops.userdata, &map, false, now_monotonic() + 5 * USEC_PER_SEC, &lock, &stuck), 0);
        ck_assert_int_eq(stuck.pid, 0);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        /* both held (by the path lock worker), and let go with the map's locks */
        ck_assert(!flock_free("/dev/null"));
        ck_assert(!flock_free("/dev/zero"));
        ops.unlock(ops.userdata, lock);
        ck_assert(flock_free("/dev/null"));
        ck_assert(flock_free("/dev/zero"));
        ck_assert_int_eq(unsetenv(MPF_SYSFS_ENV), 0);
        ck_assert_int_eq(unsetenv(MPF_RUNDIR_ENV), 0);
}
END_TEST

/* The fork hook (mpf_device_forked()): a pool worker's scan is its own. An fd it holds of the
 * device is named as the pool worker's that flushes it, the same fd in its parent (the run) as the
 * run's main process's, over the real /proc. (/dev/null stands in for the map.) */
START_TEST(test_forked_scans_as_itself)
{
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        _cleanup_(closep) int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int st;
        pid_t pid;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(mpf_device_new(false, &d), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct mpf_target t = {.name = "null", .kname = "null"};
                struct mpf_blockers b = {};
                struct mpf_ops ops;
                unsigned explained = 0;
                int found = 0;

                mpf_device_forked(d);
                mpf_device_ops(d, &ops);
                if (ops.scan_usage(ops.userdata, &t, 1, USEC_INFINITY, &b, &explained) < 0)
                        _exit(1);
                for (size_t i = 0; i < b.n_openers; i++) {
                        const char *own = b.openers[i].own;

                        if (b.openers[i].pid == getpid() && own &&
                            startswith(own, "the pool worker that flushes it, fd "))
                                found |= 1;
                        if (b.openers[i].pid == getppid() && own &&
                            startswith(own, "the run's main process, fd "))
                                found |= 2;
                }
                mpf_blockers_done(&b);
                _exit(found == 3 ? 0 : 10 + found);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* A pool worker forked while the run keeps the locks of maps other workers removed (until its
 * udev wait) closes its copies of them: the flocks stay the run's alone, and go when it lets go. A
 * lock the run released before the fork is not the worker's business (its fd numbers may be
 * anything by then). (Temporary files stand in for the map lock and a path device.) */
START_TEST(test_forked_closes_adopted_locks)
{
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        char a[] = "/tmp/mpf-test-adopt-XXXXXX", b[] = "/tmp/mpf-test-adopt-XXXXXX";
        int fds[2], st;
        struct mpf_ops ops;
        void *lock = NULL;
        pid_t pid;

        fds[0] = mkostemp(a, O_CLOEXEC);
        fds[1] = mkostemp(b, O_CLOEXEC);
        ck_assert_int_ge(fds[0], 0);
        ck_assert_int_ge(fds[1], 0);
        ck_assert_int_eq(flock(fds[0], LOCK_EX), 0);
        ck_assert_int_eq(flock(fds[1], LOCK_EX), 0);
        ck_assert_int_eq(mpf_device_new(false, &d), 0);
        mpf_device_ops(d, &ops);
        ck_assert_int_eq(mpf_device_lock_adopt(d, "mpath-3600a", fds, 2, &lock), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                mpf_device_forked(d);
                _exit(fcntl(fds[0], F_GETFD) < 0 && fcntl(fds[1], F_GETFD) < 0 ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        /* still ours, and locked, until released */
        ck_assert_int_ge(fcntl(fds[0], F_GETFD), 0);
        ck_assert(!flock_free(a));
        ops.unlock(ops.userdata, lock);
        ck_assert(flock_free(a));
        ck_assert(flock_free(b));
        /* released before the fork: the fd numbers are not touched in the worker */
        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                mpf_device_forked(d);
                _exit(fcntl(fds[0], F_GETFD) >= 0 ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        close(fds[0]);
        unlink(a);
        unlink(b);
}
END_TEST

/* Only a "remove" of the map's devt with a SEQNUM above the one read before our remove is ours:
 * an older one (another flusher removed a map that had this minor before) does not end the wait,
 * and one event ends the wait of one map only. Seqnum 0 (unreadable): any remove of the devt. */
START_TEST(test_removed_match_seqnum)
{
        const struct mpf_removed maps[] = {
                {makedev(254, 7), 500},
                {makedev(254, 7), 0},
                {makedev(254, 8), 500},
        };
        bool seen[3] = {};

        ck_assert(!mpf_removed_matches(&maps[0], makedev(254, 7), 499));
        ck_assert(!mpf_removed_matches(&maps[0], makedev(254, 7), 500));
        ck_assert(mpf_removed_matches(&maps[0], makedev(254, 7), 501));
        ck_assert(!mpf_removed_matches(&maps[0], makedev(254, 8), 501));
        ck_assert(mpf_removed_matches(&maps[1], makedev(254, 7), 1));

        /* a stale event of 254:7 marks the one entry that takes any event, not the other */
        ck_assert_uint_eq(mpf_removed_mark(maps, seen, 3, makedev(254, 7), 400), 1);
        ck_assert(!seen[0] && seen[1] && !seen[2]);
        ck_assert_uint_eq(mpf_removed_mark(maps, seen, 3, makedev(254, 7), 450), 0);
        ck_assert(!seen[0]);
        ck_assert_uint_eq(mpf_removed_mark(maps, seen, 3, makedev(254, 8), 300), 0);
        ck_assert_uint_eq(mpf_removed_mark(maps, seen, 3, makedev(254, 7), 501), 1);
        ck_assert(seen[0] && !seen[2]);

        /* two maps waiting for an event of 254:7: one event ends one wait */
        seen[0] = seen[1] = false;
        ck_assert_uint_eq(mpf_removed_mark(maps, seen, 3, makedev(254, 7), 600), 1);
        ck_assert_uint_eq(seen[0] + seen[1], 1);
}
END_TEST

START_TEST(test_uevent_seqnum)
{
        char dir[] = "/tmp/mpf-test-sysXXXXXX", p[PATH_MAX];
        uint64_t s = 0;
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(mpf_uevent_seqnum(dir, &s), -ENOENT);
        (void)snprintf(p, sizeof(p), "%s/kernel", dir);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        (void)snprintf(p, sizeof(p), "%s/kernel/uevent_seqnum", dir);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs("123456789012\n", f);
        fclose(f);
        ck_assert_int_eq(mpf_uevent_seqnum(dir, &s), 0);
        ck_assert_uint_eq(s, 123456789012ULL);
        f = fopen(p, "we");
        fputs("x\n", f);
        fclose(f);
        ck_assert_int_eq(mpf_uevent_seqnum(dir, &s), -EINVAL);
        unlink(p);
        (void)snprintf(p, sizeof(p), "%s/kernel", dir);
        rmdir(p);
        rmdir(dir);
}
END_TEST

/* Events lost: udev deletes the database entry before it runs the remove's rules, so the entry's
 * absence is not enough while udev's queue file says an event is queued or running. */
START_TEST(test_udev_removal_settled)
{
        char dir[] = "/tmp/mpf-test-udevXXXXXX", data[PATH_MAX], entry[PATH_MAX], queue[PATH_MAX];
        dev_t devt = makedev(254, 7);
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        (void)snprintf(data, sizeof(data), "%s/data", dir);
        (void)snprintf(entry, sizeof(entry), "%s/data/b254:7", dir);
        (void)snprintf(queue, sizeof(queue), "%s/queue", dir);
        ck_assert_int_eq(mkdir(data, 0755), 0);
        fd = open(entry, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        fd = open(queue, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);

        ck_assert(!mpf_udev_removal_settled(dir, devt)); /* entry there, queue busy */
        ck_assert_int_eq(unlink(entry), 0);
        ck_assert(!mpf_udev_removal_settled(dir, devt)); /* entry gone, rules still running */
        ck_assert_int_eq(unlink(queue), 0);
        ck_assert(mpf_udev_removal_settled(dir, devt));
        fd = open(entry, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert(!mpf_udev_removal_settled(dir, devt)); /* queue idle, entry there (re-created) */
        unlink(entry);
        rmdir(data);
        rmdir(dir);
}
END_TEST

static Suite *device_suite(void)
{
        Suite *s = suite_create("device");
        TCase *tc = tcase_create("device");

        tcase_add_test(tc, test_close_all_but);
        tcase_add_test(tc, test_fork_with_socket);
        tcase_add_test(tc, test_fork_with_socket_closed_stdio);
        tcase_add_test(tc, test_waitpid_until);
        tcase_add_test(tc, test_stdio_fill_null);
        tcase_add_test(tc, test_socket_listening);
        tcase_add_test(tc, test_removed_match_seqnum);
        tcase_add_test(tc, test_uevent_seqnum);
        tcase_add_test(tc, test_udev_removal_settled);
        tcase_add_test(tc, test_lock_lists_paths_after_map_lock);
        tcase_add_test(tc, test_forked_scans_as_itself);
        tcase_add_test(tc, test_forked_closes_adopted_locks);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(device_suite)
