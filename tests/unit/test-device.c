/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parts of the real device layer that need no device-mapper. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "macro.h"
#include <unistd.h>

#include "device.h"
#include "tests.h"

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

static Suite *device_suite(void)
{
        Suite *s = suite_create("device");
        TCase *tc = tcase_create("device");

        tcase_add_test(tc, test_close_all_but);
        tcase_add_test(tc, test_socket_listening);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(device_suite)
