/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ordered flush of one dm-multipath map, top to bottom:
 *
 *   resolve      find the map; only "mpath-" maps with one multipath target are ours
 *   lock         map lock, then path device locks, taken and held by a worker process (a path
 *                device open waits out SCSI error recovery); re-check the map
 *   in-use       holders, mounts in every namespace, swaps, loop devices, lasting open fds: named,
 *                or busy; opens nobody accounts for are a kernel user (busy) unless no path is usable
 *   queueing     fail_if_no_path, so queued I/O errors out instead of hanging the flush; multipathd
 *                is told first, and its answer is read before sole-opener (it serves its
 *                clients one command at a time: the steps in between need not wait for it)
 *   partitions   remove the kpartx partition maps (each must be unused)
 *   claim        open O_RDONLY|O_EXCL: fails while mounted or claimed; never O_RDWR
 *   flush        write back and fsync, in a worker process, bounded by the deadline; the worker
 *                keeps its own open of the map, so that our close is never the map's last
 *   sole-opener  our fd and the worker's must be the only opens; transient openers get a bounded
 *                backoff
 *   remove       close ours, then the worker writes back what others dirtied since and closes its
 *                open, the last (bounded); DM_DEV_REMOVE (or deferred remove), never a suspend
 *   udev-wait    bounded wait for udev to finish with the removed node
 *   done
 *
 * On failure after queueing was disabled, queueing is restored before returning; partition maps
 * removed by a flush that fails later are made again (same name, UUID and table). What queueing
 * and partitions change is written down first in the map's undo record (undo.h), which puts the
 * map back also when the helper dies mid-flush.
 * Writes that were queued on a map without a usable path fail when queueing goes off: the map is
 * removed all the same (keeping it saves nothing), and the result says written data was lost.
 * With --deferred, a map in use goes from in-use straight to a deferred remove.
 * With --wait-busy, a busy map is flushed again from the top by wait.c once something changed;
 * here it only bounds how long sole-opener and remove wait with the map locked.
 * Running several maps (and the shared udev cookie of --all) is run.c's business.
 */
#include <stdarg.h>
#include <string.h>

#include "flush.h"
#include "log.h"
#include "macro.h"
#include "mpathd.h"

struct flush {
        const struct mpf_ops *ops;
        const struct mpf_flush_params *p;
        struct mpf_map_result *res;

        struct mpf_dm_info map;
        char *params; /* multipath table parameters */
        struct mpf_target *targets;
        size_t n_targets;
        unsigned explained;
        struct mpf_undo undo;  /* what we changed and must put back (queueing, partition maps) */
        bool recorded;         /* the undo record exists (undo is written down) */
        bool mpathd_left;      /* a record left behind keeps queueing off in multipathd: whatever
                                * our own disablequeueing comes to, restorequeueing is owed */
        usec_t mpathd_sent;    /* disablequeueing went to multipathd then, its answer not read yet */
        usec_t put_back_until; /* putting back is bounded by this, once set (put_back_deadline()) */

        void *lock;
        int fd;
        unsigned own_opens; /* opens of the map that are ours: our fd, and the write-back worker's */
        uint32_t cookie;
        bool udev_pending;   /* a remove was issued: udev (or libdm's node fallback) must be waited for */
        bool event_pending;  /* the map was removed with no cookie: udev is waited for by its uevent */
        bool shared_pending; /* the map's remove joined p->shared_cookie: keep the locks for the caller */
        bool cache_flush_failed;
        bool count_writes;       /* queued I/O is drained: count the writes that fail meanwhile */
        uint64_t sectors_before; /* the map's written sectors before queueing went off */
        usec_t start;
};

static usec_t now(const struct flush *f)
{
        return f->ops->now(f->ops->userdata);
}

static const char *map_label(const struct flush *f)
{
        return f->res->name ? f->res->name : f->res->map;
}

/* Record where and why we stopped. Returns 0 (the result carries the outcome). */
_printf_(4, 5) static int stop(struct flush *f, MpfResult result, MpfStep step, const char *fmt, ...)
{
        va_list ap;

        f->res->result = result;
        f->res->step = step;
        free(f->res->reason);
        f->res->reason = NULL;
        va_start(ap, fmt);
        if (vasprintf(&f->res->reason, fmt, ap) < 0)
                f->res->reason = NULL;
        va_end(ap);
        return 0;
}

/* No step that changes the map starts after the deadline. Returns true (and the result says
 * timeout at step) when it has passed; what was done before is undone by the caller's cleanup. */
static bool too_late(struct flush *f, MpfStep step)
{
        if (!deadline_passed(f->p->deadline, now(f)))
                return false;
        (void)stop(f, MPF_RESULT_TIMEOUT, step, "the deadline passed before this step");
        return true;
}

static void step_debug(const struct flush *f, MpfStep step, const char *what)
{
        log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, mpf_step_to_string(step), "%s", what);
}

int mpf_info_by_ref(const struct mpf_ops *ops, const char *name, const char *uuid, struct mpf_dm_info *ret)
{
        if (uuid && uuid[0])
                return ops->info_by_uuid(ops->userdata, uuid, ret);
        return ops->info_by_name(ops->userdata, name, ret);
}

/* The map or one of its partition maps as it is now (mpf_info_by_ref). */
static int lookup(const struct flush *f, const char *name, const char *uuid, struct mpf_dm_info *ret)
{
        return mpf_info_by_ref(f->ops, name, uuid, ret);
}

static int set_identity(struct flush *f, const struct mpf_dm_info *info)
{
        f->map = *info;
        memcpy(f->undo.name, info->name, sizeof(f->undo.name));
        memcpy(f->undo.uuid, info->uuid, sizeof(f->undo.uuid));
        f->undo.devt = info->devt;
        free(f->res->name);
        free(f->res->uuid);
        f->res->name = strdup(info->name);
        f->res->uuid = strdup(info->uuid);
        f->res->devt = info->devt;
        f->res->have_devt = true;
        return f->res->name && f->res->uuid ? 0 : -ENOMEM;
}

/* ---- restore: put back what the steps changed (undo.c does it, for us and for the guardian) ---- */

int mpf_map_still(const struct mpf_ops *ops, const char *uuid, dev_t devt, struct mpf_dm_info *ret)
{
        int r;

        r = ops->info_by_uuid(ops->userdata, uuid, ret);
        if (r < 0)
                return r;
        return ret->exists && ret->devt == devt;
}

/* Has someone else (multipath -f, dmsetup) removed or replaced the map meanwhile? Errors count as
 * "no". */
static bool map_gone(struct flush *f)
{
        struct mpf_dm_info info;

        return mpf_map_still(f->ops, f->map.uuid, f->map.devt, &info) == 0;
}

/* Write down what we are about to change (or have put back), before we change it. */
static int record(struct flush *f)
{
        int r;

        if (!f->recorded && mpf_undo_empty(&f->undo))
                return 0;
        r = f->ops->record_write(f->ops->userdata, &f->undo);
        if (r < 0)
                return log_map(LOG_ERR, r, map_label(f), f->map.uuid, NULL,
                               "Failed to write the undo record: %m");
        f->recorded = !mpf_undo_empty(&f->undo);
        return 0;
}

static usec_t restore_deadline(const struct flush *f)
{
        return MAX(f->p->deadline, usec_add(now(f), RESTORE_GRACE_USEC));
}

/* Putting back what this flush changed (a step's, then mpf_flush_map()'s for what is left) is
 * bounded once: the deadline, or the grace from the first put-back when that is later. An answer
 * of multipathd's not waited for yet gets the time the remove would have given it, and the grace:
 * never more than the grace past the deadline. */
static usec_t put_back_deadline(struct flush *f)
{
        if (f->put_back_until == 0) {
                usec_t t = restore_deadline(f);

                if (f->mpathd_sent != 0)
                        t = MAX(t,
                                usec_add(MIN(f->p->deadline, usec_add(f->mpathd_sent, MPATHD_TIMEOUT_USEC)),
                                         RESTORE_GRACE_USEC));
                f->put_back_until = t;
        }
        return f->put_back_until;
}

