/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "mpathd.h"
#include "tests.h"

static usec_t soon(void)
{
        return now_monotonic() + 2 * USEC_PER_SEC;
}

static void raw_send(int fd, size_t len, const void *data, size_t n)
{
        ck_assert_int_eq(write(fd, &len, sizeof(len)), (ssize_t)sizeof(len));
        if (n > 0)
                ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
}

START_TEST(test_framing)
{
        int sv[2];
        size_t len = 0;
        char buf[64] = {};
        _cleanup_(freep) char *reply = NULL;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(mpathd_send(sv[0], "show maps", soon()), 0);
        ck_assert_int_eq(read(sv[1], &len, sizeof(len)), (ssize_t)sizeof(len));
        ck_assert_uint_eq(len, strlen("show maps") + 1); /* includes the NUL */
        ck_assert_int_eq(read(sv[1], buf, len), (ssize_t)len);
        ck_assert_str_eq(buf, "show maps");
        ck_assert_int_eq(buf[len - 1], 0);

        raw_send(sv[1], 4, "ok\n", 4);
        ck_assert_int_eq(mpathd_recv(sv[0], &reply, soon()), 0);
        ck_assert_str_eq(reply, "ok\n");
        ck_assert_int_eq(mpathd_reply_result(reply), 0);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_recv_errors)
{
        int sv[2];
        char *reply = NULL;
        usec_t t;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        raw_send(sv[1], 0, NULL, 0);
        ck_assert_int_eq(mpathd_recv(sv[0], &reply, soon()), -EBADMSG);
        raw_send(sv[1], MPATHD_REPLY_MAX + 1, NULL, 0);
        ck_assert_int_eq(mpathd_recv(sv[0], &reply, soon()), -EBADMSG);

        /* nothing arrives: bounded by the deadline */
        t = now_monotonic();
        ck_assert_int_eq(mpathd_recv(sv[0], &reply, t + 50 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic(), t + 50 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 2 * USEC_PER_SEC);

        /* a reply without its NUL is still terminated; a short one is an error */
        raw_send(sv[1], 10, "fail", 4);
        close(sv[1]);
        ck_assert_int_eq(mpathd_recv(sv[0], &reply, soon()), -ECONNRESET);
        ck_assert_ptr_null(reply);
        close(sv[0]);
}
END_TEST

START_TEST(test_reply_result)
{
        ck_assert_int_eq(mpathd_reply_result("ok\n"), 0);
        ck_assert_int_eq(mpathd_reply_result("ok"), 0);
        ck_assert_int_eq(mpathd_reply_result("fail\n"), -EBADMSG);
        ck_assert_int_eq(mpathd_reply_result("fail\nno such map"), -EBADMSG);
        ck_assert_int_eq(mpathd_reply_result("timeout\n"), -EPROTO);
        ck_assert_int_eq(mpathd_reply_result(NULL), -EPROTO);
}
END_TEST

/* A one-shot multipathd on an abstract socket: checks the command, sends reply. */
static pid_t fake_server(const char *name, const char *expect, const char *reply)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;
        pid_t pid;

        memcpy(sa.sun_path + 1, name, strlen(name));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
                              (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))),
                         0);
        ck_assert_int_eq(listen(fd, 1), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char buf[256] = {};
                size_t len;
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

                if (c < 0 || read(c, &len, sizeof(len)) != sizeof(len) || len >= sizeof(buf) ||
                    read(c, buf, len) != (ssize_t)len)
                        _exit(2);
                if (strcmp(buf, expect) != 0)
                        _exit(3);
                len = strlen(reply) + 1;
                if (write(c, &len, sizeof(len)) != sizeof(len) || write(c, reply, len) != (ssize_t)len)
                        _exit(4);
                _exit(0);
        }
        close(fd);
        return pid;
}

/* A multipathd that answers "ok" to n_per_conn commands on each of n_conn connections, and exits
 * with the number of commands it served (10 + n: all fine). */
