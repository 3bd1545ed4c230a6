/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "macro.h"
#include "pool.h"

unsigned mpf_jobs_default(long ncpu)
{
        if (ncpu < 1)
                ncpu = 1;
        if ((unsigned long)ncpu >= MPF_JOBS_DEFAULT_MAX / MPF_JOBS_PER_CPU)
                return MPF_JOBS_DEFAULT_MAX;
        return (unsigned)ncpu * MPF_JOBS_PER_CPU;
}

bool mpf_pool_may_keep_locks(size_t kept, size_t in_flight, uint64_t fd_limit)
{
        uint64_t budget = fd_limit / 2;
        uint64_t coming = ((uint64_t)in_flight + 1) * MPF_POOL_FDS_PER_MAP;

        return (uint64_t)kept <= budget && coming <= budget - kept;
}

/* The result of a flush that never began: at `resolve`, with the reason given (taken over). */
static int unstarted(const char *arg, MpfResult result, char *reason, struct mpf_map_result *ret)
{
        *ret = (struct mpf_map_result){
                .queueing_before = -1,
                .queueing_after = -1,
                .result = result,
                .step = MPF_STEP_RESOLVE,
                .attempts = 1,
                .reason = reason,
        };
        ret->map = strdup(arg);
        return ret->map && ret->reason ? 0 : -ENOMEM;
}

/* the deadline had passed: what flush.c says when no step may start any more */
static int not_started(const char *arg, struct mpf_map_result *ret)
{
        return unstarted(arg, MPF_RESULT_TIMEOUT, strdup("the deadline passed before this step"), ret);
}

static int start_failed(const char *arg, int error, struct mpf_map_result *ret)
{
        char *reason = NULL;

        (void)asprintf_safe(&reason, "cannot start its flush: %s", strerror(-error));
        return unstarted(arg, MPF_RESULT_FAILED, reason, ret);
}

int mpf_pool_run(const struct mpf_pool_exec *x, const struct mpf_pool_params *p, char *const *maps, size_t n,
                 struct mpf_map_result *results, size_t **ret_contended, size_t *ret_n_contended)
{
        _cleanup_(freep) size_t *contended = NULL;
        size_t next = 0, running = 0, n_contended = 0;
        unsigned jobs = MAX(p->jobs, 1U);
        int r = 0;

        contended = calloc(n ? n : 1, sizeof(*contended));
        if (!contended)
                return -ENOMEM;
        while (next < n || running > 0) {
                size_t i;

                /* fill the free slots, in the order of the maps */
                while (running < jobs && next < n && r >= 0) {
                        i = next++;
                        if (deadline_passed(p->flush->deadline, p->now(p->now_userdata))) {
                                r = not_started(maps[i], &results[i]);
                        } else {
                                int k = x->start(x->userdata, i, maps[i], p->flush);

                                if (k >= 0) {
                                        running++;
                                        continue;
                                }
                                r = start_failed(maps[i], k, &results[i]);
                        }
                        if (r >= 0 && p->done)
                                p->done(p->done_userdata, &results[i]);
                }
                if (running == 0)
                        break;
                /* once something failed (-ENOMEM), only collect what runs */
                if (r < 0)
                        next = n;
                {
                        struct mpf_map_result m = {};
                        int k = x->wait(x->userdata, &i, &m);

                        if (k < 0) {
                                if (x->finish)
                                        x->finish(x->userdata);
                                return k; /* the executor lost its flushes: nothing sane is left */
                        }
                        running--;
                        results[i] = m;
                }
                if (results[i].lock_contended) {
                        /* flushed again once the pool is done (run.c), found by this UUID */
                        char *uuid = TAKE_PTR(results[i].uuid);

                        mpf_map_result_done(&results[i]);
                        results[i] = (struct mpf_map_result){.uuid = uuid};
                        contended[n_contended++] = i;
                        continue;
                }
                if (p->done)
                        p->done(p->done_userdata, &results[i]);
        }
        if (x->finish)
                x->finish(x->userdata);
        if (r < 0)
                return r;
        /* ascending, so that they run again in the order given */
        for (size_t a = 1; a < n_contended; a++)
                for (size_t b = a; b > 0 && contended[b - 1] > contended[b]; b--) {
                        size_t t = contended[b];
                        contended[b] = contended[b - 1];
                        contended[b - 1] = t;
                }
        *ret_contended = TAKE_PTR(contended);
        *ret_n_contended = n_contended;
        return 0;
}

/* ---- the inline executor ---- */

struct mpf_pool_inline {
        const struct mpf_ops *ops;
        struct mpf_map_result *done; /* finished, not yet handed back, in the order they started */
        size_t *index;
        size_t head, tail, size;
};

int mpf_pool_inline_new(const struct mpf_ops *ops, size_t n, struct mpf_pool_inline **ret)
{
        struct mpf_pool_inline *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        x->ops = ops;
        x->size = n ? n : 1;
        x->done = calloc(x->size, sizeof(*x->done));
        x->index = calloc(x->size, sizeof(*x->index));
        if (!x->done || !x->index) {
                mpf_pool_inline_free(x);
                return -ENOMEM;
        }
        *ret = x;
        return 0;
}

struct mpf_pool_inline *mpf_pool_inline_free(struct mpf_pool_inline *x)
{
        if (!x)
                return NULL;
        for (size_t k = x->head; k < x->tail; k++)
                mpf_map_result_done(&x->done[k]);
        free(x->done);
        free(x->index);
        free(x);
        return NULL;
}

static int inline_start(void *u, size_t i, const char *arg, const struct mpf_flush_params *p)
{
        struct mpf_pool_inline *x = u;
        int r;

        if (x->tail >= x->size)
                return -ENOBUFS;
        r = mpf_flush_map(x->ops, p, arg, &x->done[x->tail]);
        if (r < 0) {
                mpf_map_result_done(&x->done[x->tail]);
                return r;
        }
        x->index[x->tail++] = i;
        return 0;
}

static int inline_wait(void *u, size_t *ret_i, struct mpf_map_result *ret)
{
        struct mpf_pool_inline *x = u;

        if (x->head >= x->tail)
                return -ECHILD;
        *ret_i = x->index[x->head];
        *ret = x->done[x->head];
        x->done[x->head++] = (struct mpf_map_result){};
        return 0;
}

void mpf_pool_inline_exec(struct mpf_pool_inline *x, struct mpf_pool_exec *ret)
{
        *ret = (struct mpf_pool_exec){.userdata = x, .start = inline_start, .wait = inline_wait};
}