static void restore_queueing(struct flush *f)
{
        /* queueing found off, the kernel's mark left by a flusher that died: it goes on now */
        bool left = f->res->queueing_before == 0 && f->undo.kernel_queueing_disabled;
        int r = mpf_undo_queueing(f->ops, &f->undo, put_back_deadline(f));

        if (!f->undo.mpathd_queueing_disabled)
                f->mpathd_left = false; /* restorequeueing got through: owed no more */
        /* the last put-back says it: one that finds multipathd's late answer mends an earlier one */
        f->res->restore_failed = r < 0;
        if (r == 0)
                f->res->queueing_after = left ? 1 : f->res->queueing_before;
}

/* The flush failed after the partitions step: make the partition maps we removed again, with
 * their names, UUIDs and tables, as kpartx made them. */
static void restore_partitions(struct flush *f)
{
        size_t made = 0;
        int r = mpf_undo_partitions(f->ops, &f->undo, put_back_deadline(f), &made);

        if (made > 0) {
                char *s = NULL;

                if (asprintf_safe(&s, "%s; its %zu partition map(s) were re-created",
                                  strempty(f->res->reason), made) >= 0) {
                        free(f->res->reason);
                        f->res->reason = s;
                }
        }
        if (r < 0)
                f->res->partitions_lost = true;
}

/* When we stop early: let udev finish what was removed (bounded by the deadline, then the
 * semaphore is released by us) so that no cookie leaks. */
static void finish_cookie(struct flush *f)
{
        if (!f->udev_pending)
                return;
        (void)f->ops->udev_wait(f->ops->userdata, &f->map, f->cookie, f->p->deadline);
        f->cookie = 0;
        f->udev_pending = false;
}

static void note_stuck(struct flush *f, pid_t stuck)
{
        if (stuck > 0 && f->res->stuck_worker == 0)
                f->res->stuck_worker = stuck;
}

/* Close our fd, and the worker's open of the map, when the flush stops short of removing it. The
 * worker's close may be the map's last, which writes back what others dirtied: it is waited for a
 * moment only; a worker stuck in it is left behind and named. */
static void release(struct flush *f)
{
        pid_t stuck = 0;

        if (f->fd < 0)
                return;
        (void)f->ops->release(f->ops->userdata, f->fd, false, usec_add(now(f), RELEASE_GRACE_USEC), &stuck);
        f->fd = -EBADF;
        f->own_opens = 0;
        note_stuck(f, stuck);
}

static int describe_blockers(struct flush *f, char **ret)
{
        char *s = mpf_blockers_describe(&f->res->blockers);

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Look again who holds the map (for naming it when we give up at step). Our own fd is closed by
 * now: an open of the map that one of the run's processes still holds is a leak of ours, not a
 * user, and is named as ours (in the reason too: mpf_blockers_describe()). */
static void rescan_blockers(struct flush *f, MpfStep step)
{
        struct mpf_blockers b = {};
        unsigned explained = 0;

        if (!f->targets)
                return;
        /* naming who holds it is worth a moment past the deadline; the walk is bounded all the same */
        if (f->ops->scan_usage(f->ops->userdata, f->targets, f->n_targets,
                               usec_add(now(f), RESCAN_GRACE_USEC), &b, &explained) < 0)
                return;
        b.unexplained_opens = f->res->blockers.unexplained_opens;
        mpf_blockers_done(&f->res->blockers);
        f->res->blockers = b;
        for (size_t i = 0; i < b.n_openers; i++)
                if (b.openers[i].own)
                        log_map(LOG_WARNING, 0, map_label(f), f->map.uuid, mpf_step_to_string(step),
                                "%s is held open by our own process %d (%s: %s), not by a user",
                                b.openers[i].device, (int)b.openers[i].pid, b.openers[i].comm,
                                b.openers[i].own);
}

/* ---- 1 resolve ---- */

/* Read the live table: one multipath target, and whether it queues. Returns 1 when the flush
 * stops here (the result says why), 0 to go on. */
static int read_table(struct flush *f, MpfStep step)
{
        const struct mpf_ops *o = f->ops;
        _cleanup_(freep) char *type = NULL, *params = NULL;
        unsigned n_targets = 0;
        int r;

        r = o->table(o->userdata, f->map.name, f->map.uuid, &n_targets, &type, &params);
        if (r == -ENXIO)
                return stop(f, MPF_RESULT_ABSENT, step, "the map disappeared") + 1;
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, step, "cannot read the table: %s", strerror(-r)) + 1;
        if (n_targets != 1 || !type || strcmp(type, MPF_MULTIPATH_TARGET) != 0)
                return stop(f, MPF_RESULT_REFUSED, step,
                            "not a dm-multipath map (table has %u target(s), first '%s')", n_targets,
                            strempty(type)) +
                       1;
        r = mpf_features_queue_if_no_path(params);
        f->res->queueing_before = r < 0 ? -1 : r;
        f->res->queueing_after = f->res->queueing_before;
        free(f->params);
        f->params = TAKE_PTR(params);
        return 0;
}

static int step_resolve(struct flush *f, const char *arg, bool *done)
{
        const struct mpf_ops *o = f->ops;
        struct mpf_dm_info info = {};
        int kind, r;

        *done = true;
        kind = mpf_arg_classify(arg);
        if (kind < 0)
                return stop(f, MPF_RESULT_REFUSED, MPF_STEP_RESOLVE,
                            "not a valid map name, path, WWID or UUID");

        switch (kind) {
        case MPF_ARG_PATH:
                r = o->info_by_path(o->userdata, arg, &info);
                if (r == -ENOENT) {
                        const char *name = startswith(arg, "/dev/mapper/");
                        /* the node may be missing while the map exists */
                        if (name && mpf_name_valid(name))
                                r = o->info_by_name(o->userdata, name, &info);
                        else
                                return stop(f, MPF_RESULT_ABSENT, MPF_STEP_RESOLVE, "%s does not exist",
                                            arg);
                }
                if (r == -ENOTBLK)
                        return stop(f, MPF_RESULT_REFUSED, MPF_STEP_RESOLVE, "%s is not a block device",
                                    arg);
                if (r == -ENODEV)
                        return stop(f, MPF_RESULT_REFUSED, MPF_STEP_RESOLVE,
                                    "%s is not a device-mapper device", arg);
                break;
        case MPF_ARG_UUID:
                r = o->info_by_uuid(o->userdata, arg, &info);
                if (r >= 0 && !info.exists)
                        r = o->info_by_name(o->userdata, arg, &info); /* a map named "mpath-..." */
                break;
        case MPF_ARG_NAME:
        default:
                r = o->info_by_name(o->userdata, arg, &info);
                if (r >= 0 && !info.exists && strlen(MPF_MPATH_UUID_PREFIX) + strlen(arg) < MPF_UUID_MAX) {
                        _cleanup_(freep) char *uuid = NULL;
                        if (asprintf_safe(&uuid, MPF_MPATH_UUID_PREFIX "%s", arg) < 0)
                                return -ENOMEM;
                        r = o->info_by_uuid(o->userdata, uuid, &info); /* a WWID */
                }
                break;
        }
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_RESOLVE, "cannot look up the map: %s",
                            strerror(-r));
        if (!info.exists)
                return stop(f, MPF_RESULT_ABSENT, MPF_STEP_RESOLVE, "no such map");

        r = set_identity(f, &info);
        if (r < 0)
                return r;

        if (!mpf_uuid_is_mpath(info.uuid))
                return stop(
                        f, MPF_RESULT_REFUSED, MPF_STEP_RESOLVE,
                        "not a dm-multipath map (DM UUID '%s' does not start with '" MPF_MPATH_UUID_PREFIX
                        "')",
                        info.uuid);
        if (read_table(f, MPF_STEP_RESOLVE) > 0)
                return 0;
        *done = false;
        return 0;
}

/* ---- 2 lock ---- */