static pid_t fake_server_conns(const char *name, int n_conn, int n_per_conn)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;
        pid_t pid;

        memcpy(sa.sun_path + 1, name, strlen(name));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
                              (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))),
                         0);
        ck_assert_int_eq(listen(fd, 1), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int served = 0;

                for (int k = 0; k < n_conn; k++) {
                        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

                        if (c < 0)
                                _exit(2);
                        for (int i = 0; i < n_per_conn; i++) {
                                char buf[256] = {};
                                size_t len;

                                if (read(c, &len, sizeof(len)) != sizeof(len) || len >= sizeof(buf) ||
                                    read(c, buf, len) != (ssize_t)len)
                                        _exit(3);
                                len = 4;
                                if (write(c, &len, sizeof(len)) != sizeof(len) || write(c, "ok\n", 4) != 4)
                                        _exit(4);
                                served++;
                        }
                        close(c);
                }
                _exit(10 + served);
        }
        close(fd);
        return pid;
}

/* A multipathd busy with other maps: on one connection, it answers the first command (expect1)
 * after delay_ms with reply1, then each next one with "ok" until the client closes. Exits with 10 +
 * the number of commands it served; 3: the first command was not expect1, or the second not
 * expect2 (NULL: none expected). */
static pid_t fake_server_late(const char *name, unsigned delay_ms, const char *expect1, const char *reply1,
                              const char *expect2)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;
        pid_t pid;

        memcpy(sa.sun_path + 1, name, strlen(name));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
                              (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name))),
                         0);
        ck_assert_int_eq(listen(fd, 4), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int served = 0, c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

                if (c < 0)
                        _exit(2);
                for (;;) {
                        char buf[256] = {};
                        const char *reply = served == 0 ? reply1 : "ok\n";
                        const char *expect = served == 0 ? expect1 : served == 1 ? expect2 : NULL;
                        size_t len;

                        if (read(c, &len, sizeof(len)) != sizeof(len))
                                _exit(10 + served);
                        if (len >= sizeof(buf) || read(c, buf, len) != (ssize_t)len)
                                _exit(4);
                        if (expect && strcmp(buf, expect) != 0)
                                _exit(3);
                        if (served == 0)
                                usleep(delay_ms * 1000);
                        len = strlen(reply) + 1;
                        if (write(c, &len, sizeof(len)) != sizeof(len) ||
                            write(c, reply, len) != (ssize_t)len)
                                _exit(10 + served); /* the client went away */
                        served++;
                }
        }
        close(fd);
        return pid;
}

static int server_status(pid_t pid)
{
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        return WEXITSTATUS(st);
}

START_TEST(test_command_ok)
{
        char name[64];
        _cleanup_(freep) char *reply = NULL;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/ok", (int)getpid());
        pid = fake_server(name, "disablequeueing map mpatha", "ok\n");
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command("disablequeueing map mpatha", soon(), &reply), 0);
        ck_assert_str_eq(reply, "ok\n");
        ck_assert_int_eq(server_status(pid), 0);
}
END_TEST

START_TEST(test_command_fail)
{
        char name[64];
        _cleanup_(freep) char *reply = NULL;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/fail", (int)getpid());
        pid = fake_server(name, "restorequeueing map mpathb", "fail\nno such map\n");
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command("restorequeueing map mpathb", soon(), &reply), -EBADMSG);
        ck_assert_str_eq(reply, "fail\nno such map\n");
        ck_assert_int_eq(server_status(pid), 0);
}
END_TEST

/* Three commands, one connection. */
START_TEST(test_command_keep)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/keep", (int)getpid());
        pid = fake_server_conns(name, 1, 3);
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpatha", soon(), NULL), 0);
                ck_assert_int_ge(c.fd, 0);
        }
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 13);
}
END_TEST

/* multipathd closed the kept connection (restarted): the command goes again, on a new one. */
START_TEST(test_command_keep_reconnects)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/again", (int)getpid());
        pid = fake_server_conns(name, 2, 1);
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpatha", soon(), NULL), 0);
        usleep(50 * 1000); /* the server has closed its end */
        ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpathb", soon(), NULL), 0);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 12);
}
END_TEST

/* multipathd got our command but answers after our deadline: the connection stays, with the
 * answer pending; it is read later, and the next command goes on the same connection, after it. */
