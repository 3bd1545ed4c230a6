/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "deadline.h"

#define MPATHD_SOCKET_ABSTRACT "/org/kernel/linux/storage/multipathd"
#define MPATHD_SOCKET_PATH "/run/multipathd.socket"
#define MPATHD_SOCKET_ENV "MULTIPATH_SOCKET_NAME"
/* multipathd's own clients give up after this long; so do we (also bounded by our deadline). */
#define MPATHD_TIMEOUT_USEC (4000 * USEC_PER_MSEC)
/* Largest reply we accept. */
#define MPATHD_REPLY_MAX (16U * 1024U * 1024U)

/* Connect: abstract socket (name from $MULTIPATH_SOCKET_NAME or the default), then the path
 * socket. -ENOENT/-ECONNREFUSED: multipathd does not run; -ETIMEDOUT: its listen backlog stayed
 * full until the deadline (a stopped or stuck multipathd). */
int mpathd_connect(usec_t deadline);
/* Framing: native size_t length (strlen + 1), then the bytes including the NUL. */
int mpathd_send(int fd, const char *msg, usec_t deadline);
int mpathd_recv(int fd, char **ret_reply, usec_t deadline);
/* Reply "ok\n" (or "ok") -> 0; "fail\n..." -> -EBADMSG; anything else -> -EPROTO. */
int mpathd_reply_result(const char *reply);
/* Connect, send, receive, interpret. Deadline is min(deadline, now + MPATHD_TIMEOUT_USEC). */
int mpathd_command(const char *cmd, usec_t deadline, char **ret_reply);
/* A connection kept from one command to the next, so that a process flushing map after map
 * connects once (multipathd accepts and serves each connection in its one listener thread). */
struct mpathd_conn {
        int fd;           /* -EBADF: none yet */
        bool pending;     /* a command went whole to multipathd and its reply has not been read yet */
        size_t reply_len; /* of the pending reply, when its length was read already (0: not yet) */
};
#define MPATHD_CONN_INIT                                                                                    \
        {                                                                                                   \
                .fd = -EBADF                                                                                \
        }
void mpathd_conn_close(struct mpathd_conn *c);

/* The same as mpathd_command(), on c. A kept connection multipathd closed meanwhile is made again,
 * once: the commands we send (disablequeueing, restorequeueing) may be repeated. A connection
 * whose earlier reply is still pending is closed and made again first (that command was for a map
 * we are done with). Never reached multipathd (-ETIMEDOUT, -ENOENT, -ECONNREFUSED from connect,
 * or a command not sent whole): nothing is pending there, the connection is closed. Sent whole but
 * no reply by the deadline: -EINPROGRESS, the connection is kept and c->pending set: multipathd
 * serves one connection's commands in order, so mpathd_reply_wait() reads that reply later and a
 * command sent after it on c is carried out after it. After any other failure the connection is
 * closed. */
int mpathd_command_keep(struct mpathd_conn *c, const char *cmd, usec_t deadline, char **ret_reply);
/* Send cmd on c as mpathd_command_keep() does, without waiting for its reply: -EINPROGRESS once
 * it went whole to multipathd (c->pending set: mpathd_reply_wait() reads the reply, and a command
 * sent after it on c is carried out after it); else the errors of a command that never reached
 * multipathd, as mpathd_command_keep() returns them, the connection closed. Lets the caller go on
 * while multipathd, which serves its clients one command at a time, gets to it. */
int mpathd_command_send(struct mpathd_conn *c, const char *cmd, usec_t deadline);
/* The reply to the command mpathd_command_keep() or mpathd_command_send() left pending (-EINPROGRESS), read
 * by deadline: interpreted as mpathd_reply_result() does (the connection is kept for the next command);
 * -ETIMEDOUT: still none (still pending); -ENOMSG: none is pending; another error: the
 * connection broke (closed). */
int mpathd_reply_wait(struct mpathd_conn *c, usec_t deadline, char **ret_reply);