/* A flusher that died mid-flush (and its guardian with it) left its undo record: put the map back
 * as that flusher found it, then read its table again (queueing is on again, if it was). Also when
 * not all of it could be put back (we go on): the kernel's queueing may be on again all the same,
 * and the queueing step must know. What is left becomes ours: the record we write next replaces
 * that one and says it too, and our own put-back tries it again. */
static int undo_leftover(struct flush *f)
{
        _cleanup_(freep) char *type = NULL, *params = NULL;
        unsigned n = 0;
        int r;

        r = mpf_undo_leftover(f->ops, f->map.uuid, restore_deadline(f), &f->undo);
        if (r == 0)
                return 0; /* no record */
        /* that record stays until ours replaces it, or goes when we have put the rest back */
        f->recorded = !mpf_undo_empty(&f->undo);
        f->mpathd_left = f->undo.mpathd_queueing_disabled;
        r = f->ops->table(f->ops->userdata, f->map.name, f->map.uuid, &n, &type, &params);
        if (r < 0 || n != 1 || !params)
                return 0;
        r = mpf_features_queue_if_no_path(params);
        f->res->queueing_before = f->res->queueing_after = r < 0 ? -1 : r;
        return 0;
}

static int step_lock(struct flush *f, bool *done)
{
        const struct mpf_ops *o = f->ops;
        struct mpf_dm_info info;
        struct mpf_stuck stuck = {};
        int r;

        *done = true;
        /* --if-pathless took them already (lastpath.c) */
        r = f->p->locked ? 0
                         : o->lock(o->userdata, &f->map, f->p->lock_try, f->p->deadline, &f->lock, &stuck);
        if (r == -EAGAIN && f->p->lock_try) {
                f->res->lock_contended = true; /* the pool flushes it again, with no other lock held */
                return stop(f, MPF_RESULT_BUSY, MPF_STEP_LOCK, "another flusher holds the map lock");
        }
        if (r == -ETIMEDOUT && stuck.pid > 0) {
                note_stuck(f, stuck.pid);
                return stop(f, MPF_RESULT_TIMEOUT, MPF_STEP_LOCK,
                            "could not take the path locks before the deadline: %s did not return (SCSI "
                            "error recovery?); the worker doing it (pid %d) is stuck in the kernel and was "
                            "left behind, holding no lock and no descriptor of ours",
                            stuck.in, (int)stuck.pid);
        }
        if (r == -ETIMEDOUT)
                return stop(f, MPF_RESULT_TIMEOUT, MPF_STEP_LOCK,
                            "could not take the map and path locks before the deadline");
        if (r == -ENXIO)
                return stop(f, MPF_RESULT_ABSENT, MPF_STEP_LOCK, "the map disappeared");
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_LOCK, "cannot take the locks: %s", strerror(-r));

        /* another flusher may have removed it while we waited */
        r = o->info_by_uuid(o->userdata, f->map.uuid, &info);
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_LOCK, "cannot look up the map: %s", strerror(-r));
        if (!info.exists)
                return stop(f, MPF_RESULT_ABSENT, MPF_STEP_LOCK,
                            "the map was removed while we waited for the lock");
        r = set_identity(f, &info);
        if (r < 0)
                return r;
        /* Whatever was read before the wait may have changed during it (another flusher had
         * queueing off, then restored it): read the table again. The path list was read after the
         * map lock was taken; the partition maps are read by the next step. */
        if (read_table(f, MPF_STEP_LOCK) > 0)
                return 0;
        step_debug(f, MPF_STEP_LOCK, "map and path devices locked");
        r = undo_leftover(f);
        if (r < 0)
                return r;
        *done = false;
        return 0;
}

/* ---- 3 in-use ---- */

/* Every use of a map opens it or one of its partition maps: a mount, swap, a holder (LVM, another
 * map, a loop device), a process's fd, I/O queued from a closed fd. So when the map is open only
 * once per partition map (their tables hold it) and no partition map is open at all, nobody uses
 * it, and the scan of every process's fds and mount table (the costly part of a flush) has
 * nothing to find. Returns 1 in that case, 0 when the scan must tell who uses it. */
static int nobody_opens(struct flush *f)
{
        if (f->map.open_count < 0 || (size_t)f->map.open_count > f->n_targets - 1)
                return 0;
        for (size_t i = 1; i < f->n_targets; i++) {
                struct mpf_dm_info info;
                int r;

                r = lookup(f, f->targets[i].name, f->targets[i].uuid, &info);
                if (r < 0)
                        return r;
                if (info.exists && info.open_count != 0)
                        return 0;
        }
        return 1;
}

static int scan_in_use(struct flush *f)
{
        const struct mpf_ops *o = f->ops;
        int r;

        f->targets = mfree(f->targets);
        r = o->targets(o->userdata, &f->map, &f->targets, &f->n_targets);
        if (r < 0)
                return r;
        if (f->n_targets == 0)
                return -ENXIO;

        f->res->partitions = strv_free(f->res->partitions);
        f->res->partitions = calloc(1, sizeof(char *));
        if (!f->res->partitions)
                return -ENOMEM;
        for (size_t i = 1; i < f->n_targets; i++) {
                r = strv_extend(&f->res->partitions, f->targets[i].name);
                if (r < 0)
                        return r;
        }

        mpf_blockers_done(&f->res->blockers);
        r = nobody_opens(f);
        if (r < 0)
                return r;
        if (r > 0) {
                step_debug(f, MPF_STEP_IN_USE, "no open beyond its own partition maps: not in use");
                f->explained = (unsigned)f->map.open_count;
                return 0;
        }
        r = o->scan_usage(o->userdata, f->targets, f->n_targets, f->p->deadline, &f->res->blockers,
                          &f->explained);
        if (r < 0)
                return r;

        /* partition maps are among the map's holders: the scan counts them as explained */
        if (f->map.open_count > 0 && (unsigned)f->map.open_count > f->explained)
                f->res->blockers.unexplained_opens = (unsigned)f->map.open_count - f->explained;
        return 0;
}

static bool only_openers(const struct mpf_blockers *b)
{
        return b->n_openers > 0 && strv_length(b->holders) == 0 && b->n_mounts == 0 &&
               strv_length(b->swaps) == 0;
}

/* Drop the openers of a that are not in b (same pid and device). */
static void keep_common_openers(struct mpf_blockers *a, const struct mpf_blockers *b)
{
        size_t k = 0;

        for (size_t i = 0; i < a->n_openers; i++) {
                bool found = false;

                for (size_t j = 0; j < b->n_openers && !found; j++)
                        found = a->openers[i].pid == b->openers[j].pid &&
                                strcmp(a->openers[i].device, b->openers[j].device) == 0;
                if (found)
                        a->openers[k++] = a->openers[i];
                else {
                        free(a->openers[i].comm);
                        free(a->openers[i].device);
                        free(a->openers[i].own);
                }
        }
        a->n_openers = k;
}

/* Only processes have it open: are they lasting users or passers-by like blkid? Re-scan until
 * IN_USE_SETTLE_USEC has passed; what is left in f->res->blockers is the lasting users (none:
 * not in use). Mounts, holders or swaps showing up meanwhile count at once. */
static int settle_openers(struct flush *f)
{
        const struct mpf_ops *o = f->ops;
        usec_t until = MIN(f->p->deadline, usec_add(now(f), IN_USE_SETTLE_USEC));
        struct backoff b;

        backoff_init(&b, SOLE_OPENER_BACKOFF_FIRST_USEC, SOLE_OPENER_BACKOFF_MAX_USEC);
        while (f->res->blockers.n_openers > 0) {
                struct mpf_blockers cur = {};
                unsigned explained;
                usec_t t = now(f), d;
                int r;

                d = backoff_step(&b, until, t);
                if (d == 0)
                        break;
                o->sleep_until(o->userdata, t + d);
                r = o->scan_usage(o->userdata, f->targets, f->n_targets, f->p->deadline, &cur, &explained);
                if (r < 0)
                        return r;
                if (!only_openers(&cur) && mpf_blockers_any(&cur)) {
                        cur.unexplained_opens = f->res->blockers.unexplained_opens;
                        mpf_blockers_done(&f->res->blockers);
                        f->res->blockers = cur;
                        return 0;
                }
                keep_common_openers(&f->res->blockers, &cur);
                mpf_blockers_done(&cur);
        }
        return 0;
}

