/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal's native protocol and sd_notify's, received on our own sockets. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"
#include "macro.h"
#include "tests.h"

/* A datagram socket bound to name ("/path" or "@abstract"). */
static int listen_on(const char *name)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        memcpy(sa.sun_path, name, strlen(name));
        if (name[0] == '@')
                sa.sun_path[0] = 0;
        else {
                (void)unlink(name); /* one an earlier test left */
                len++;
        }
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
        return fd;
}

static size_t receive(int fd, char *buf, size_t size)
{
        ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);

        ck_assert_int_ge(n, 0);
        return (size_t)n;
}

START_TEST(test_journal_record)
{
        char path[64], buf[512];
        const struct mpf_journal_field fields[] = {
                {"MESSAGE", "mpatha: busy"},
                {"ERRNO", NULL}, /* left out */
                {"MPATH_FLUSH_STEP", "in-use"},
        };
        const char want[] = "MESSAGE=mpatha: busy\nMPATH_FLUSH_STEP=in-use\n";
        int fd;

        snprintf(path, sizeof(path), "/tmp/mpf-test-journal-%d", (int)getpid());
        fd = listen_on(path);
        ck_assert_int_eq(mpf_journal_send_to(path, fields, ELEMENTSOF(fields)), 0);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), strlen(want));
        ck_assert(memcmp(buf, want, strlen(want)) == 0);
        close(fd);
        unlink(path);
}
END_TEST

/* A value with a newline (a mount point may have one) goes length-prefixed, little endian. */
START_TEST(test_journal_binary_value)
{
        char path[64], buf[512];
        const struct mpf_journal_field fields[] = {{"MESSAGE", "a\nb"}, {"PRIORITY", "3"}};
        const char want[] = "MESSAGE\n\3\0\0\0\0\0\0\0a\nb\nPRIORITY=3\n";
        int fd;

        snprintf(path, sizeof(path), "/tmp/mpf-test-journal-%d", (int)getpid());
        fd = listen_on(path);
        ck_assert_int_eq(mpf_journal_send_to(path, fields, ELEMENTSOF(fields)), 0);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), sizeof(want) - 1);
        ck_assert(memcmp(buf, want, sizeof(want) - 1) == 0);
        close(fd);
        unlink(path);
}
END_TEST

/* No journald: an error the caller can fall back on (log.c then writes to stderr). */
START_TEST(test_journal_absent)
{
        const struct mpf_journal_field fields[] = {{"MESSAGE", "x"}};

        ck_assert_int_eq(mpf_journal_send_to("/tmp/mpf-test-no-such-journal", fields, 1), -ENOENT);
        ck_assert_int_eq(mpf_journal_send_to("relative", fields, 1), -EAFNOSUPPORT);
}
END_TEST

/* The drain waits until the receiver has read every record, and then one more datagram, a
 * comment that journald drops (it is done with one datagram before it reads the next); bounded. */
START_TEST(test_journal_drain)
{
        const struct mpf_journal_field fields[] = {{"MESSAGE", "x"}};
        char path[64], buf[64];
        usec_t t;
        int fd;

        snprintf(path, sizeof(path), "/tmp/mpf-test-journal-%d", (int)getpid());
        fd = listen_on(path);
        ck_assert_int_eq(mpf_journal_drain_to(path, now_monotonic()), 0); /* nothing sent */
        ck_assert_int_eq(mpf_journal_send_to(path, fields, 1), 0);
        ck_assert_int_eq(mpf_journal_send_to(path, fields, 1), 0);
        t = now_monotonic();
        ck_assert_int_eq(mpf_journal_drain_to(path, t + 50 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert_uint_ge(now_monotonic() - t, 50 * USEC_PER_MSEC);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), 10);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), 10);
        ck_assert_int_eq(mpf_journal_drain_to(path, now_monotonic() + 20 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), 2); /* the last one, sent once */
        ck_assert(memcmp(buf, "#\n", 2) == 0);
        ck_assert_int_eq(mpf_journal_drain_to(path, now_monotonic() + 5 * USEC_PER_SEC), 0);
        ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);   /* nothing more */
        ck_assert_int_eq(mpf_journal_drain_to(path, now_monotonic()), 0); /* nothing new: none sent */
        ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
        close(fd);
        unlink(path);
}
END_TEST

