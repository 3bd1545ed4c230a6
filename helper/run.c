/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <assert.h>
#include <signal.h>
#include <string.h>

#include "device.h"
#include "guardian.h"
#include "journal.h"
#include "lastpath.h"
#include "log.h"
#include "macro.h"
#include "output.h"
#include "pool.h"
#include "run.h"
#include "worker.h"

void mpf_run_done(struct mpf_run *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_maps; i++)
                mpf_map_result_done(&r->maps[i]);
        r->maps = mfree(r->maps);
        r->n_maps = 0;
        r->error = mfree(r->error);
}

/* The remove uevents of the run's maps removed with no cookie (ops->remove_watched), in one wait
 * for all of them; short of memory for their list, in one wait a map (an event read while
 * waiting for another map is kept for its own wait). Returns the last wait's answer. */
static int wait_removed(const struct mpf_ops *ops, const struct mpf_flush_params *p,
                        const struct mpf_run *run)
{
        _cleanup_(freep) struct mpf_removed *all = calloc(run->n_maps, sizeof(*all));
        struct mpf_removed one;
        size_t next = 0;
        int r = 0;

        if (!all)
                log_warning("udev-wait: out of memory, waiting for the maps one by one");
        while (r != -ETIMEDOUT) {
                struct mpf_removed *l = all ? all : &one;
                size_t n = 0;

                for (; next < run->n_maps && (all || n == 0); next++)
                        if (run->maps[next].held_lock && run->maps[next].have_devt)
                                l[n++] = (struct mpf_removed){run->maps[next].devt,
                                                              run->maps[next].remove_seqnum};
                if (n == 0)
                        break;
                r = ops->udev_wait_removed(ops->userdata, l, n, p->deadline);
        }
        if (r < 0 && r != -ETIMEDOUT)
                log_warning_errno(r, "Waiting for udev failed: %m, ignoring");
        return r;
}

/* udev-wait for all maps removed under the shared cookie, then drop their locks. Returns true if
 * udev had not finished at the deadline. A remove that failed joined the cookie too
 * (libdevmapper makes it with the first task that uses it): when every remove failed, no map
 * holds a lock, but the cookie's semaphore exists all the same and is waited for here, so that it
 * is destroyed and does not leak. */
static bool finish_shared(const struct mpf_ops *ops, const struct mpf_flush_params *p, struct mpf_run *run,
                          uint32_t cookie)
{
        bool any = false;
        int r;

        for (size_t i = 0; i < run->n_maps; i++)
                any = any || run->maps[i].held_lock;
        if (!any && cookie == 0)
                return false;
        log_debug("udev-wait: waiting once for the run's removals");
        r = ops->udev_wait(ops->userdata, NULL, cookie, p->deadline);
        if (r < 0 && r != -ETIMEDOUT)
                log_warning_errno(r, "Waiting for udev failed: %m, ignoring");
        if (any && ops->udev_wait_removed && r != -ETIMEDOUT)
                r = wait_removed(ops, p, run);
        log_debug("udev-wait: done");
        for (size_t i = 0; i < run->n_maps; i++) {
                struct mpf_map_result *m = &run->maps[i];

                if (!m->held_lock)
                        continue;
                if (r == -ETIMEDOUT) {
                        free(m->reason);
                        m->reason = strdup("removed; udev had not finished with it at the deadline");
                }
                ops->unlock(ops->userdata, m->held_lock);
                m->held_lock = NULL;
        }
        return r == -ETIMEDOUT;
}

/* A map's result is final: --json-lines, and "systemctl status" of the unit running us shows how
 * far we got (a no-op outside a unit with NotifyAccess=). */
struct progress {
        mpf_map_done_fn done;
        void *userdata;
        bool waits; /* --wait-busy: a busy map waits for its next attempt before it is final */
        size_t finished, n;
};

static void map_done(void *userdata, const struct mpf_map_result *m)
{
        struct progress *pr = userdata;

        if (pr->done && !(pr->waits && m->result == MPF_RESULT_BUSY))
                pr->done(pr->userdata, m);
        pr->finished++;
        if (pr->n > 1)
                (void)mpf_notifyf("STATUS=Flushed %zu of %zu multipath maps", pr->finished, pr->n);
}

/* Several maps at once (pool.h). Each map lock is only tried while the pool runs: the pool keeps
 * the locks of removed maps until its one udev wait, so it must never wait for a lock (the rule
 * of doc/CONTRACT.md). The maps whose lock another flusher held are flushed after that wait, one
 * at a time, waiting for their lock with no other lock held. */