/* Opens that nobody accounts for. dm-multipath queues I/O only while no path is usable: on a map
 * with a usable path they are a user the scan cannot name (a kernel user leaving no trace in
 * holders/ or /proc), never queued I/O, and draining them would switch queueing off under that
 * user. The first count may be off, though: the open count and the scan are not one snapshot, and
 * an opener like blkid that comes or goes in between skews it. So they are counted again for
 * IN_USE_SETTLE_USEC, each time with the open count read before and after the scan; a count that
 * changed across the scan says nothing and is skipped. One steady count of 0 clears them; they
 * are a user when every steady count saw them. Returns 1 when they are a user (the reason is in
 * *ret_why), 0 when there are none or the map has no usable path (the flush drains them). */
static int unexplained_user(struct flush *f, char **ret_why)
{
        const struct mpf_ops *o = f->ops;
        struct mpf_blockers *bl = &f->res->blockers;
        unsigned steady = 0;
        usec_t until;
        struct backoff b;
        int n, r;

        *ret_why = NULL;
        if (bl->unexplained_opens == 0 || mpf_blockers_any(bl))
                return 0;
        n = o->active_paths(o->userdata, f->map.name, f->map.uuid);
        if (n == 0)
                return 0; /* queued I/O: the queueing step fails it, the flush drains it */

        until = MIN(f->p->deadline, usec_add(now(f), IN_USE_SETTLE_USEC));
        backoff_init(&b, SOLE_OPENER_BACKOFF_FIRST_USEC, SOLE_OPENER_BACKOFF_MAX_USEC);
        for (;;) {
                struct mpf_blockers cur = {};
                struct mpf_dm_info before, after;
                unsigned explained = 0, left;
                usec_t t = now(f), d;

                d = backoff_step(&b, until, t);
                if (d == 0)
                        break;
                o->sleep_until(o->userdata, t + d);
                r = lookup(f, f->map.name, f->map.uuid, &before);
                if (r >= 0)
                        r = o->scan_usage(o->userdata, f->targets, f->n_targets, f->p->deadline, &cur,
                                          &explained);
                if (r >= 0)
                        r = lookup(f, f->map.name, f->map.uuid, &after);
                if (r < 0) {
                        mpf_blockers_done(&cur);
                        return r;
                }
                if (!before.exists || !after.exists) {
                        mpf_blockers_done(&cur);
                        return -ENXIO;
                }
                left = before.open_count > 0 && (unsigned)before.open_count > explained
                               ? (unsigned)before.open_count - explained
                               : 0;
                if (!only_openers(&cur) && mpf_blockers_any(&cur)) {
                        /* a user with a name showed up meanwhile: that one is named */
                        cur.unexplained_opens = left;
                        mpf_blockers_done(bl);
                        *bl = cur;
                        return 0;
                }
                mpf_blockers_done(&cur);
                if (before.open_count != after.open_count)
                        continue; /* someone came or went during the scan */
                bl->unexplained_opens = left;
                if (left == 0)
                        return 0;
                steady++;
        }
        if (steady == 0)
                log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, "in-use",
                        "the open count never held still during a scan; going by the first count");
        if (bl->unexplained_opens == 0)
                return 0;
        if (n < 0)
                r = asprintf_safe(ret_why,
                                  "%u open(s) by a user that leaves no trace in holders/ or /proc, and the "
                                  "path states cannot be read (%s) to tell them from queued I/O",
                                  bl->unexplained_opens, strerror(-n));
        else
                r = asprintf_safe(ret_why,
                                  "%u open(s) by a kernel user that leaves no trace in holders/ or /proc "
                                  "(with %d usable path(s), no I/O is queued on the map)",
                                  bl->unexplained_opens, n);
        return r < 0 ? r : 1;
}

static int step_in_use(struct flush *f, bool *done, bool *ret_in_use)
{
        _cleanup_(freep) char *who = NULL;
        int r;

        *done = true;
        *ret_in_use = false;
        r = scan_in_use(f);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && only_openers(&f->res->blockers))
                r = settle_openers(f);
        if (r >= 0)
                r = unexplained_user(f, &who);
        if (r == -ENOMEM)
                return r;
        if (r == -ENXIO)
                return stop(f, MPF_RESULT_ABSENT, MPF_STEP_IN_USE, "the map disappeared");
        if (r == -ETIMEDOUT)
                return stop(f, MPF_RESULT_TIMEOUT, MPF_STEP_IN_USE,
                            "the deadline passed while looking for the map's users");
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_IN_USE, "cannot find the map's users: %s",
                            strerror(-r));
        if (r > 0) {
                /* --deferred or not: a user we cannot name is a user; queueing stays as it is */
                *ret_in_use = true;
                if (f->p->deferred) {
                        *done = false;
                        return 0;
                }
                return stop(f, MPF_RESULT_BUSY, MPF_STEP_IN_USE, "%s", who);
        }

        if (mpf_blockers_any(&f->res->blockers)) {
                *ret_in_use = true;
                if (f->p->deferred) {
                        *done = false;
                        return 0;
                }
                r = describe_blockers(f, &who);
                if (r < 0)
                        return r;
                return stop(f, MPF_RESULT_BUSY, MPF_STEP_IN_USE, "%s", who);
        }

        /* nobody named and unexplained_user() let them through: the map has no usable path */
        if (f->res->blockers.unexplained_opens > 0) {
                log_map(LOG_INFO, 0, map_label(f), f->map.uuid, "in-use",
                        "%u open(s) nobody accounts for on a map without a usable path: I/O queued for a "
                        "closed fd; proceeding, the flush fails and drains it",
                        f->res->blockers.unexplained_opens);
                f->count_writes = true;
        }
        *done = false;
        return 0;
}

/* ---- 4 queueing ---- */

/* What multipathd's part of disablequeueing came to, r as mpathd() returns it once waited for
 * (-EINPROGRESS: no answer by then), logged for the map at step: true when it switched queueing
 * off or may have (it got the command: count it as done, and putting queueing back reads its
 * answer first, on the same connection). */
static bool mpathd_disabled(int r, const char *name, const char *uuid, const char *step)
{
        if (r >= 0)
                return true;
        if (r == -EINPROGRESS) {
                log_map(LOG_WARNING, 0, name, uuid, step,
                        "multipathd has not answered disablequeueing yet, going on; should queueing be "
                        "put back, its answer is read first");
                return true;
        }
        if (r == -ENOENT || r == -ECONNREFUSED)
                log_map(LOG_DEBUG, 0, name, uuid, step, "multipathd does not run");
        else
                log_map(LOG_WARNING, r, name, uuid, step,
                        "multipathd did not disable queueing: %m, ignoring");
        return false;
}

int mpf_queueing_disable(const struct mpf_ops *o, const char *name, const char *uuid, usec_t deadline,
                         bool *ret_mpathd, bool *ret_pending)
{
        _cleanup_(freep) char *cmd = NULL;
        bool wait = !ret_pending || !o->mpathd_send;
        int r;

        *ret_mpathd = false;
        if (ret_pending)
                *ret_pending = false;
        /* multipathd first, so that it does not switch queueing back on behind us */
        if (asprintf_safe(&cmd, "disablequeueing map %s", name) < 0)
                return -ENOMEM;
        r = wait ? o->mpathd(o->userdata, cmd, deadline) : o->mpathd_send(o->userdata, cmd, deadline);
        if (ret_pending)
                *ret_pending = r == -EINPROGRESS;
        /* sent without waiting, "in progress" is what we asked for */
        *ret_mpathd = !wait && r == -EINPROGRESS ? true : mpathd_disabled(r, name, uuid, "queueing");
        return o->message(o->userdata, name, uuid, "fail_if_no_path");
}

