/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

/* systemd-journald's native protocol and the service manager's notification protocol, spoken
 * directly: a short-lived helper should not load libsystemd (and its compression and crypto
 * libraries) to send a few datagrams. */

#define MPF_JOURNAL_SOCKET "/run/systemd/journal/socket"

struct mpf_journal_field {
        const char *name;  /* upper case, digits, '_' */
        const char *value; /* NULL: the field is left out */
};

/* Send one record of fields to the journal socket at path. A value with a newline goes in the
 * protocol's length-prefixed form. 0, or a negative errno (the caller logs elsewhere then). */
int mpf_journal_send_to(const char *path, const struct mpf_journal_field *fields, size_t n);
static inline int mpf_journal_send(const struct mpf_journal_field *fields, size_t n)
{
        return mpf_journal_send_to(MPF_JOURNAL_SOCKET, fields, n);
}

/* sd_notify(3): send state ("STATUS=...") to $NOTIFY_SOCKET ("/path" or "@abstract"). 0 when not
 * run by a service manager, 1 when sent, or a negative errno. */
int mpf_notify(const char *state);
int mpf_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
