/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The pool: several maps' flushes at the same time (--all, several MAPs, --jobs N). Each map
 * still goes through every step of flush.c, under its own lock; the pool only decides which map
 * starts when, collects the results in the order of the maps, and sets aside the maps whose lock
 * another flusher holds.
 *
 * The lock rule (doc/CONTRACT.md): a flusher waits for a map lock only while it holds no other
 * map lock. In the pool the map lock is therefore only tried (flush params lock_try); a map whose
 * lock is taken comes back lock_contended with nothing done, and run.c flushes it again once the
 * pool is done and every lock the pool kept (until the shared udev wait) is released.
 *
 * Where a flush runs is the executor's business: worker.c forks a process for each map (the real
 * world); mpf_pool_exec_inline() runs it in this process (tests, fakes).
 */

#include <stdbool.h>
#include <stddef.h>

#include "flush.h"
#include "wait.h"

/* --jobs: default MPF_JOBS_PER_CPU per online CPU, at most MPF_JOBS_DEFAULT_MAX; DM_DEV_REMOVE
 * mostly waits in the kernel (RCU grace periods, del_gendisk), so more than one per CPU pays. */
#define MPF_JOBS_PER_CPU 4U
#define MPF_JOBS_DEFAULT_MAX 16U
#define MPF_JOBS_MAX 256U

/* The run keeps the lock fds of the maps its workers removed until its one udev wait; they may
 * take at most half of RLIMIT_NOFILE (fd_limit), counting MPF_POOL_FDS_PER_MAP for each of the
 * in_flight maps whose fds are still to come. Past that, a map's worker waits for udev itself
 * and releases the map's locks before it answers. */
#define MPF_POOL_FDS_PER_MAP 9U
/* The soft RLIMIT_NOFILE the helper raises itself to (when the hard limit allows): room for the
 * locks of thousands of maps. Not the hard limit itself (often 524288): in the lab the guardian's
 * put-back after a SIGKILL was seconds slower with it (E6), for a cause not yet found. */
#define MPF_NOFILE_WANT 16384U
bool mpf_pool_may_keep_locks(size_t kept, size_t in_flight, uint64_t fd_limit);

/* The default number of maps flushed at once for ncpu online CPUs. */
unsigned mpf_jobs_default(long ncpu);

/* Runs one map's flush somewhere and hands its result back. */
struct mpf_pool_exec {
        void *userdata;
        /* Begin flushing maps[i] (0, or a negative errno: it did not start). */
        int (*start)(void *u, size_t i, const char *arg, const struct mpf_flush_params *p);
        /* Block until one started flush is over: its index and result (ownership passes). */
        int (*wait)(void *u, size_t *ret_i, struct mpf_map_result *ret);
        /* No more flushes this run (optional): release what runs them. */
        void (*finish)(void *u);
};

struct mpf_pool_params {
        unsigned jobs; /* at most this many flushes at once (>= 1) */
        const struct mpf_flush_params *flush;
        usec_t (*now)(void *u); /* the clock the deadline (flush->deadline) is read on */
        void *now_userdata;
        /* a map's result is in (not for lock_contended ones): --json-lines, STATUS= */
        mpf_map_done_fn done;
        void *done_userdata;
};

/* Flush maps[0..n) at most p->jobs at a time; results[i] is maps[i]'s result. No map starts after
 * the deadline: it gets the timeout result of a flush that did not begin. *ret_contended lists
 * (ascending) the maps whose lock another flusher held; their results[] are empty but for the
 * map's UUID, by which it is flushed again. */
int mpf_pool_run(const struct mpf_pool_exec *x, const struct mpf_pool_params *p, char *const *maps, size_t n,
                 struct mpf_map_result *results, size_t **ret_contended, size_t *ret_n_contended);

/* An executor that runs each flush in this process as it starts, with ops; wait() hands the
 * results back in the order they started. */
struct mpf_pool_inline;
int mpf_pool_inline_new(const struct mpf_ops *ops, size_t n, struct mpf_pool_inline **ret);
struct mpf_pool_inline *mpf_pool_inline_free(struct mpf_pool_inline *x);
static inline void mpf_pool_inline_freep(struct mpf_pool_inline **x)
{
        *x = mpf_pool_inline_free(*x);
}
void mpf_pool_inline_exec(struct mpf_pool_inline *x, struct mpf_pool_exec *ret);