static int step_queueing(struct flush *f, bool *done)
{
        const struct mpf_ops *o = f->ops;
        bool kernel_was, mpathd_was, by_mpathd = false;
        usec_t sent;
        int r;

        *done = true;
        if (too_late(f, MPF_STEP_QUEUEING))
                return 0;
        /* I/O is queued on this pathless map: what fails once queueing is off is counted against
         * this mark (the map's disk statistics count failed writes as completed) */
        if (f->count_writes && o->sectors_written(o->userdata, &f->map, &f->sectors_before) < 0) {
                log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, "queueing",
                        "cannot read the map's disk statistics; failed writes are not counted");
                f->count_writes = false;
        }
        if (f->res->queueing_before < 0)
                log_map(LOG_WARNING, 0, map_label(f), f->map.uuid, "queueing",
                        "Cannot parse the features of the table, disabling queueing anyway");
        else if (f->res->queueing_before == 0) {
                step_debug(f, MPF_STEP_QUEUEING, "queue_if_no_path is off, nothing to do");
                *done = false;
                return 0;
        }

        /* written down before it is done: if we die now, our guardian switches it on again */
        kernel_was = f->undo.kernel_queueing_disabled; /* set by a record left behind */
        mpathd_was = f->undo.mpathd_queueing_disabled;
        f->undo.kernel_queueing_disabled = f->undo.mpathd_queueing_disabled = true;
        r = record(f);
        if (r < 0) {
                f->undo.kernel_queueing_disabled = kernel_was;
                f->undo.mpathd_queueing_disabled = mpathd_was;
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_QUEUEING, "cannot write the undo record: %s",
                            strerror(-r));
        }
        sent = now(f);
        r = mpf_queueing_disable(o, f->map.name, f->map.uuid, f->p->deadline, &by_mpathd,
                                 &f->undo.mpathd_reply_pending);
        f->undo.mpathd_queueing_disabled = by_mpathd || f->mpathd_left;
        /* sent without waiting: read_mpathd_answer() reads the answer (else it was waited for) */
        if (o->mpathd_send && f->undo.mpathd_reply_pending)
                f->mpathd_sent = sent;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                restore_queueing(f);
                if (map_gone(f))
                        return stop(f, MPF_RESULT_ABSENT, MPF_STEP_QUEUEING,
                                    "the map was removed by someone else");
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_QUEUEING, "fail_if_no_path failed: %s",
                            strerror(-r));
        }
        f->res->queueing_after = 0;
        *done = false;
        return 0;
}

/* ---- 5 partitions ---- */

/* Keep what it takes to make a partition map again, and write it down, before it is removed. */
static int save_partition(struct flush *f, const struct mpf_target *t)
{
        struct mpf_dm_saved s = {};
        int r;

        r = f->ops->save(f->ops->userdata, t->name, t->uuid, &s);
        if (r < 0)
                return r;
        r = mpf_undo_add_saved(&f->undo, &s);
        if (r < 0)
                return r;
        r = record(f);
        if (r < 0)
                mpf_undo_drop_last(&f->undo);
        return r;
}

static int step_partitions(struct flush *f, bool *done)
{
        const struct mpf_ops *o = f->ops;
        int r;

        *done = true;
        if (too_late(f, MPF_STEP_PARTITIONS))
                return 0;
        for (size_t i = 1; i < f->n_targets; i++) {
                const struct mpf_target *t = &f->targets[i];
                struct mpf_dm_info info;

                r = lookup(f, t->name, t->uuid, &info);
                if (r < 0) {
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_PARTITIONS, "cannot look up %s: %s",
                                    t->name, strerror(-r));
                }
                if (!info.exists)
                        continue;
                if (info.open_count > 0) {
                        restore_queueing(f);
                        rescan_blockers(f, MPF_STEP_PARTITIONS);
                        return stop(f, MPF_RESULT_BUSY, MPF_STEP_PARTITIONS, "partition map %s is open (%d)",
                                    t->name, info.open_count);
                }
                if (deadline_passed(f->p->deadline, now(f))) {
                        finish_cookie(f);
                        return stop(f, MPF_RESULT_TIMEOUT, MPF_STEP_PARTITIONS,
                                    "the deadline passed during this step");
                }
                r = save_partition(f, t);
                if (r == -ENXIO)
                        continue;
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        finish_cookie(f);
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_PARTITIONS,
                                    "cannot read the table of %s: %s", t->name, strerror(-r));
                }
                log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, "partitions", "removing partition map %s",
                        t->name);
                r = o->remove(o->userdata, t->name, t->uuid, false, &f->cookie);
                f->udev_pending = true;
                if (r < 0) /* not removed by us: nothing to make again */
                        mpf_undo_drop_last(&f->undo);
                if (r == -ENXIO)
                        continue;
                if (r < 0) {
                        finish_cookie(f);
                        restore_queueing(f);
                        if (r == -EBUSY)
                                return stop(f, MPF_RESULT_BUSY, MPF_STEP_PARTITIONS,
                                            "partition map %s is in use", t->name);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_PARTITIONS, "cannot remove %s: %s",
                                    t->name, strerror(-r));
                }
                log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, "partitions", "removed partition map %s",
                        t->name);
        }
        /* udev must be done with the partition nodes before we claim the map */
        if (f->udev_pending) {
                r = o->udev_wait(o->userdata, &f->map, f->cookie, f->p->deadline);
                f->cookie = 0;
                f->udev_pending = false;
                if (r < 0 && r != -ETIMEDOUT)
                        log_map(LOG_WARNING, r, map_label(f), f->map.uuid, "partitions",
                                "Waiting for udev failed: %m, ignoring");
        }
        *done = false;
        return 0;
}

/* ---- 6 claim ---- */

static int step_claim(struct flush *f, bool *done)
{
        _cleanup_(freep) char *who = NULL;
        int r;

        *done = true;
        if (too_late(f, MPF_STEP_CLAIM))
                return 0;
        r = f->ops->claim(f->ops->userdata, &f->map, &f->fd);
        if (r == -EBUSY) {
                restore_queueing(f);
                rescan_blockers(f, MPF_STEP_CLAIM);
                r = describe_blockers(f, &who);
                if (r < 0)
                        return r;
                return stop(f, MPF_RESULT_BUSY, MPF_STEP_CLAIM,
                            "mounted or claimed (exclusive open failed)%s%s", *who ? ": " : "", who);
        }
        if (r < 0) {
                restore_queueing(f);
                if (map_gone(f))
                        return stop(f, MPF_RESULT_ABSENT, MPF_STEP_CLAIM,
                                    "the map was removed by someone else");
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_CLAIM, "cannot open the map: %s", strerror(-r));
        }
        f->own_opens = 1;
        *done = false;
        return 0;
}

/* ---- 7 flush ---- */

/* What a write-back came to: the flush step's, or the one the worker makes before its last close
 * (what others wrote meanwhile). Returns 0 to go on (written back; or failed for lack of any path,
 * which keeping the map would not save: said so), 1 when the flush stops here with the map kept
 * (the result says why, naming the write-back as `what`). */