static int run_pool(const struct mpf_ops *ops, const struct mpf_flush_params *p, char *const *maps, size_t n,
                    struct progress *pr, struct mpf_run *run)
{
        _cleanup_(mpf_pool_inline_freep) struct mpf_pool_inline *in = NULL;
        _cleanup_(freep) size_t *contended = NULL;
        struct mpf_flush_params bp = *p;
        struct mpf_pool_params pp = {
                .jobs = p->jobs,
                .flush = &bp,
                .now = ops->now,
                .now_userdata = ops->userdata,
                .done = map_done,
                .done_userdata = pr,
        };
        struct mpf_pool_exec x;
        size_t n_contended = 0;
        uint32_t cookie = 0;
        int r;

        if (ops->pool_exec)
                x = *ops->pool_exec;
        else {
                r = mpf_pool_inline_new(ops, n, &in);
                if (r < 0)
                        return r;
                mpf_pool_inline_exec(in, &x);
        }
        bp.lock_try = true;
        /* the pool makes its own shared cookie: mpf_run_all_notify() never passes one here */
        assert(!p->shared_cookie);
        if (!p->dry_run) {
                /* made here: the workers' removes join it, we wait for it once */
                r = ops->cookie_new ? ops->cookie_new(ops->userdata, &cookie) : 0;
                if (r >= 0)
                        bp.shared_cookie = &cookie;
                else
                        /* no shared wait: each map waits for udev itself and then releases its
                         * locks, as a single map does */
                        log_warning_errno(
                                r, "Failed to make a udev cookie: %m, each map waits for udev itself");
        }
        r = mpf_pool_run(&x, &pp, maps, n, run->maps, &contended, &n_contended);
        run->n_maps = n;
        if (bp.shared_cookie) {
                (void)mpf_notify("STATUS=Waiting for udev to finish the removals");
                run->udev_late = finish_shared(ops, &bp, run, cookie);
        }
        if (r < 0)
                return r;
        for (size_t k = 0; k < n_contended && r >= 0; k++) {
                size_t i = contended[k];
                _cleanup_(mpf_map_result_done) struct mpf_map_result first = run->maps[i];

                log_debug("%s: another flusher held its lock, flushing it now", maps[i]);
                run->maps[i] = (struct mpf_map_result){};
                r = mpf_flush_map_again(ops, p, mpf_flush_map, maps[i], first.uuid, &run->maps[i]);
                if (r >= 0)
                        map_done(pr, &run->maps[i]);
        }
        return r;
}

int mpf_run_all(const struct mpf_ops *ops, const struct mpf_flush_params *p, bool all, char *const *maps,
                size_t n_maps, struct mpf_run *ret)
{
        return mpf_run_all_notify(ops, p, all, maps, n_maps, NULL, NULL, ret);
}

int mpf_run_all_notify(const struct mpf_ops *ops, const struct mpf_flush_params *p, bool all,
                       char *const *maps, size_t n_maps, mpf_map_done_fn done, void *userdata,
                       struct mpf_run *ret)
{
        const struct mpf_flush_params *p_each = p;
        usec_t started = ops->now(ops->userdata);
        bool waits = p->wait_busy && !p->dry_run; /* --dry-run predicts, it does not wait */
        struct progress pr = {.done = done, .userdata = userdata, .waits = waits};
        _cleanup_(strv_freep) char **listed = NULL;
        struct mpf_run run = {.exit_status = MPF_EXIT_OK};
        struct mpf_flush_params bp;
        uint32_t shared_cookie = 0;
        bool batch;
        int r;

