/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "flush.h"

/* --wait-busy: between two attempts, wait for a change at most this long (doubling from the first
 * value); a change the kernel announces (mount table, block uevent) ends the wait at once. Closes
 * of a plain fd have no event: the backoff is what notices them. */
#define WAIT_BUSY_BACKOFF_FIRST_USEC (20 * USEC_PER_MSEC)
#define WAIT_BUSY_BACKOFF_MAX_USEC (500 * USEC_PER_MSEC)
/* Attempts are at least this far apart, however many events arrive (udev's blkid storm). */
#define WAIT_BUSY_MIN_INTERVAL_USEC (20 * USEC_PER_MSEC)
/* The last attempt starts at least this long before the deadline (or a quarter of the run's time,
 * if that is less), so that a map freed late still has time to be flushed. */
#define WAIT_BUSY_RESERVE_USEC (1 * USEC_PER_SEC)

/* Told when a map has its final result. */
typedef void (*mpf_map_done_fn)(void *userdata, const struct mpf_map_result *m);

/* Flush again, until they are not busy or the deadline nears, the maps of maps[0..n) whose result is
 * busy; wait for a change between rounds with no lock held. Each map's result is its last
 * attempt's, with waited_ms, attempts and elapsed_ms covering all of them. done(userdata, map) is
 * called as each busy map gets its final result. started: when the run began. Returns 0 or
 * -ENOMEM. */
int mpf_wait_busy(const struct mpf_ops *ops, const struct mpf_flush_params *p, mpf_flush_fn flush,
                  struct mpf_map_result *maps, size_t n, usec_t started, mpf_map_done_fn done,
                  void *userdata);

/* The kernel's change notifications for ops->wait_change: /proc/self/mountinfo (POLLPRI on every
 * mount table change) and a udev (or, without udevd, kernel) block uevent monitor. */
struct mpf_change_watch;
int mpf_change_watch_new(bool udev_running, struct mpf_change_watch **ret);
struct mpf_change_watch *mpf_change_watch_free(struct mpf_change_watch *w);
static inline void mpf_change_watch_freep(struct mpf_change_watch **w)
{
        *w = mpf_change_watch_free(*w);
}
/* Until a change or the monotonic time t. Returns 1 on a change, 0 at t. */
int mpf_change_watch_wait(struct mpf_change_watch *w, usec_t t);