static int writeback_outcome(struct flush *f, int r, pid_t stuck, MpfStep step, const char *what)
{
        if (r == -EIO && f->ops->active_paths(f->ops->userdata, f->map.name, f->map.uuid) == 0) {
                /* Data could not be written, and no path is usable: it failed for lack of a path
                 * (once queueing is off, or earlier: the error is reported to whoever syncs first).
                 * Its pages are no longer dirty; keeping the map saves none of it. Go on, and say so. */
                log_map(LOG_WARNING, r, map_label(f), f->map.uuid, mpf_step_to_string(step),
                        "written data was lost: the write-back failed (%m) and no path is usable");
                f->res->data_lost = true;
                r = 0;
        }
        if (r > 0) {
                /* Every dirty page reached the paths; only the empty cache-flush request failed. On a
                 * map without an active path (queueing is off now) that is expected: removing it loses
                 * nothing that keeping it would save. With an active path, the storage refused to make
                 * the data stable: that is a failure, and the map stays. */
                int n = f->ops->active_paths(f->ops->userdata, f->map.name, f->map.uuid);

                if (n == 0) {
                        log_map(LOG_WARNING, 0, map_label(f), f->map.uuid, mpf_step_to_string(step),
                                "data written back; the device cache flush failed and no path is active, "
                                "ignoring");
                        f->cache_flush_failed = true;
                        return 0;
                }
                release(f);
                restore_queueing(f);
                if (n < 0)
                        return stop(f, MPF_RESULT_FAILED, step,
                                    "the device cache flush failed, and the path states cannot be read "
                                    "(%s): written data may not be stable",
                                    strerror(-n)) +
                               1;
                return stop(f, MPF_RESULT_FAILED, step,
                            "the device cache flush failed with %d active path(s): written data may not be "
                            "stable",
                            n) +
                       1;
        }
        if (r >= 0)
                return 0;
        release(f);
        restore_queueing(f);
        if (r == -ETIMEDOUT && stuck > 0) {
                note_stuck(f, stuck);
                return stop(f, MPF_RESULT_TIMEOUT, step,
                            "%s did not finish before the deadline; its worker (pid %d) is stuck in the "
                            "kernel and was left behind, holding an open of the map but not its claim",
                            what, (int)stuck) +
                       1;
        }
        if (r == -ETIMEDOUT)
                return stop(f, MPF_RESULT_TIMEOUT, step, "%s did not finish before the deadline", what) + 1;
        if (r == -EIO)
                return stop(f, MPF_RESULT_FAILED, step, "%s failed: data could not be written (EIO)", what) +
                       1;
        return stop(f, MPF_RESULT_FAILED, step, "%s failed: %s", what, strerror(-r)) + 1;
}

static int step_flush(struct flush *f, bool *done)
{
        pid_t stuck = 0;
        int r;

        *done = true;
        r = f->ops->flush(f->ops->userdata, f->fd, f->p->deadline, &stuck);
        if (r != -ETIMEDOUT)
                f->own_opens = 2; /* the worker keeps its open of the map until release() */
        if (writeback_outcome(f, r, stuck, MPF_STEP_FLUSH, "fsync") > 0)
                return 0;
        step_debug(f, MPF_STEP_FLUSH, "fsync done");
        *done = false;
        return 0;
}

/* ---- 8 sole-opener ---- */

/* multipathd's answer to the queueing step's disablequeueing, not waited for there, is read before
 * the map goes (and before the check that leads to it, so that the check is fresh): a command it
 * carried out after the remove could hit a map made again under the same name. Bounded as a
 * command waited for at once would have been. */
static int read_mpathd_answer(struct flush *f)
{
        const struct mpf_ops *o = f->ops;
        const char *step = mpf_step_to_string(MPF_STEP_SOLE_OPENER);
        _cleanup_(freep) char *cmd = NULL;
        int r;

        if (f->mpathd_sent == 0 || !f->undo.mpathd_reply_pending || !o->mpathd_reply)
                return 0;
        r = o->mpathd_reply(o->userdata, MIN(f->p->deadline, usec_add(f->mpathd_sent, MPATHD_TIMEOUT_USEC)));
        f->mpathd_sent = 0; /* read, or given up on: putting queueing back reads it, if it must */
        if (r == -ETIMEDOUT) {
                (void)mpathd_disabled(-EINPROGRESS, map_label(f), f->map.uuid, step); /* still pending */
                return 0;
        }
        f->undo.mpathd_reply_pending = false;
        if (r == -ENOMEM)
                return r;
        if (r == -ENOMSG)
                return 0;
        if (r == -EPROTO) {
                /* as putting back does: it may have switched queueing off */
                log_map(LOG_WARNING, r, map_label(f), f->map.uuid, step,
                        "multipathd's answer to disablequeueing is not understood, counting it as done");
                return 0;
        }
        if (r < 0 && r != -EBADMSG) {
                struct mpf_dm_info cur;

                /* The connection broke (multipathd restarted?): once more, waited for, by the name
                 * the map has now (multipathd knows it by name; since the lock step it may have been
                 * renamed and its old name given to another map). Gone meanwhile: nothing to send. */
                if (mpf_map_still(o, f->map.uuid, f->map.devt, &cur) > 0) {
                        if (asprintf_safe(&cmd, "disablequeueing map %s", cur.name) < 0)
                                return -ENOMEM;
                        r = o->mpathd(o->userdata, cmd, f->p->deadline);
                        f->undo.mpathd_reply_pending = r == -EINPROGRESS;
                }
        }
        f->undo.mpathd_queueing_disabled =
                mpathd_disabled(r, map_label(f), f->map.uuid, step) || f->mpathd_left;
        return 0;
}

static int step_sole_opener(struct flush *f, bool *done, bool *ret_still_open)
{
        const struct mpf_ops *o = f->ops;
        _cleanup_(freep) char *who = NULL;
        struct backoff b;
        struct mpf_dm_info info;
        usec_t until = f->p->deadline;
        int r;

        *done = true;
        *ret_still_open = false;
        /* with --deferred, a lasting opener is no reason to spend the whole deadline here */
        if (f->p->deferred)
                until = MIN(until, usec_add(now(f), SOLE_OPENER_DEFERRED_WAIT_USEC));
        /* with --wait-busy, not with the lock held: the wait module waits for it unlocked */
        if (f->p->wait_busy)
                until = MIN(until, usec_add(now(f), WAIT_BUSY_LOCKED_USEC));
        backoff_init(&b, SOLE_OPENER_BACKOFF_FIRST_USEC, SOLE_OPENER_BACKOFF_MAX_USEC);
        for (;;) {
                usec_t t, d;

                r = lookup(f, f->map.name, f->map.uuid, &info);
                if (r < 0) {
                        release(f);
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_SOLE_OPENER, "cannot look up the map: %s",
                                    strerror(-r));
                }
                if (!info.exists || info.open_count <= (int)MAX(f->own_opens, 1U)) {
                        *done = false;
                        return 0;
                }
                t = now(f);
                d = backoff_step(&b, until, t);
                if (d == 0)
                        break;
                log_map(LOG_DEBUG, 0, map_label(f), f->map.uuid, "sole-opener",
                        "open count %d, waiting %llu us", info.open_count, (unsigned long long)d);
                o->sleep_until(o->userdata, t + d);
        }

        if (f->p->deferred) {
                *ret_still_open = true;
                *done = false;
                return 0;
        }
        release(f);
        restore_queueing(f);
        rescan_blockers(f, MPF_STEP_SOLE_OPENER);
        r = describe_blockers(f, &who);
        if (r < 0)
                return r;
        return stop(f, MPF_RESULT_BUSY, MPF_STEP_SOLE_OPENER, "%s (open count %d)%s%s",
                    mpf_blockers_any_own(&f->res->blockers) ? "still opened by a process of this run"
                                                            : "still opened by others",
                    info.open_count, *who ? ": " : "", who);
}

/* The queued I/O is drained (the open count is down to ours): every write the map completed since
 * queueing went off, with no usable path, failed. Its sectors are counted, not its requests: our
 * own fsync's cache flush is a write request too, without sectors. */
static void count_failed_writes(struct flush *f)
{
        const struct mpf_ops *o = f->ops;
        uint64_t after;

        if (!f->count_writes || o->sectors_written(o->userdata, &f->map, &after) < 0)
                return;
        if (after <= f->sectors_before || o->active_paths(o->userdata, f->map.name, f->map.uuid) != 0)
                return; /* none; or a path came back meanwhile and some may have succeeded */
        f->res->failed_write_bytes = (after - f->sectors_before) * 512;
        f->res->data_lost = true;
        log_map(LOG_WARNING, 0, map_label(f), f->map.uuid, "flush",
                "%llu bytes of queued writes failed when queueing was switched off: written data was lost",
                (unsigned long long)f->res->failed_write_bytes);
}

/* ---- 9 remove ---- */

