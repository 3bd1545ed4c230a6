/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

#include "deadline.h"

/* systemd-journald's native protocol and the service manager's notification protocol, spoken
 * directly: a short-lived helper should not load libsystemd (and its compression and crypto
 * libraries) to send a few datagrams. */

#define MPF_JOURNAL_SOCKET "/run/systemd/journal/socket"

struct mpf_journal_field {
        const char *name;  /* upper case, digits, '_' */
        const char *value; /* NULL: the field is left out */
};

/* Send one record of fields to the journal socket at path. A value with a newline goes in the
 * protocol's length-prefixed form. Never waits: 0, or a negative errno (-EAGAIN: journald's queue
 * is full; the caller logs elsewhere then). */
int mpf_journal_send_to(const char *path, const struct mpf_journal_field *fields, size_t n);
static inline int mpf_journal_send(const struct mpf_journal_field *fields, size_t n)
{
        return mpf_journal_send_to(MPF_JOURNAL_SOCKET, fields, n);
}

/* Wait until journald is done with every record this process (or its parent before the fork)
 * sent to path, at most until `until`: journald learns a record's unit from /proc/PID when it
 * reads it, so the records of a process that exits first lose their unit (journalctl -u). 0
 * (also when nothing was sent), -ETIMEDOUT, or a negative errno. */
int mpf_journal_drain_to(const char *path, usec_t until);
static inline int mpf_journal_drain(usec_t until)
{
        return mpf_journal_drain_to(MPF_JOURNAL_SOCKET, until);
}
/* Tests: the descriptor records leave from (-EBADF before the first). */
int mpf_journal_fd(void);

/* sd_notify(3): send state ("STATUS=...") to $NOTIFY_SOCKET ("/path" or "@abstract"). 0 when not
 * run by a service manager, 1 when sent, or a negative errno. */
int mpf_notify(const char *state);
int mpf_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
