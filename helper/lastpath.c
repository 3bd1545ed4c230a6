/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "lastpath.h"
#include "log.h"
#include "macro.h"

MpfLastpathDo mpf_lastpath_decide(size_t n_paths, MpfLastDel policy)
{
        if (n_paths > 0)
                return MPF_LASTPATH_NOT_LAST;
        switch (policy) {
        case MPF_LAST_DEL_ALWAYS:
                return MPF_LASTPATH_FAIL_AND_FLUSH;
        case MPF_LAST_DEL_NEVER:
                return MPF_LASTPATH_KEEP;
        case MPF_LAST_DEL_UNUSED:
        default:
                return MPF_LASTPATH_FLUSH;
        }
}

const char *mpf_lastpath_do_to_string(MpfLastpathDo d)
{
        static const char *const names[] = {
                [MPF_LASTPATH_NOT_LAST] = "not-last",
                [MPF_LASTPATH_KEEP] = "keep",
                [MPF_LASTPATH_FLUSH] = "flush",
                [MPF_LASTPATH_FAIL_AND_FLUSH] = "fail-and-flush",
        };
        return d >= 0 && (size_t)d < ELEMENTSOF(names) ? names[d] : NULL;
}

struct lastpath {
        const struct mpf_ops *ops;
        const struct mpf_lastpath_params *p;
        struct mpf_dm_info map;
        const char *wwid;
        bool have_policy;
        MpfLastDel policy;
        char *source;
        int status;
};

static int find_map(const struct mpf_ops *o, const char *arg, struct mpf_dm_info *ret)
{
        _cleanup_(freep) char *uuid = NULL;
        int r;

        /* the unit passes the WWID: the map's DM UUID is mpath-WWID */
        if (strlen(MPF_MPATH_UUID_PREFIX) + strlen(arg) < MPF_UUID_MAX) {
                if (asprintf_safe(&uuid, MPF_MPATH_UUID_PREFIX "%s", arg) < 0)
                        return -ENOMEM;
                r = o->info_by_uuid(o->userdata, uuid, ret);
                if (r < 0 || ret->exists)
                        return r;
        }
        if (mpf_uuid_is_mpath(arg)) {
                r = o->info_by_uuid(o->userdata, arg, ret);
                if (r < 0 || ret->exists)
                        return r;
        }
        if (mpf_name_valid(arg))
                return o->info_by_name(o->userdata, arg, ret);
        ret->exists = false;
        return 0;
}

static bool strv_equal(char *const *a, char *const *b)
{
        size_t i;

        for (i = 0; a && b && a[i] && b[i]; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return (!a || !a[i]) && (!b || !b[i]);
}

static void merge_status(struct lastpath *l, int status)
{
        l->status = mpf_exit_code_merge(l->status, status);
}

/* Carry out one decision on the map, under the lock. */
static int act(struct lastpath *l, MpfLastpathDo what)
{
        const struct mpf_ops *o = l->ops;
        struct mpf_flush_params fp = {.deadline = l->p->deadline, .locked = true};
        struct mpf_map_result res = {};
        const char *name = l->map.name, *uuid = l->map.uuid;
        int r;

        if (what == MPF_LASTPATH_KEEP) {
                log_map(LOG_INFO, 0, name, uuid, "last-path",
                        "no path device left; flush_on_last_del is never (%s): left as it is", l->source);
                return 0;
        }
        if (what == MPF_LASTPATH_FAIL_AND_FLUSH) {
                bool by_mpathd;

                /* A record a dead flusher left would have the flush switch queueing on again (it
                 * puts the map back as that flusher found it, from its lock step), over what the
                 * policy switches off here for good: its queueing marks go (the flush still puts
                 * back its partition maps). */
                r = mpf_undo_forget_queueing(o, uuid);
                if (r < 0)
                        log_map(LOG_WARNING, r, name, uuid, "last-path",
                                "Failed to drop the queueing marks of an undo record left behind: %m; "
                                "queueing is switched off again after the flush, should it be put back");
                r = mpf_queueing_disable(o, name, uuid, l->p->deadline, &by_mpathd, NULL);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 && r != -ENXIO) {
                        log_map(LOG_ERR, r, name, uuid, "queueing",
                                "no path device left; flush_on_last_del is always (%s), but queueing could "
                                "not be switched off: %m",
                                l->source);
                        merge_status(l, MPF_EXIT_FAILED);
                } else if (r >= 0)
                        log_map(LOG_INFO, 0, name, uuid, "queueing",
                                "no path device left; flush_on_last_del is always (%s): queueing switched "
                                "off "
                                "(fail_if_no_path%s)",
                                l->source, by_mpathd ? ", multipathd disablequeueing" : "");
        }

        r = l->p->flush(o, &fp, uuid, &res);
        if (r < 0) {
                mpf_map_result_done(&res);
                return r;
        }
        if (what == MPF_LASTPATH_FAIL_AND_FLUSH && res.queueing_after == 1 &&
            res.result != MPF_RESULT_REMOVED && res.result != MPF_RESULT_ABSENT) {
                /* put back from a record we could not drop: the policy comes last */
                bool by_mpathd;

                r = mpf_queueing_disable(o, name, uuid, l->p->deadline, &by_mpathd, NULL);
                if (r == -ENOMEM) {
                        mpf_map_result_done(&res);
                        return r;
                }
                if (r < 0 && r != -ENXIO) {
                        log_map(LOG_ERR, r, name, uuid, "queueing",
                                "the flush switched queueing on again, and it could not be switched off: "
                                "%m");
                        merge_status(l, MPF_EXIT_FAILED);
                } else
                        res.queueing_after = 0;
        }
        switch (res.result) {
        case MPF_RESULT_REMOVED:
        case MPF_RESULT_ABSENT:
        case MPF_RESULT_DEFERRED:
                log_map(LOG_INFO, 0, name, uuid, mpf_step_to_string(res.step),
                        "no path device left; flush_on_last_del is %s (%s): %s: %s",
                        mpf_last_del_to_string(l->policy), l->source, mpf_result_to_string(res.result),
                        strempty(res.reason));
                break;
        case MPF_RESULT_BUSY:
                /* the policy, not a failure: a map in use stays */
                log_map(LOG_NOTICE, 0, name, uuid, mpf_step_to_string(res.step),
                        "no path device left; flush_on_last_del is %s (%s): in use, kept, %s: %s",
                        mpf_last_del_to_string(l->policy), l->source,
                        what == MPF_LASTPATH_FAIL_AND_FLUSH ? "queueing off (I/O to it fails)"
                                                            : "queueing left as configured",
                        strempty(res.reason));
                break;
        default:
                log_map(LOG_ERR, 0, name, uuid, mpf_step_to_string(res.step),
                        "no path device left; flush_on_last_del is %s (%s): %s: %s",
                        mpf_last_del_to_string(l->policy), l->source, mpf_result_to_string(res.result),
                        strempty(res.reason));
                merge_status(l, mpf_map_result_exit_code(&res));
                break;
        }
        mpf_map_result_done(&res);
        return 0;
}