static int step_remove(struct flush *f, bool deferred, bool *done)
{
        const struct mpf_ops *o = f->ops;
        usec_t until = f->p->deadline;
        struct backoff b;
        pid_t stuck = 0;
        int r;

        *done = true;
        if (deferred) {
                /* partition maps first (when we come here straight from in-use), then the map.
                 * The fd, if we hold one, is dropped only after the deferred remove is queued. */
                for (size_t i = 1; i < f->n_targets; i++) {
                        r = o->remove(o->userdata, f->targets[i].name, f->targets[i].uuid, true, &f->cookie);
                        f->udev_pending = true;
                        if (r < 0 && r != -ENXIO) {
                                release(f);
                                finish_cookie(f);
                                restore_queueing(f);
                                return stop(f, MPF_RESULT_FAILED, MPF_STEP_REMOVE,
                                            "deferred remove of %s failed: %s", f->targets[i].name,
                                            strerror(-r));
                        }
                }
                r = o->remove(o->userdata, f->map.name, f->map.uuid, true, &f->cookie);
                f->udev_pending = true;
                release(f);
                if (r < 0 && r != -ENXIO) {
                        finish_cookie(f);
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_REMOVE, "deferred remove failed: %s",
                                    strerror(-r));
                }
                *done = false;
                return 0;
        }

        /* Our close first (never the last: the worker holds its own open), then the worker writes back
         * what others wrote since the flush step and closes its open: the map's last close, which
         * would write back in the kernel, unbounded, if it were ours. */
        r = o->release(o->userdata, f->fd, true, MAX(f->p->deadline, usec_add(now(f), RELEASE_GRACE_USEC)),
                       &stuck);
        f->fd = -EBADF;
        f->own_opens = 0;
        if (writeback_outcome(f, r, stuck, MPF_STEP_REMOVE,
                              "the write-back of what others wrote to the map after the flush step") > 0)
                return 0;
        if (f->p->wait_busy)
                until = MIN(until, usec_add(now(f), WAIT_BUSY_LOCKED_USEC));
        backoff_init(&b, REMOVE_BACKOFF_FIRST_USEC, REMOVE_BACKOFF_MAX_USEC);
        for (;;) {
                usec_t t, d;

                r = o->remove_watched ? o->remove_watched(o->userdata, f->map.name, f->map.uuid,
                                                          &f->res->remove_seqnum)
                                      : -EOPNOTSUPP;
                if (r != -EOPNOTSUPP) {
                        /* no cookie: udev is waited for by the map's remove uevent, once for all
                         * maps by our caller (pool), or in the udev-wait step */
                        if (r >= 0 && f->p->shared_cookie)
                                f->shared_pending = true;
                        else if (r >= 0)
                                f->event_pending = true;
                } else if (f->p->shared_cookie) {
                        /* udev is waited for once, for all maps, by our caller */
                        r = o->remove(o->userdata, f->map.name, f->map.uuid, false, f->p->shared_cookie);
                        f->shared_pending = true;
                } else {
                        r = o->remove(o->userdata, f->map.name, f->map.uuid, false, &f->cookie);
                        f->udev_pending = true;
                }
                if (r >= 0 || r == -ENXIO) {
                        step_debug(f, MPF_STEP_REMOVE, "removed");
                        /* gone: its queueing went with it, nothing to restore any more */
                        f->undo.kernel_queueing_disabled = f->undo.mpathd_queueing_disabled =
                                f->undo.mpathd_reply_pending = false;
                        break;
                }
                if (r != -EBUSY) {
                        finish_cookie(f);
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_FAILED, MPF_STEP_REMOVE, "remove failed: %s",
                                    strerror(-r));
                }
                t = now(f);
                d = backoff_step(&b, until, t);
                if (d == 0) {
                        _cleanup_(freep) char *who = NULL;

                        finish_cookie(f);
                        restore_queueing(f);
                        rescan_blockers(f, MPF_STEP_REMOVE);
                        r = describe_blockers(f, &who);
                        if (r < 0)
                                return r;
                        return stop(f, MPF_RESULT_BUSY, MPF_STEP_REMOVE, "%s%s%s",
                                    mpf_blockers_any_own(&f->res->blockers)
                                            ? "held open by a process of this run, not by a user"
                                            : "opened again before removal",
                                    *who ? ": " : "", who);
                }
                step_debug(f, MPF_STEP_REMOVE, "map busy (EBUSY), retrying");
                o->sleep_until(o->userdata, t + d);
        }
        *done = false;
        return 0;
}

/* ---- 10 udev-wait, done ---- */

static int step_udev_wait(struct flush *f, bool deferred)
{
        const struct mpf_ops *o = f->ops;
        struct mpf_dm_info info;
        bool udev_late = false, cookie_late = false;
        int r;

        if (f->udev_pending) {
                step_debug(f, MPF_STEP_UDEV_WAIT, "starting");
                r = o->udev_wait(o->userdata, &f->map, f->cookie, f->p->deadline);
                f->cookie = 0;
                f->udev_pending = false;
                if (r == -ETIMEDOUT)
                        udev_late = cookie_late = true;
                else if (r < 0)
                        log_map(LOG_WARNING, r, map_label(f), f->map.uuid, "udev-wait",
                                "Waiting for udev failed: %m, ignoring");
        }
        if (f->event_pending) {
                step_debug(f, MPF_STEP_UDEV_WAIT, "starting (the map's remove uevent)");
                struct mpf_removed rm = {.devt = f->map.devt, .seqnum = f->res->remove_seqnum};

                r = o->udev_wait_removed(o->userdata, &rm, 1, f->p->deadline);
                f->event_pending = false;
                if (r == -ETIMEDOUT)
                        udev_late = true;
                else if (r < 0)
                        log_map(LOG_WARNING, r, map_label(f), f->map.uuid, "udev-wait",
                                "Waiting for udev failed: %m, ignoring");
        }

        r = o->info_by_uuid(o->userdata, f->map.uuid, &info);
        if (r < 0) {
                restore_queueing(f);
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_UDEV_WAIT,
                            "cannot check that the map is gone: %s", strerror(-r));
        }
        if (info.exists) {
                if (deferred && info.deferred_remove) {
                        /* still in use: it goes when the last user closes it; keep it usable until then */
                        restore_queueing(f);
                        return stop(f, MPF_RESULT_DEFERRED, MPF_STEP_REMOVE,
                                    "in use; removal deferred until the last user closes it");
                }
                restore_queueing(f);
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_UDEV_WAIT,
                            "the map still exists after its removal");
        }
        f->undo.kernel_queueing_disabled = f->undo.mpathd_queueing_disabled = f->undo.mpathd_reply_pending =
                false; /* gone with the map */
        if (udev_late)
                return stop(
                        f, MPF_RESULT_REMOVED, MPF_STEP_DONE, "%s",
                        cookie_late
                                ? "removed; udev had not finished with it at the deadline (cookie released)"
                                : "removed; udev had not finished with it at the deadline");
        if (f->res->data_lost && f->res->failed_write_bytes > 0)
                return stop(f, MPF_RESULT_REMOVED, MPF_STEP_DONE,
                            "removed; %llu bytes of writes queued for a path failed when queueing was "
                            "switched off: written data was lost",
                            (unsigned long long)f->res->failed_write_bytes);
        if (f->res->data_lost)
                return stop(f, MPF_RESULT_REMOVED, MPF_STEP_DONE,
                            "removed; the write-back failed with no usable path: written data was lost");
        if (f->cache_flush_failed)
                return stop(f, MPF_RESULT_REMOVED, MPF_STEP_DONE,
                            "removed; all data was written back, the device cache flush failed (no usable "
                            "path)");
        return stop(f, MPF_RESULT_REMOVED, MPF_STEP_DONE, "removed");
}

/* ---- dry run ---- */

static int plan(struct flush *f, const char *fmt, ...) _printf_(2, 3);
static int plan(struct flush *f, const char *fmt, ...)
{
        char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_push(&f->res->plan, s);
}

