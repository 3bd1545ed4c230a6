/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The guardian: a small process forked when a run starts, that puts a map back as it was found
 * (undo.h) when the helper dies in the middle of its flush, whatever killed it (SIGKILL included).
 *
 * It is the helper's child in its own session (no terminal signal reaches it), ignores every
 * signal that can be ignored, has /dev/null as stdio and no fd of the helper but one end of a
 * socket pair: a caller that waits for the helper's exit or output never waits for it, and it holds
 * no claim on any map. For each map, once its lock is taken, the helper hands the guardian a copy of
 * the lock fd. A flock belongs to the open file description, so while the guardian holds its copy
 * the lock outlives the helper: nobody else flushes the map before the guardian has put it back.
 * When the helper is done with a map it tells the guardian, which drops its copy.
 *
 * When the socket reads EOF (the helper is gone: exited or killed), the guardian forks one child per
 * map it still has a lock copy of (at most MPF_GUARDIAN_PUT_BACK_MAX at once), each with its own
 * device handles; the child takes the lock (LOCK_NB: it is still held by it) and undoes what the
 * map's record says. The maps are put back at the same time, not one after another; the guardian
 * exits when every child has. A worker process of the run has its own connection
 * (mpf_guardian_forked): when that one reads EOF while the run goes on, the maps it watched are
 * put back at once; a map whose lock the run took over from the worker is watched again from the
 * run's connection and stays until the run ends. A guardian killed too (a cgroup kill) leaves the record to
 * the next flusher of the map.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* maps put back at once by the guardian's children; more wait for a free one */
#define MPF_GUARDIAN_PUT_BACK_MAX 16U

struct mpf_guardian;

/* Fork the guardian. udev_sync: whether it may wait for udev when it makes partition maps again. */
int mpf_guardian_start(bool udev_sync, struct mpf_guardian **ret);
/* The helper exits: tell the guardian (socket closed) and reap it. It has nothing left to undo
 * unless a map was never forgotten. NULL is fine. */
struct mpf_guardian *mpf_guardian_free(struct mpf_guardian *g);
static inline void mpf_guardian_freep(struct mpf_guardian **g)
{
        *g = mpf_guardian_free(*g);
}

/* The run ends, and with it this process: as mpf_guardian_free(), but when the guardian has
 * nothing to put back (mpf_guardian_idle()) it is not waited for. It reads the forgets we sent,
 * then the end of our socket, and exits; it holds nothing of ours but the copies of the forgotten
 * maps' locks until it has read those forgets, and whoever reaps orphans reaps it. A run whose
 * workers connected to it (mpf_guardian_forked()) must use mpf_guardian_free(): their maps may be
 * in its hands. NULL is fine. */
struct mpf_guardian *mpf_guardian_leave(struct mpf_guardian *g);
/* Every map watched from this connection was forgotten since, and every message went out. */
bool mpf_guardian_idle(const struct mpf_guardian *g);

/* The map's lock is held (lock_fd): watch it. NULL g: no guardian, 0. */
int mpf_guardian_watch(struct mpf_guardian *g, const char *uuid, int lock_fd);
/* Done with the map (its undo record is removed): drop the copy of its lock. */
int mpf_guardian_forget(struct mpf_guardian *g, const char *uuid);
pid_t mpf_guardian_pid(const struct mpf_guardian *g);
/* In a worker process just forked from the run: a connection of its own to the guardian, in place
 * of its copy of the run's, so that when the worker dies (killed, out of memory) while the run goes
 * on, the guardian puts its map back at once. On failure (logged by the caller) it keeps the run's
 * connection: its maps are put back when the run ends. NULL g: 0. */
int mpf_guardian_forked(struct mpf_guardian *g);

/* Both sides of the socket, for tests. The helper's messages on its end of the socket; the
 * guardian serves its end until EOF, then puts back (ops) each map still watched whose lock it can
 * take. Returns the number of maps it put back or found nothing to put back for. */
int mpf_guardian_watch_fd(int sock, const char *uuid, int lock_fd);
int mpf_guardian_forget_fd(int sock, const char *uuid);
struct mpf_ops;
int mpf_guardian_serve(int sock, const struct mpf_ops *ops);

/* For tests: child(i, u) runs in a process of its own for each i in [0, n), at most max at once
 * (in this process if none can be forked); started(i, u) (NULL is fine) in this one once the child
 * runs. Returns the number of children that returned > 0, or a negative errno. */
int mpf_guardian_fan_out(size_t n, size_t max, int (*child)(size_t i, void *u),
                         void (*started)(size_t i, void *u), void *u);
