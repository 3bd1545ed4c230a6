/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "macro.h"
#include "mpathd.h"

/* A connect() to a daemon that does not accept (stopped, or busy) blocks once its listen backlog
 * is full: SO_SNDTIMEO bounds it (the kernel then fails it with EAGAIN). */
static int connect_to(const char *name, bool abstract, usec_t deadline)
{
        _cleanup_(closep) int fd = -EBADF;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t l = strlen(name);
        socklen_t salen;

        if (l + (abstract ? 1 : 0) >= sizeof(sa.sun_path))
                return -EINVAL;
        if (abstract) {
                memcpy(sa.sun_path + 1, name, l);
                salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
        } else {
                memcpy(sa.sun_path, name, l + 1);
                salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        for (;;) {
                usec_t left = deadline_left(deadline, now_monotonic());
                /* at least 1 us: a zero timeout would mean "wait for ever" */
                struct timeval tv = {.tv_sec = (time_t)(left / USEC_PER_SEC),
                                     .tv_usec = (suseconds_t)MAX(left % USEC_PER_SEC, (usec_t)1)};

                if (left == 0)
                        return -ETIMEDOUT;
                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return negative_errno();
                if (connect(fd, (struct sockaddr *)&sa, salen) >= 0)
                        break;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return -ETIMEDOUT; /* the backlog stayed full until the deadline */
                if (errno != EINTR)
                        return negative_errno();
        }
        return TAKE_FD(fd);
}

int mpathd_connect(usec_t deadline)
{
        const char *name = getenv(MPATHD_SOCKET_ENV);
        int fd;

        if (name && *name)
                return connect_to(name, true, deadline);
        fd = connect_to(MPATHD_SOCKET_ABSTRACT, true, deadline);
        if (fd >= 0 || fd == -ETIMEDOUT)
                return fd; /* a daemon that listens there but does not accept: not another socket */
        return connect_to(MPATHD_SOCKET_PATH, false, deadline);
}

static int wait_fd(int fd, short events, usec_t deadline)
{
        struct pollfd p = {.fd = fd, .events = events};
        int r;

        for (;;) {
                int ms = deadline_poll_ms(deadline, now_monotonic());

                /* past the deadline, what is there already still counts (an answer that came
                 * while we were busy elsewhere) */
                r = poll(&p, 1, ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r > 0)
                        return 0;
                if (ms == 0)
                        return -ETIMEDOUT;
        }
}

static int write_all(int fd, const void *buf, size_t n, usec_t deadline)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t k;
                int r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return negative_errno();
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static int read_all(int fd, void *buf, size_t n, usec_t deadline)
{
        char *p = buf;

        while (n > 0) {
                ssize_t k;
                int r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
                k = recv(fd, p, n, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -ECONNRESET;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int mpathd_send(int fd, const char *msg, usec_t deadline)
{
        size_t len = strlen(msg) + 1;
        int r;

        r = write_all(fd, &len, sizeof(len), deadline);
        if (r < 0)
                return r;
        return write_all(fd, msg, len, deadline);
}

int mpathd_recv(int fd, char **ret_reply, usec_t deadline)
{
        _cleanup_(freep) char *buf = NULL;
        size_t len;
        int r;

        r = read_all(fd, &len, sizeof(len), deadline);
        if (r < 0)
                return r;
        if (len == 0 || len > MPATHD_REPLY_MAX)
                return -EBADMSG;
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        r = read_all(fd, buf, len, deadline);
        if (r < 0)
                return r;
        buf[len] = 0; /* the sender's NUL is inside len; never trust it */
        *ret_reply = TAKE_PTR(buf);
        return 0;
}

int mpathd_reply_result(const char *reply)
{
        if (!reply)
                return -EPROTO;
        if (strcmp(reply, "ok\n") == 0 || strcmp(reply, "ok") == 0)
                return 0;
        if (startswith(reply, "fail"))
                return -EBADMSG;
        return -EPROTO;
}

void mpathd_conn_close(struct mpathd_conn *c)
{
        c->fd = safe_close(c->fd);
        c->pending = false;
        c->reply_len = 0;
}

/* The reply to the command sent on c, by deadline. Its length, once read, is kept in c (a reply
 * whose length came but not its text is read on from there later; multipathd sends each in one
 * piece). */
static int conn_recv(struct mpathd_conn *c, char **ret_reply, usec_t deadline)
{
        _cleanup_(freep) char *buf = NULL;
        int r;

        if (c->reply_len == 0) {
                size_t len;

                r = read_all(c->fd, &len, sizeof(len), deadline);
                if (r < 0)
                        return r;
                if (len == 0 || len > MPATHD_REPLY_MAX)
                        return -EBADMSG;
                c->reply_len = len;
        }
        buf = malloc(c->reply_len + 1);
        if (!buf)
                return -ENOMEM;
        r = read_all(c->fd, buf, c->reply_len, deadline);
        if (r < 0)
                return r;
        buf[c->reply_len] = 0; /* the sender's NUL is inside len; never trust it */
        c->reply_len = 0;
        *ret_reply = TAKE_PTR(buf);
        return 0;
}

/* Send cmd on c and read its reply. *ret_sent: the command went whole to multipathd (a part of
 * one it never carries out: it times the rest out and answers "fail"). */
static int exchange(struct mpathd_conn *c, const char *cmd, usec_t deadline, char **ret_reply,
                    bool *ret_sent)
{
        int r = mpathd_send(c->fd, cmd, deadline);

        *ret_sent = r >= 0;
        if (r < 0)
                return r;
        c->reply_len = 0;
        return conn_recv(c, ret_reply, deadline);
}

/* Only send cmd on c: its reply is read later (mpathd_reply_wait()). */
static int send_only(struct mpathd_conn *c, const char *cmd, usec_t deadline, bool *ret_sent)
{
        int r = mpathd_send(c->fd, cmd, deadline);

        *ret_sent = r >= 0;
        c->reply_len = 0;
        return r;
}

/* The end of an exchange that is not pending: after an error the connection goes (where its next
 * reply starts is unknown); else the reply's result, and the reply itself if asked for. */
static int exchange_end(struct mpathd_conn *c, int r, char **reply, char **ret_reply)
{
        if (r < 0) {
                mpathd_conn_close(c);
                return r;
        }
        r = mpathd_reply_result(*reply);
        if (ret_reply)
                *ret_reply = TAKE_PTR(*reply);
        return r;
}

/* mpathd_command_keep(), and with answer false mpathd_command_send(): cmd only sent. */
static int command_on(struct mpathd_conn *c, const char *cmd, usec_t deadline, bool answer, char **ret_reply)
{
        _cleanup_(freep) char *reply = NULL;
        usec_t d = MIN(deadline, usec_add(now_monotonic(), MPATHD_TIMEOUT_USEC));
        bool sent = false, kept;
        int r;

        if (c->pending)
                mpathd_conn_close(c); /* its reply would come first: that map is done with */
        kept = c->fd >= 0;
        if (!kept) {
                r = mpathd_connect(d);
                if (r < 0)
                        return r;
                c->fd = r;
        }
        r = answer ? exchange(c, cmd, d, &reply, &sent) : send_only(c, cmd, d, &sent);
        if (kept && (r == -ECONNRESET || r == -EPIPE)) {
                /* closed by multipathd since the last command (or restarted): once more */
                mpathd_conn_close(c);
                r = mpathd_connect(d);
                if (r < 0)
                        return r;
                c->fd = r;
                r = answer ? exchange(c, cmd, d, &reply, &sent) : send_only(c, cmd, d, &sent);
        }
        if ((r == -ETIMEDOUT || (!answer && r >= 0)) && sent) {
                /* multipathd has it (or will read it): it may still carry it out */
                c->pending = true;
                return -EINPROGRESS;
        }
        return exchange_end(c, r, &reply, ret_reply);
}

int mpathd_command_keep(struct mpathd_conn *c, const char *cmd, usec_t deadline, char **ret_reply)
{
        return command_on(c, cmd, deadline, true, ret_reply);
}

int mpathd_command_send(struct mpathd_conn *c, const char *cmd, usec_t deadline)
{
        return command_on(c, cmd, deadline, false, NULL);
}

int mpathd_reply_wait(struct mpathd_conn *c, usec_t deadline, char **ret_reply)
{
        _cleanup_(freep) char *reply = NULL;
        int r;

        if (!c->pending || c->fd < 0)
                return -ENOMSG;
        r = conn_recv(c, &reply, deadline);
        if (r == -ETIMEDOUT)
                return r;
        c->pending = false;
        return exchange_end(c, r, &reply, ret_reply);
}

int mpathd_command(const char *cmd, usec_t deadline, char **ret_reply)
{
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *reply = NULL;
        usec_t d = MIN(deadline, usec_add(now_monotonic(), MPATHD_TIMEOUT_USEC));
        int r;

        fd = mpathd_connect(d);
        if (fd < 0)
                return fd;
        r = mpathd_send(fd, cmd, d);
        if (r < 0)
                return r;
        r = mpathd_recv(fd, &reply, d);
        if (r < 0)
                return r;
        r = mpathd_reply_result(reply);
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return r;
}