int mpf_lastpath(const struct mpf_ops *ops, const struct mpf_lastpath_params *p, const char *arg)
{
        struct lastpath l = {.ops = ops, .p = p, .status = MPF_EXIT_OK};
        _cleanup_(strv_freep) char **prev = NULL;
        struct mpf_stuck stuck = {};
        void *lock = NULL;
        int r;

        r = find_map(ops, arg, &l.map);
        if (r < 0) {
                log_error_errno(r, "%s: Failed to look up the map: %m", arg);
                return MPF_EXIT_FAILED;
        }
        if (!l.map.exists) {
                log_info("%s: no such multipath map (removed already), nothing to do", arg);
                return MPF_EXIT_OK;
        }
        l.wwid = startswith(l.map.uuid, MPF_MPATH_UUID_PREFIX);

        r = ops->lock(ops->userdata, &l.map, false, p->deadline, &lock, &stuck);
        if (r == -ENXIO) {
                log_info("%s: the map disappeared, nothing to do", arg);
                return MPF_EXIT_OK;
        }
        if (r < 0) {
                log_map(LOG_ERR, r, l.map.name, l.map.uuid, "lock", "Failed to take the map's lock: %m");
                return r == -ETIMEDOUT ? MPF_EXIT_TIMEOUT : MPF_EXIT_FAILED;
        }

        /* Look, act, look again: a path removed while we ran is seen in the next round. */
        for (unsigned round = 0;; round++) {
                _cleanup_(strv_freep) char **paths = NULL;
                struct mpf_dm_info info;
                MpfLastpathDo what;

                r = ops->info_by_uuid(ops->userdata, l.map.uuid, &info);
                if (r < 0) {
                        log_map(LOG_ERR, r, l.map.name, l.map.uuid, "last-path",
                                "Failed to look up the map: %m");
                        merge_status(&l, MPF_EXIT_FAILED);
                        break;
                }
                if (!info.exists) {
                        if (round == 0)
                                log_map(LOG_INFO, 0, l.map.name, l.map.uuid, "last-path",
                                        "removed meanwhile, nothing to do");
                        break;
                }
                l.map = info;
                r = ops->paths(ops->userdata, &l.map, &paths);
                if (r == -ENXIO)
                        break;
                if (r < 0) {
                        log_map(LOG_ERR, r, l.map.name, l.map.uuid, "last-path",
                                "Failed to list the path devices: %m");
                        merge_status(&l, MPF_EXIT_FAILED);
                        break;
                }
                if (round > 0 && strv_equal(prev, paths))
                        break; /* nothing changed since we looked */
                if (round >= LASTPATH_MAX_ROUNDS) {
                        log_map(LOG_WARNING, 0, l.map.name, l.map.uuid, "last-path",
                                "path devices still changing after %u rounds, giving up", round);
                        break;
                }
                if (!paths || !paths[0])
                        if (!l.have_policy) {
                                l.policy = p->policy(l.wwid ? l.wwid : l.map.uuid, p->deadline, &l.source);
                                l.have_policy = true;
                        }
                what = mpf_lastpath_decide(strv_length(paths), l.policy);
                if (what == MPF_LASTPATH_NOT_LAST)
                        log_map(LOG_INFO, 0, l.map.name, l.map.uuid, "last-path",
                                "still has path device %s (%zu in all): not its last path, nothing to do",
                                paths[0], strv_length(paths));
                else {
                        r = act(&l, what);
                        if (r < 0)
                                break;
                }
                strv_freep(&prev);
                prev = TAKE_PTR(paths);
        }
        ops->unlock(ops->userdata, lock);
        free(l.source);
        if (r == -ENOMEM)
                return r;
        return l.status;
}