        r = ops->check(ops->userdata);
        if (r < 0) {
                run.exit_status = MPF_EXIT_ENVIRONMENT;
                if (asprintf_safe(&run.error, "%s: %s",
                                  r == -EPERM || r == -EACCES
                                          ? "must be root (device-mapper not permitted)"
                                          : "device-mapper is not available (/dev/mapper/control)",
                                  strerror(-r)) < 0)
                        return -ENOMEM;
                *ret = run;
                return 0;
        }
        if (all) {
                r = ops->list(ops->userdata, &listed);
                if (r < 0) {
                        run.exit_status =
                                r == -EPERM || r == -EACCES ? MPF_EXIT_ENVIRONMENT : MPF_EXIT_FAILED;
                        if (asprintf_safe(&run.error, "cannot list the multipath maps: %s", strerror(-r)) <
                            0)
                                return -ENOMEM;
                        *ret = run;
                        return 0;
                }
                maps = listed;
                n_maps = strv_length(listed);
        }
        pr.n = n_maps;
        /* --jobs 1, --all: one udev cookie for all removes, waited for once at the end. Only for
         * --all: it holds each removed map's locks until then, and only the sorted order of --all
         * makes waiting for a map lock while holding others safe against another flusher doing the
         * same. */
        batch = all && p->shared_cookie == NULL && n_maps > 1 && !p->dry_run && p->jobs <= 1;
        if (batch) {
                bp = *p;
                bp.shared_cookie = &shared_cookie;
                p = &bp;
        }
        run.maps = calloc(n_maps ? n_maps : 1, sizeof(*run.maps));
        if (!run.maps)
                return -ENOMEM;
        if (p->jobs > 1 && n_maps > 1 && !p->shared_cookie) /* a caller's cookie: one by one */
                r = run_pool(ops, p, maps, n_maps, &pr, &run);
        else
                for (size_t i = 0; i < n_maps && r >= 0; i++) {
                        r = mpf_flush_map(ops, p, maps[i], &run.maps[i]);
                        run.n_maps++;
                        if (r >= 0)
                                map_done(&pr, &run.maps[i]);
                }
        if (batch) {
                (void)mpf_notify("STATUS=Waiting for udev to finish the removals");
                run.udev_late = finish_shared(ops, p, &run, shared_cookie);
        }
        if (waits && r >= 0) {
                /* each map on its own again: no locks kept across the wait */
                r = mpf_wait_busy(ops, p_each, mpf_flush_map, run.maps, run.n_maps, started, done, userdata);
        }
        for (size_t i = 0; i < run.n_maps; i++)
                run.exit_status =
                        mpf_exit_code_merge(run.exit_status, mpf_map_result_exit_code(&run.maps[i]));
        if (n_maps > 1 && r >= 0) {
                /* what "systemctl status" keeps showing once we are done */
                size_t removed = 0;

                for (size_t i = 0; i < run.n_maps; i++)
                        removed += run.maps[i].result == MPF_RESULT_REMOVED;
                (void)mpf_notifyf("STATUS=Done: %zu of %zu multipath maps removed", removed, n_maps);
        }
        if (r < 0) {
                mpf_run_done(&run);
                return r;
        }
        *ret = run;
        return 0;
}

/* --json-lines: each map's line as soon as its result is final */
static void print_map_line(void *userdata, const struct mpf_map_result *m)
{
        const struct mpf_options *o = userdata;
        int r;

        r = mpf_print_json_map_line(stdout, m, o->dry_run);
        if (r < 0)
                log_error_errno(r, "Failed to write a JSON line: %m");
}

int mpf_run_with_ops(const struct mpf_options *o, const struct mpf_ops *ops)
{
        struct mpf_flush_params p = {
                .jobs = o->jobs > 0 ? o->jobs : mpf_jobs_default(sysconf(_SC_NPROCESSORS_ONLN)),
                .deferred = o->deferred,
                .dry_run = o->dry_run,
                .wait_busy = o->wait_busy,
                .deadline = usec_add(ops->now(ops->userdata), o->timeout),
        };
        struct mpf_run run = {};
        int r, status;

        r = mpf_run_all_notify(ops, &p, o->all, o->maps, o->n_maps, o->json_lines ? print_map_line : NULL,
                               (void *)o, &run);
        if (r < 0) {
                log_error_errno(r, "Failed to run: %m");
                if (o->json)
                        (void)mpf_print_json_error(stdout, o->json_lines, MPF_VERSION, MPF_EXIT_FAILED,
                                                   strerror(-r));
                return MPF_EXIT_FAILED;
        }
        mpf_log_results(&run);
        if (o->json_lines) {
                r = mpf_print_json_summary_line(stdout, &run, MPF_VERSION, o->dry_run);
                if (r < 0)
                        log_error_errno(r, "Failed to write the JSON summary line: %m");
        } else if (o->json) {
                r = mpf_print_json(stdout, &run, MPF_VERSION, o->dry_run);
                if (r < 0)
                        log_error_errno(r, "Failed to write the JSON document: %m");
        } else if (o->dry_run)
                mpf_print_plan(stdout, &run);
        status = run.exit_status;
        mpf_run_done(&run);
        return status;
}

/* Did one of the signals in mask arrive (and wait) during the run? */
static bool signal_held(const sigset_t *mask)
{
        sigset_t pending;
        bool held = false;

        if (sigpending(&pending) < 0)
                return false;
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(mask, sig) == 1 && sigismember(&pending, sig) == 1) {
                        log_info("Received %s during the run: exiting with the run's status",
                                 strsignal(sig));
                        held = true;
                }
        return held;
}

/* The real world, with SIGINT, SIGTERM and SIGHUP held back from the start: a signal in the middle
 * of a flush would leave queueing disabled or a partition map gone; the run is bounded by the
 * deadline. (--if-pathless: systemd stops a running lastpath instance when the rule restarts it,
 * and runs it again; the instance finishes what it does first.) */
