/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Taking the path device locks (doc/CONTRACT.md) without opening a path device ourselves. Opening
 * a SCSI disk waits, in uninterruptible sleep and whatever the open flags, while its host is in
 * error recovery (sd_open: scsi_block_when_processing_errors), and the deadline cannot interrupt
 * that. So the opens happen in the run's worker for calls that can sleep in the kernel, the
 * write-back worker (syncer.h: its stdio on /dev/null, no fd of ours but its socket, default
 * signal dispositions). We send it one request a map, with all its nodes and the deadline (more
 * than one only when the nodes do not fit in MPF_PATHLOCK_REQUEST_MAX). It opens the nodes in
 * order and takes LOCK_EX on each (mpf_lock_paths); it hands each descriptor back over its socket
 * (SCM_RIGHTS) as soon as it holds the lock and closes its own copy, then goes on to the next. A
 * flock belongs to the open file description, so the lock comes with the descriptor: once the
 * worker has said that it is done with the request, we hold every path lock ourselves, exactly as
 * if we had taken them, and the worker holds none of them. The answers come one by one and not as
 * one message at the end, so that we always know which node the worker is busy with. The same
 * worker then writes the map back (flush step), so a map costs no process of its own, and its
 * path locks one request; the pool hands the locks on like any other lock fd.
 *
 * A worker that has not answered by the deadline is killed and abandoned (mpf_syncer_lock_paths):
 * what it handed back is closed (the locks let go), and it holds nothing else of ours, so it can
 * only be waiting in its open; it dies as soon as that returns. If it is still there after
 * SYNCER_EXIT_WAIT_USEC, it is reported stuck, named with the device it was opening.
 *
 * This module is the protocol, both halves: mpf_pathlock_serve() in the worker, one request at a
 * time; mpf_pathlock_request() in the helper, on the worker's socket.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "deadline.h"

/* The first byte of a request: the worker hands it to mpf_pathlock_serve(). */
#define MPF_PATHLOCK_REQUEST 'L'
/* The largest request a worker must be able to receive: its header and room for one path of any
 * length, or a few hundred /dev/sdX. */
#define MPF_PATHLOCK_REQUEST_MAX (1 + sizeof(usec_t) + sizeof(uint32_t) + PATH_MAX)

/* A worker left behind at the deadline, stuck in the kernel. */
struct mpf_stuck {
        pid_t pid;    /* 0: none */
        char in[128]; /* what it was doing, e.g. "opening /dev/sdb" */
};

/* Lock paths[0..n) (in that order, each LOCK_EX) through a worker of its own (a syncer made for
 * this call), waiting for it until the deadline. Returns 0 with *ret_fds (*ret_n of them,
 * malloc'ed; nodes that are gone are skipped) holding the locks; -ETIMEDOUT, the worker killed,
 * nothing locked, and *ret_stuck filled in if it did not die; or the error of an open or a lock.
 * No worker for n == 0. The run uses its long-lived worker instead: mpf_syncer_lock_paths(). */
int mpf_pathlock_take(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n,
                      struct mpf_stuck *ret_stuck);

/* The worker's half: req (len bytes, starting with MPF_PATHLOCK_REQUEST) names one or more paths;
 * open and lock each in order by the request's deadline, answering on sock as each is locked, and
 * stop at the first that fails. A request that is not well formed opens nothing and is answered
 * as a failure (-EBADMSG). Returns < 0 only when an answer could not be sent (the helper is gone:
 * the worker exits). */
int mpf_pathlock_serve(int sock, const void *req, size_t len);

/* The helper's half, on the socket of an idle worker that serves requests with
 * mpf_pathlock_serve(): all paths in as few requests as they fit in, each sent once the one before
 * is answered in full, until the deadline. Returns 0 with *ret_fds and *ret_n as
 * mpf_pathlock_take(), or a negative errno with nothing locked (-ENAMETOOLONG, nothing sent: a
 * path that fits in no request). *ret_answered: the worker answered every request it was sent in
 * full (it is idle again and may serve on); false: it did not (the deadline passed, it went away,
 * it said something we did not ask for, or it handed over a descriptor we had no room for), and
 * *ret_at is the index of the path it was busy with. n == 0 sends nothing. */
int mpf_pathlock_request(int sock, char *const *paths, size_t n, usec_t deadline, int **ret_fds,
                         size_t *ret_n, bool *ret_answered, size_t *ret_at);