START_TEST(test_command_keep_late)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        _cleanup_(freep) char *reply = NULL;
        usec_t t;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/late", (int)getpid());
        /* the answer 1.5 s after the command: a loaded host that keeps us off the CPU for less
         * than that cannot make it come "in time" (an answer there at the deadline is read) */
        pid = fake_server_late(name, 1500, "disablequeueing map mpatha", "ok\n",
                               "restorequeueing map mpatha");
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        t = now_monotonic();
        ck_assert_int_eq(
                mpathd_command_keep(&c, "disablequeueing map mpatha", t + 100 * USEC_PER_MSEC, NULL),
                -EINPROGRESS);
        ck_assert_uint_lt(now_monotonic(), t + 1000 * USEC_PER_MSEC);
        ck_assert_int_ge(c.fd, 0);
        ck_assert(c.pending);
        /* not yet */
        ck_assert_int_eq(mpathd_reply_wait(&c, now_monotonic() + 20 * USEC_PER_MSEC, NULL), -ETIMEDOUT);
        ck_assert(c.pending);
        /* the late answer */
        ck_assert_int_eq(mpathd_reply_wait(&c, soon(), &reply), 0);
        ck_assert_str_eq(reply, "ok\n");
        ck_assert(!c.pending);
        ck_assert_int_eq(mpathd_reply_wait(&c, soon(), NULL), -ENOMSG);
        /* on the same connection (the server accepts only one) */
        ck_assert_int_eq(mpathd_command_keep(&c, "restorequeueing map mpatha", soon(), NULL), 0);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 12);
}
END_TEST

/* The late answer is "fail": said so. */
START_TEST(test_command_keep_late_fail)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/latefail", (int)getpid());
        /* 1 s: see test_command_keep_late */
        pid = fake_server_late(name, 1000, "disablequeueing map mpatha", "fail\ntimeout\n", NULL);
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpatha",
                                             now_monotonic() + 50 * USEC_PER_MSEC, NULL),
                         -EINPROGRESS);
        ck_assert_int_eq(mpathd_reply_wait(&c, soon(), NULL), -EBADMSG);
        ck_assert(!c.pending);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 11);
}
END_TEST

/* Sent, not waited for: back at once, however long multipathd takes; its answer is read later on
 * the same connection, and the next command goes after it. */
START_TEST(test_command_send)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        _cleanup_(freep) char *reply = NULL;
        usec_t t;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/send", (int)getpid());
        pid = fake_server_late(name, 1000, "disablequeueing map mpatha", "ok\n",
                               "restorequeueing map mpatha");
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpathd_command_send(&c, "disablequeueing map mpatha", soon()), -EINPROGRESS);
        ck_assert_uint_lt(now_monotonic(), t + 800 * USEC_PER_MSEC);
        ck_assert(c.pending);
        ck_assert_int_eq(mpathd_reply_wait(&c, soon(), &reply), 0);
        ck_assert_str_eq(reply, "ok\n");
        ck_assert_uint_ge(now_monotonic(), t + 1000 * USEC_PER_MSEC);
        ck_assert(!c.pending);
        ck_assert_int_eq(mpathd_command_keep(&c, "restorequeueing map mpatha", soon(), NULL), 0);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 12);
}
END_TEST

/* An answer that came while we were busy elsewhere is read even when its deadline has passed. */
START_TEST(test_reply_there_after_deadline)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/there", (int)getpid());
        pid = fake_server_late(name, 0, "disablequeueing map mpatha", "ok\n", NULL);
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command_send(&c, "disablequeueing map mpatha", soon()), -EINPROGRESS);
        /* the answer is there */
        ck_assert_int_eq(poll(&(struct pollfd){.fd = c.fd, .events = POLLIN}, 1, 5000), 1);
        ck_assert_int_eq(mpathd_reply_wait(&c, now_monotonic() - 1, NULL), 0);
        ck_assert(!c.pending);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 11);
}
END_TEST

/* The kept connection was closed by multipathd since the last command: the send makes it
 * again, once, and the answer comes on the new one. */