static int run_real(const struct mpf_options *o,
                    int (*fn)(const struct mpf_options *o, const struct mpf_ops *ops))
{
        /* The guardian is freed (told we are done, and reaped) after the device's locks are gone. */
        _cleanup_(mpf_guardian_freep) struct mpf_guardian *g = NULL;
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        _cleanup_(mpf_workers_freep) struct mpf_workers *w = NULL;
        struct mpf_pool_exec exec;
        struct mpf_ops ops;
        sigset_t mask;
        bool udev_sync;
        int r, status;

        /* A signal in the middle of a flush would leave queueing disabled or a partition map
         * gone: these wait until the run is over (it is bounded by the deadline). SIGPIPE too: a
         * log reader that went away must not end a flush (the write fails instead). What cannot
         * be held back (SIGKILL) the guardian answers. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGPIPE);
        sigaddset(&mask, SIGQUIT);
        sigaddset(&mask, SIGTSTP);
        sigaddset(&mask, SIGTTIN);
        sigaddset(&mask, SIGTTOU);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);

        udev_sync = !o->no_udev_sync && mpf_udev_running();
        if (!udev_sync)
                log_debug("Not synchronising with udev (%s)",
                          o->no_udev_sync ? "--no-udev-sync"
                                          : "udevd does not answer on " UDEV_CONTROL_PATH);
        /* before anything is opened: it must inherit nothing but its socket */
        r = o->dry_run ? 0 : mpf_guardian_start(udev_sync, &g);
        if (r < 0)
                log_error_errno(r, "Failed to start the guardian: %m");
        else {
                log_debug("run: guardian started");
                r = mpf_device_new(udev_sync, &d);
                if (r < 0)
                        log_error_errno(r, "Failed to set up: %m");
                else
                        log_debug("run: device-mapper ready");
        }
        if (r < 0) {
                if (o->json)
                        (void)mpf_print_json_error(stdout, o->json_lines, MPF_VERSION, MPF_EXIT_FAILED,
                                                   strerror(-r));
                status = MPF_EXIT_FAILED;
        } else {
                mpf_device_set_guardian(d, g);
                mpf_device_ops(d, &ops);
                /* several maps at once: each in a worker process of its own (worker.h) */
                if (mpf_workers_new(d, &ops, &w) >= 0) {
                        mpf_workers_exec(w, &exec);
                        ops.pool_exec = &exec;
                }
                status = fn(o, &ops);
        }
        fflush(stdout);
        log_debug("run: output written");
        w = mpf_workers_free(w);
        log_debug("run: workers gone");
        /* We exit now: the write-back worker and, with one map (no pool worker ever connected to
         * it), an idle guardian exit by themselves, holding nothing of ours; they are not waited
         * for. After several maps the guardian may still put a dead worker's map back: it is.
         * (Under a unit, the log_close() below keeps us until journald has read our log.) */
        d = mpf_device_leave(d);
        log_debug("run: device closed");
        if (o->all || o->n_maps > 1)
                g = mpf_guardian_free(g);
        else
                g = mpf_guardian_leave(g);
        log_debug("run: guardian gone");
        /* A signal held back during the run has had its effect: the run ended, at its deadline at
         * the latest. Letting it through now would replace the run's answer with death by that
         * signal, which systemd counts as a clean exit (SIGTERM, SIGINT, SIGHUP) and a script
         * cannot tell from success: "busy" would look like "removed". So we exit with the run's
         * status, and the signal stays blocked until then. */
        (void)signal_held(&mask);
        /* journald is done with our log, signal_held()'s line included. The signals stay blocked
         * until we exit: one that comes during this drain must not end us either. No record of
         * ours follows: main() does not drain again. */
        log_close();
        return status;
}

int mpf_run(const struct mpf_options *o)
{
        return run_real(o, mpf_run_with_ops);
}

static int if_pathless(const struct mpf_options *o, const struct mpf_ops *ops)
{
        struct mpf_lastpath_params p = {
                .deadline = usec_add(ops->now(ops->userdata), o->timeout),
                .policy = mpf_last_del_read,
                .flush = mpf_flush_map,
        };
        int r;

        r = ops->check(ops->userdata);
        if (r < 0) {
                log_error_errno(r, "device-mapper is not available: %m");
                return MPF_EXIT_ENVIRONMENT;
        }
        r = mpf_lastpath(ops, &p, o->maps[0]);
        if (r < 0) {
                log_error_errno(r, "Failed to run: %m");
                return MPF_EXIT_FAILED;
        }
        return r;
}

int mpf_run_if_pathless(const struct mpf_options *o)
{
        return run_real(o, if_pathless);
}
