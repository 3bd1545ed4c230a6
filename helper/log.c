/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

static int max_level = LOG_INFO;
static int journal = -1;  /* -1: not decided yet */
static bool unit_stream;  /* stderr is journald's stream for us: we run under a unit */
static usec_t stamp_base; /* 0: lines carry no time stamp */

void log_set_timestamps(usec_t base)
{
        stamp_base = base;
}

int log_format_stamp(char *buf, size_t size, usec_t base, usec_t t, int pid)
{
        usec_t d = t > base ? t - base : 0;

        return snprintf(buf, size, "[%llu.%03llu %d] ", (unsigned long long)(d / USEC_PER_MSEC),
                        (unsigned long long)(d % USEC_PER_MSEC), pid);
}

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

bool journal_stream_matches(const char *env, unsigned long long dev, unsigned long long ino)
{
        unsigned long long d, i;
        char tail;

        if (!env)
                return false;
        if (sscanf(env, "%llu:%llu%c", &d, &i, &tail) != 2)
                return false;
        return d == dev && i == ino;
}

void log_open(void)
{
        struct stat st;

        if (fstat(STDERR_FILENO, &st) < 0) {
                journal = 0;
                return;
        }
        journal = journal_stream_matches(getenv("JOURNAL_STREAM"), (unsigned long long)st.st_dev,
                                         (unsigned long long)st.st_ino);
        unit_stream = journal > 0;
}

bool log_to_journal(void)
{
        if (journal < 0)
                log_open();
        return journal > 0;
}

void log_close(void)
{
        /* only a unit's records have a unit to lose; a guardian forced to the journal from a
         * terminal run does not wait */
        if (journal > 0 && unit_stream)
                (void)mpf_journal_drain(usec_add(now_monotonic(), LOG_DRAIN_USEC));
}

void log_set_journal(bool b)
{
        journal = b;
}

int log_internal(int level, int error, const char *map, const char *uuid, const char *step, const char *fmt,
                 ...)
{
        char buf[2048];
        va_list ap;
        int e = abs(error);

        if (level > max_level)
                return -e;

        errno = e;
        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (log_to_journal()) {
                char message[2304], priority[8], errnostr[12];
                const struct mpf_journal_field fields[] = {
                        {"MESSAGE", message},
                        {"PRIORITY", priority},
                        {"SYSLOG_IDENTIFIER", "mpath-flush"},
                        {"MPATH_FLUSH_MAP", strempty(map)},
                        {"MPATH_FLUSH_UUID", strempty(uuid)},
                        {"MPATH_FLUSH_STEP", strempty(step)},
                        {"ERRNO", e > 0 ? errnostr : NULL},
                };

                (void)snprintf(message, sizeof(message), "%s%s%s%s%s", map ? map : "", map ? ": " : "",
                               step ? step : "", step ? ": " : "", buf);
                (void)snprintf(priority, sizeof(priority), "%i", level);
                (void)snprintf(errnostr, sizeof(errnostr), "%i", e);
                if (mpf_journal_send(fields, ELEMENTSOF(fields)) >= 0)
                        goto done;
                /* journald is not there (yet, or any more): stderr it is */
        }
        {
                char stamp[64] = "";

                if (stamp_base > 0)
                        (void)log_format_stamp(stamp, sizeof(stamp), stamp_base, now_monotonic(),
                                               (int)getpid());
                if (map && step)
                        fprintf(stderr, "mpath-flush: %s%s: %s: %s\n", stamp, map, step, buf);
                else if (map)
                        fprintf(stderr, "mpath-flush: %s%s: %s\n", stamp, map, buf);
                else
                        fprintf(stderr, "mpath-flush: %s%s\n", stamp, buf);
        }
done:
        errno = e;
        return -e;
}