START_TEST(test_command_send_reconnects)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        pid_t pid;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/sendagain", (int)getpid());
        pid = fake_server_conns(name, 2, 1);
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpatha", soon(), NULL), 0);
        usleep(50 * 1000); /* the server has closed its end */
        ck_assert_int_eq(mpathd_command_send(&c, "disablequeueing map mpathb", soon()), -EINPROGRESS);
        ck_assert_int_eq(mpathd_reply_wait(&c, soon(), NULL), 0);
        mpathd_conn_close(&c);
        ck_assert_int_eq(server_status(pid), 12);
}
END_TEST

/* Nobody listens: the command never reached multipathd, nothing is pending. */
START_TEST(test_command_send_not_running)
{
        char name[64];
        struct mpathd_conn c = MPATHD_CONN_INIT;
        int r;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/sendnobody", (int)getpid());
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        r = mpathd_command_send(&c, "disablequeueing map mpatha", soon());
        ck_assert_msg(r == -ECONNREFUSED || r == -ENOENT, "got %d", r);
        ck_assert(!c.pending);
        ck_assert_int_lt(c.fd, 0);
}
END_TEST

START_TEST(test_not_running)
{
        char name[64];
        int r;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/nobody", (int)getpid());
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        r = mpathd_command("show maps", soon(), NULL);
        ck_assert_msg(r == -ECONNREFUSED || r == -ENOENT, "got %d", r);
}
END_TEST

/* A multipathd that listens but never accepts (stopped with SIGSTOP) and whose backlog is full:
 * connect() would block for ever; the deadline bounds it. */
START_TEST(test_backlog_full)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char name[64];
        int fd, fill[64];
        size_t n = 0;
        socklen_t salen;
        usec_t t;

        snprintf(name, sizeof(name), "/mpath-flush-test/%d/stopped", (int)getpid());
        memcpy(sa.sun_path + 1, name, strlen(name));
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, salen), 0);
        ck_assert_int_eq(listen(fd, 1), 0);
        for (;;) {
                int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

                ck_assert_int_ge(c, 0);
                ck_assert_uint_lt(n, ELEMENTSOF(fill));
                fill[n++] = c;
                if (connect(c, (struct sockaddr *)&sa, salen) < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        break;
                }
        }
        ck_assert_int_eq(setenv(MPATHD_SOCKET_ENV, name, 1), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpathd_command("disablequeueing map mpatha", t + 200 * USEC_PER_MSEC, NULL),
                         -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic(), t + 200 * USEC_PER_MSEC);
        ck_assert_uint_lt(now_monotonic(), t + 1 * USEC_PER_SEC);
        {
                /* never reached multipathd: nothing pending, no connection kept */
                struct mpathd_conn c = MPATHD_CONN_INIT;

                ck_assert_int_eq(mpathd_command_keep(&c, "disablequeueing map mpatha",
                                                     now_monotonic() + 100 * USEC_PER_MSEC, NULL),
                                 -ETIMEDOUT);
                ck_assert_int_lt(c.fd, 0);
                ck_assert(!c.pending);
        }
        /* a deadline already passed: no attempt at all */
        ck_assert_int_eq(mpathd_connect(now_monotonic() - 1), -ETIMEDOUT);
        for (size_t i = 0; i < n; i++)
                close(fill[i]);
        close(fd);
}
END_TEST

static Suite *mpathd_suite(void)
{
        Suite *s = suite_create("mpathd");
        TCase *tc = tcase_create("mpathd");

        tcase_add_test(tc, test_framing);
        tcase_add_test(tc, test_recv_errors);
        tcase_add_test(tc, test_reply_result);
        tcase_add_test(tc, test_command_ok);
        tcase_add_test(tc, test_command_fail);
        tcase_add_test(tc, test_command_keep);
        tcase_add_test(tc, test_command_keep_reconnects);
        tcase_add_test(tc, test_command_keep_late);
        tcase_add_test(tc, test_command_keep_late_fail);
        tcase_add_test(tc, test_command_send);
        tcase_add_test(tc, test_command_send_not_running);
        tcase_add_test(tc, test_command_send_reconnects);
        tcase_add_test(tc, test_reply_there_after_deadline);
        tcase_add_test(tc, test_not_running);
        tcase_add_test(tc, test_backlog_full);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(mpathd_suite)