static int dry_run(struct flush *f)
{
        _cleanup_(freep) char *who = NULL, *unnamed = NULL;
        bool in_use;
        int r, n;

        r = scan_in_use(f);
        if (r >= 0 && only_openers(&f->res->blockers))
                r = settle_openers(f);
        if (r >= 0)
                r = unexplained_user(f, &unnamed);
        if (r == -ENOMEM)
                return r;
        if (r == -ETIMEDOUT)
                return stop(f, MPF_RESULT_TIMEOUT, MPF_STEP_IN_USE,
                            "the deadline passed while looking for the map's users");
        if (r < 0)
                return stop(f, MPF_RESULT_FAILED, MPF_STEP_IN_USE, "cannot find the map's users: %s",
                            strerror(-r));
        in_use = r > 0 || mpf_blockers_any(&f->res->blockers);
        if (unnamed)
                who = TAKE_PTR(unnamed);
        else {
                r = describe_blockers(f, &who);
                if (r < 0)
                        return r;
        }

        if (plan(f, "lock: map lock for %s, then its path devices", f->map.uuid) < 0 ||
            plan(f, "in-use: %s", *who ? who : "not in use") < 0)
                return -ENOMEM;
        if (in_use && !f->p->deferred)
                return stop(f, MPF_RESULT_BUSY, MPF_STEP_IN_USE, "in use: %s", who);
        if (in_use) {
                for (size_t i = 1; i < f->n_targets; i++)
                        if (plan(f, "remove: deferred remove of partition map %s", f->targets[i].name) < 0)
                                return -ENOMEM;
                if (plan(f, "remove: deferred remove of %s", f->map.name) < 0 || plan(f, "udev-wait") < 0)
                        return -ENOMEM;
                return stop(f, MPF_RESULT_DEFERRED, MPF_STEP_IN_USE, "in use: %s", who);
        }
        if (plan(f, "queueing: %s",
                 f->res->queueing_before == 0 ? "queue_if_no_path is off, nothing to do"
                                              : "fail_if_no_path (and multipathd disablequeueing)") < 0)
                return -ENOMEM;
        if (f->res->blockers.unexplained_opens > 0 &&
            plan(f,
                 "queueing: %u open(s) nobody accounts for on a map without a usable path are queued I/O; "
                 "it "
                 "fails when queueing goes off, and if it holds writes, written data is lost (exit 8)",
                 f->res->blockers.unexplained_opens) < 0)
                return -ENOMEM;
        for (size_t i = 1; i < f->n_targets; i++)
                if (plan(f, "partitions: remove %s", f->targets[i].name) < 0)
                        return -ENOMEM;
        n = f->ops->active_paths(f->ops->userdata, f->map.name, f->map.uuid);
        if (plan(f, "claim: open %s's node (by its dev_t) read-only, exclusive", f->map.name) < 0 ||
            (n >= 0 ? plan(f, "flush: fsync (%d active path(s))", n)
                    : plan(f, "flush: fsync (path states unreadable: %s)", strerror(-n))) < 0 ||
            plan(f, "sole-opener: open count must be 2 (our claim and the write-back worker's open)") < 0 ||
            plan(f, "remove: %s", f->map.name) < 0 || plan(f, "udev-wait") < 0)
                return -ENOMEM;
        return stop(f, MPF_RESULT_REMOVED, MPF_STEP_IN_USE, "nothing blocks the removal");
}

/* ---- the whole flush ---- */

/* No step starts after the deadline: the map is then left as found (mpf_flush_map restores what
 * the steps before changed). Each step's start is logged, so -v shows how far a run got. */
static bool step_begins(struct flush *f, MpfStep step)
{
        if (too_late(f, step))
                return false;
        step_debug(f, step, "starting");
        return true;
}

static int flush_steps(struct flush *f, const char *arg)
{
        bool done, in_use, still_open, deferred;
        int r;

        if (!step_begins(f, MPF_STEP_RESOLVE))
                return 0;
        r = step_resolve(f, arg, &done);
        if (r < 0 || done)
                return r;
        if (f->p->dry_run)
                return dry_run(f);
        r = step_lock(f, &done);
        if (r < 0 || done)
                return r;
        if (!step_begins(f, MPF_STEP_IN_USE))
                return 0;
        r = step_in_use(f, &done, &in_use);
        if (r < 0 || done)
                return r;
        if (in_use) {
                /* --deferred and in use: leave queueing alone, let the kernel remove it later */
                if (!step_begins(f, MPF_STEP_REMOVE))
                        return 0;
                r = step_remove(f, true, &done);
                if (r < 0 || done)
                        return r;
                return step_udev_wait(f, true);
        }
        if (!step_begins(f, MPF_STEP_QUEUEING))
                return 0;
        r = step_queueing(f, &done);
        if (r < 0 || done)
                return r;
        if (!step_begins(f, MPF_STEP_PARTITIONS))
                return 0;
        r = step_partitions(f, &done);
        if (r < 0 || done)
                return r;
        if (!step_begins(f, MPF_STEP_CLAIM))
                return 0;
        r = step_claim(f, &done);
        if (r < 0 || done)
                return r;
        if (!step_begins(f, MPF_STEP_FLUSH))
                return 0;
        r = step_flush(f, &done);
        if (r < 0 || done)
                return r;
        r = read_mpathd_answer(f); /* multipathd's, before the map goes */
        if (r < 0)
                return r;
        if (!step_begins(f, MPF_STEP_SOLE_OPENER))
                return 0;
        r = step_sole_opener(f, &done, &still_open);
        if (r < 0 || done)
                return r;
        count_failed_writes(f);                      /* the queued I/O is drained now: did writes fail? */
        deferred = still_open;                       /* only with --deferred */
        f->n_targets = MIN(f->n_targets, (size_t)1); /* partition maps are gone already */
        if (!step_begins(f, MPF_STEP_REMOVE))
                return 0;
        r = step_remove(f, deferred, &done);
        if (r < 0 || done)
                return r;
        return step_udev_wait(f, deferred);
}

int mpf_flush_map(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                  struct mpf_map_result *ret)
{
        struct flush f = {
                .ops = ops,
                .p = p,
                .res = ret,
                .fd = -EBADF,
        };
        int r;

        *ret = (struct mpf_map_result){
                .queueing_before = -1,
                .queueing_after = -1,
                .result = MPF_RESULT_FAILED,
                .step = MPF_STEP_RESOLVE,
        };
        ret->map = strdup(arg);
        if (!ret->map)
                return -ENOMEM;
        ret->attempts = 1;
        f.start = now(&f);

        r = flush_steps(&f, arg);

        /* whatever happened: no fd, no cookie, queueing as found unless the map is gone */
        release(&f);
        finish_cookie(&f);
        restore_queueing(&f);
        if (ret->result != MPF_RESULT_REMOVED && ret->result != MPF_RESULT_DEFERRED)
                restore_partitions(&f);
        else
                while (f.undo.n_saved > 0) /* the partition maps went (or go) with the map */
                        mpf_undo_drop_last(&f.undo);
        /* what could not be put back stays written down for the next flusher; else the record goes */
        (void)record(&f);
        mpf_undo_done(&f.undo);
        if (f.lock && f.shared_pending && ret->result == MPF_RESULT_REMOVED)
                ret->held_lock = TAKE_PTR(f.lock); /* until udev is done with the shared cookie */
        if (f.lock)
                ops->unlock(ops->userdata, f.lock);
        free(f.params);
        free(f.targets);
        ret->elapsed_ms = (now(&f) - f.start) / USEC_PER_MSEC;
        log_map(LOG_DEBUG, 0, map_label(&f), f.map.uuid, NULL, "finished: %s in %llu ms",
                mpf_result_to_string(ret->result), (unsigned long long)ret->elapsed_ms);
        if (r < 0) {
                (void)stop(&f, MPF_RESULT_FAILED, ret->step, "%s", strerror(-r));
                return r;
        }
        return 0;
}

int mpf_flush_map_again(const struct mpf_ops *ops, const struct mpf_flush_params *p, mpf_flush_fn flush,
                        const char *arg, const char *uuid, struct mpf_map_result *ret)
{
        int r;

        r = flush(ops, p, uuid && uuid[0] ? uuid : arg, ret);
        if (r < 0 || strcmp(ret->map, arg) == 0)
                return r;
        free(ret->map);
        ret->map = strdup(arg);
        return ret->map ? 0 : -ENOMEM;
}
