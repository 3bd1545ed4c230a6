/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

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
/* The same on a connection kept from one command to the next (*fd; -EBADF: none yet), so that a
 * process flushing map after map connects once (multipathd accepts and serves each connection
 * in its one listener thread). A kept connection multipathd closed meanwhile is made again, once:
 * the commands we send (disablequeueing, restorequeueing) may be repeated. After any other
 * failure the connection is closed. */
int mpathd_command_keep(int *fd, const char *cmd, usec_t deadline, char **ret_reply);
