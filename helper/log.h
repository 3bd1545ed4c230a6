/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "deadline.h"
#include "macro.h"

/* Where log lines go: stderr as "mpath-flush: ..." lines, or the journal when
 * stderr is connected to it (JOURNAL_STREAM names stderr's device:inode). */
void log_set_max_level(int level);
int log_get_max_level(void);
void log_open(void);
bool log_to_journal(void);
/* With -vv: each stderr line starts with "[MS.USEC PID] ", the time since base (CLOCK_MONOTONIC)
 * and the process (the run, a pool worker), so that where a flush spends its time can be read
 * off the log. 0: no stamps (the default). Forked processes inherit it. */
void log_set_timestamps(usec_t base);
/* The stamp itself, for tests: snprintf's return. */
int log_format_stamp(char *buf, size_t size, usec_t base, usec_t t, int pid);
/* Before this process exits: under a unit (stderr is the journal's stream), wait until journald
 * is done with our records (at most LOG_DRAIN_USEC). It attributes a record to its unit through
 * /proc/PID after it reads it: a record handled after its sender exited is missing from
 * `journalctl -u`. Call it with the held-back signals still blocked. */
#define LOG_DRAIN_USEC (200 * USEC_PER_MSEC)
void log_close(void);
/* Tests: force the target without looking at JOURNAL_STREAM. */
void log_set_journal(bool b);

/* map, uuid and step may be NULL. Returns -abs(error) if error != 0, else 0.
 * errno is set to abs(error) while formatting, so %m works. */
int log_internal(int level, int error, const char *map, const char *uuid, const char *step, const char *fmt,
                 ...) _printf_(6, 7);

/* Does fd's (st_dev, st_ino) match a "DEV:INO" string as in JOURNAL_STREAM? Pure helper for tests. */
bool journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino);

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)

/* Per-map log lines always name the map and the step. */
#define log_map(level, error, map, uuid, step, ...) log_internal(level, error, map, uuid, step, __VA_ARGS__)