/* A journald that is behind (its queue full) holds no one up: a record is refused at once
 * (-EAGAIN: log.c writes it to stderr), and the drain gives up at its bound. */
START_TEST(test_journal_full_queue)
{
        const struct mpf_journal_field fields[] = {{"MESSAGE", "x"}};
        char path[64];
        usec_t t;
        int fd, r = 0;

        snprintf(path, sizeof(path), "/tmp/mpf-test-journal-%d", (int)getpid());
        fd = listen_on(path); /* never read */
        for (int i = 0; i < 100000 && r >= 0; i++)
                r = mpf_journal_send_to(path, fields, 1);
        ck_assert_int_eq(r, -EAGAIN);
        t = now_monotonic();
        ck_assert_int_eq(mpf_journal_drain_to(path, t + 100 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert_uint_lt(now_monotonic() - t, 2 * USEC_PER_SEC);
        close(fd);
        unlink(path);
}
END_TEST

/* A process that closed all its descriptors (the write-back worker) may find the socket's number
 * reused: a record never goes to whatever holds it now. */
START_TEST(test_journal_fd_reused)
{
        const struct mpf_journal_field fields[] = {{"MESSAGE", "x"}};
        char path[64], buf[64];
        int fd, p[2], old;

        snprintf(path, sizeof(path), "/tmp/mpf-test-journal-%d", (int)getpid());
        fd = listen_on(path);
        ck_assert_int_eq(mpf_journal_send_to(path, fields, 1), 0);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), 10);
        old = mpf_journal_fd();
        ck_assert_int_ge(old, 0);
        /* the number now names a connected socket, as the worker's own is: a send with an
         * address would go to its peer */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p), 0);
        ck_assert_int_eq(dup2(p[1], old), old);
        ck_assert_int_eq(mpf_journal_drain_to(path, now_monotonic() + 5 * USEC_PER_SEC), 0);
        ck_assert_int_eq(mpf_journal_send_to(path, fields, 1), 0);
        ck_assert_uint_eq(receive(fd, buf, sizeof(buf)), 10);
        ck_assert_int_lt(recv(p[0], buf, sizeof(buf), MSG_DONTWAIT), 0); /* nothing went to the peer */
        ck_assert_int_eq(errno, EAGAIN);
        close(old);
        close(p[0]);
        close(p[1]);
        close(fd);
        unlink(path);
}
END_TEST

START_TEST(test_notify)
{
        char path[64], abstract[64], buf[128];
        int fd, afd;

        ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
        ck_assert_int_eq(mpf_notify("STATUS=x"), 0); /* not under a service manager */

        snprintf(path, sizeof(path), "/tmp/mpf-test-notify-%d", (int)getpid());
        fd = listen_on(path);
        ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
        ck_assert_int_eq(mpf_notifyf("STATUS=Flushed %d of %d multipath maps", 3, 16), 1);
        buf[receive(fd, buf, sizeof(buf) - 1)] = 0;
        ck_assert_str_eq(buf, "STATUS=Flushed 3 of 16 multipath maps");

        snprintf(abstract, sizeof(abstract), "@mpf-test-notify-%d", (int)getpid());
        afd = listen_on(abstract);
        ck_assert_int_eq(setenv("NOTIFY_SOCKET", abstract, 1), 0);
        ck_assert_int_eq(mpf_notify("STATUS=abstract"), 1);
        buf[receive(afd, buf, sizeof(buf) - 1)] = 0;
        ck_assert_str_eq(buf, "STATUS=abstract");

        ck_assert_int_eq(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1), 0);
        ck_assert_int_eq(mpf_notify("STATUS=x"), -EAFNOSUPPORT);
        close(fd);
        close(afd);
        unlink(path);
}
END_TEST

static Suite *journal_suite(void)
{
        Suite *s = suite_create("journal");
        TCase *tc = tcase_create("journal");

        tcase_add_test(tc, test_journal_record);
        tcase_add_test(tc, test_journal_binary_value);
        tcase_add_test(tc, test_journal_absent);
        tcase_add_test(tc, test_journal_drain);
        tcase_add_test(tc, test_journal_full_queue);
        tcase_add_test(tc, test_journal_fd_reused);
        tcase_add_test(tc, test_notify);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(journal_suite)
