/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "deadline.h"
#include "dm.h"
#include "pathlock.h"
#include "result.h"
#include "undo.h"
#include "usage.h"

/* in-use: a process that has the map open only counts as a user if it still has it open after
 * this long (blkid run by udev comes and goes); mounts, holders and swaps count at once */
#define IN_USE_SETTLE_USEC (500 * USEC_PER_MSEC)
/* sole-opener: transient openers (blkid run by udev) get this long to go away */
#define SOLE_OPENER_BACKOFF_FIRST_USEC (5 * USEC_PER_MSEC)
#define SOLE_OPENER_BACKOFF_MAX_USEC (200 * USEC_PER_MSEC)
/* sole-opener with --deferred: how long transient openers get before we defer instead */
#define SOLE_OPENER_DEFERRED_WAIT_USEC (1 * USEC_PER_SEC)
/* remove: someone opened the map between our close and DM_DEV_REMOVE */
#define REMOVE_BACKOFF_FIRST_USEC (10 * USEC_PER_MSEC)
#define REMOVE_BACKOFF_MAX_USEC (200 * USEC_PER_MSEC)
/* --wait-busy: sole-opener and remove wait at most this long with the map locked before they
 * answer busy; the wait module (wait.c) then waits for the map with no lock held, and retries */
#define WAIT_BUSY_LOCKED_USEC (1 * USEC_PER_SEC)
/* Restoring queueing is never skipped for lack of time: it gets this much past the deadline. */
#define RESTORE_GRACE_USEC MPF_UNDO_GRACE_USEC
/* Closing the map (and the write-back worker's open of it) may take this long past the deadline. */
#define RELEASE_GRACE_USEC (100 * USEC_PER_MSEC)
/* Naming who keeps a map busy, once we give up at the deadline, may take this long past it. */
#define RESCAN_GRACE_USEC (500 * USEC_PER_MSEC)

struct mpf_pool_exec;

/* The world as the flush sees it. The real implementation is in device.c; tests/unit fake it.
 * Every function returns 0 or a negative errno. */
/* A map removed with no udev cookie, waited for by its "remove" uevent: that of devt whose SEQNUM
 * is above seqnum (the kernel's uevent_seqnum read before the remove; 0: unknown, any event of
 * devt counts). */
struct mpf_removed {
        dev_t devt;
        uint64_t seqnum;
};

struct mpf_ops {
        void *userdata;
        /* The dm driver is usable (else -EPERM/-EACCES/-ENOENT...: exit 6). */
        int (*check)(void *u);
        /* Names of all multipath maps (--all). */
        int (*list)(void *u, char ***ret_names);
        /* ret->exists false: no such map. */
        int (*info_by_name)(void *u, const char *name, struct mpf_dm_info *ret);
        int (*info_by_uuid)(void *u, const char *uuid, struct mpf_dm_info *ret);
        /* stat + dm info by dev_t: -ENOENT no such node, -ENOTBLK not a block device,
         * -ENODEV a block device that is not a dm device. */
        int (*info_by_path)(void *u, const char *path, struct mpf_dm_info *ret);
        /* Calls that act on one map get its name and its UUID: they name it by the UUID when it has
         * one (dm.h says why), the name is for the rest. */
        /* live table: number of targets, first target's type and params */
        int (*table)(void *u, const char *name, const char *uuid, unsigned *ret_n, char **ret_type,
                     char **ret_params);
        /* [0]: the map itself, then its kpartx partition maps */
        int (*targets)(void *u, const struct mpf_dm_info *map, struct mpf_target **ret, size_t *ret_n);
        /* -ETIMEDOUT when the deadline passes during the scan */
        int (*scan_usage)(void *u, const struct mpf_target *targets, size_t n, usec_t deadline,
                          struct mpf_blockers *ret, unsigned *ret_explained);
        /* -ETIMEDOUT at the deadline (*ret_stuck: the worker opening the path devices, if it was left
         * behind stuck in the kernel), -ENXIO when the map vanished; try_map: the map lock is tried
         * once (-EAGAIN: another flusher holds it), the path locks wait as usual */
        int (*lock)(void *u, const struct mpf_dm_info *map, bool try_map, usec_t deadline, void **ret_lock,
                    struct mpf_stuck *ret_stuck);
        void (*unlock)(void *u, void *lock);
        int (*message)(void *u, const char *name, const char *uuid, const char *msg);
        /* multipathd command: 0 "ok"; -ENOENT/-ECONNREFUSED not running; -EBADMSG "fail";
         * -ETIMEDOUT it never got the command by the deadline; -EINPROGRESS it got the command
         * but did not answer by the deadline (it may still carry it out: mpathd_reply reads the
         * answer later, and a command sent after it is carried out after it) */
        int (*mpathd)(void *u, const char *cmd, usec_t deadline);
        /* the answer to the command mpathd() left -EINPROGRESS, by the deadline: 0 "ok"; -EBADMSG
         * "fail"; -ETIMEDOUT still none; -ENOMSG none pending; else the connection broke (multipathd
         * went away). NULL: mpathd() never returns -EINPROGRESS. */
        int (*mpathd_reply)(void *u, usec_t deadline);
        /* the same command sent whole but its answer not waited for: -EINPROGRESS (mpathd_reply
         * reads it), or the errors of a command that never reached multipathd, as mpathd() says
         * them. NULL: mpathd() is used, and waited for. */
        int (*mpathd_send)(void *u, const char *cmd, usec_t deadline);
        /* open the map O_RDONLY|O_EXCL|O_CLOEXEC */
        int (*claim)(void *u, const struct mpf_dm_info *map, int *ret_fd);
        /* write back + fsync bounded by the deadline: 0; 1 written back but the device cache
         * flush failed; -EIO data could not be written; -ETIMEDOUT, with *ret_stuck the pid of a
         * worker that did not die when killed (stuck in the kernel), else 0. Unless it returns
         * -ETIMEDOUT, the worker then keeps its own open of the map until release(). */
        int (*flush)(void *u, int fd, usec_t deadline, pid_t *ret_stuck);
        /* close our fd (the claim), then have the worker close its open of the map, which is then
         * the last close (it writes back what others dirtied meanwhile): with write_back, after
         * one more write-back + fsync. Bounded by until; returns as flush() does. */
        int (*release)(void *u, int fd, bool write_back, usec_t until, pid_t *ret_stuck);
        /* the map's path devices that still exist (sysfs slaves), names sorted by dev_t; -ENXIO
         * when the map is gone */
        int (*paths)(void *u, const struct mpf_dm_info *map, char ***ret_names);
        /* paths the kernel currently counts as active ("A" in the target's status) */
        int (*active_paths)(void *u, const char *name, const char *uuid);
        /* sectors of the write requests the map completed so far, failed ones included (its disk
         * statistics) */
        int (*sectors_written)(void *u, const struct mpf_dm_info *map, uint64_t *ret);
        int (*remove)(void *u, const char *name, const char *uuid, bool deferred, uint32_t *cookie);
        /* a partition map's name, UUID and table, to make it again if the flush fails (-ENXIO: gone) */
        int (*save)(void *u, const char *name, const char *uuid, struct mpf_dm_saved *ret);
        /* make a saved map again, joining *cookie as remove() does */
        int (*create)(void *u, const struct mpf_dm_saved *s, uint32_t *cookie);
        /* a cookie that tasks in other processes join (the pool's shared cookie); NULL: the first
         * remove makes one */
        int (*cookie_new)(void *u, uint32_t *ret);
        /* until udev has processed the cookie's events (or the deadline: -ETIMEDOUT, cookie released) */
        int (*udev_wait)(void *u, const struct mpf_dm_info *map, uint32_t cookie, usec_t deadline);
        /* Optional (NULL: remove() with a cookie it is). The final, non-deferred remove with no udev
         * cookie: udev is waited for by the removed device's own "remove" uevent as udev broadcasts
         * it once its rules ran (udev_wait_removed). A cookie makes udev run a program for every
         * event ("dmsetup udevcomplete"), which costs more than the rest of the event's processing.
         * -EOPNOTSUPP when it cannot be waited for so (udev does not run, no event monitor): then
         * nothing was done and the caller removes with a cookie. Else as remove(). *ret_seqnum: the
         * kernel's uevent sequence number read right before the remove (0: unknown). */
        int (*remove_watched)(void *u, const char *name, const char *uuid, uint64_t *ret_seqnum);
        /* until udev has broadcast a "remove" uevent for each of maps (removed by remove_watched,
         * or with a cookie: udev broadcasts an event after its programs ran), or the deadline:
         * -ETIMEDOUT */
        int (*udev_wait_removed)(void *u, const struct mpf_removed *maps, size_t n, usec_t deadline);
        /* the map's undo record (undo.h): write it, before each change (an empty record removes it);
         * read the one a flusher that died left (-ENOENT: none) */
        int (*record_write)(void *u, const struct mpf_undo *rec);
        int (*record_read)(void *u, const char *uuid, struct mpf_undo *ret);
        usec_t (*now)(void *u);
        /* the pool's executor (pool.h, worker.c); NULL: the pool runs the flushes in this process */
        const struct mpf_pool_exec *pool_exec;
        void (*sleep_until)(void *u, usec_t t);
        /* --wait-busy: return when something that may free a map happened (the mount table
         * changed, a block uevent arrived) or at t, whichever comes first */
        void (*wait_change)(void *u, usec_t t);
};

struct mpf_flush_params {
        unsigned jobs; /* maps flushed at once by run.c (pool.h); 0 or 1: one after another */
        bool deferred;
        bool dry_run;
        bool wait_busy; /* busy will be retried (wait.c): bound the waits made with the map locked */
        usec_t deadline;
        /* --all: the final remove of each map joins this udev cookie instead of
         * waiting for udev itself; the map's locks are then kept in the result (held_lock) until
         * the caller has waited for the cookie once, for all maps. NULL: wait per map. */
        uint32_t *shared_cookie;
        /* The caller holds the map's locks already (--if-pathless): the lock step only looks the
         * map up again. */
        bool locked;
        /* The pool (pool.h): the map lock is only tried; when another flusher holds it, the result
         * says lock_contended and nothing was changed. */
        bool lock_try;
};

/* The queueing step: "disablequeueing map NAME" to multipathd (*ret_mpathd: it did, or may have:
 * *ret_pending, when it got the command and its answer is still to be read), then the kernel
 * message fail_if_no_path, whose result is returned. With ret_pending, multipathd's answer is not
 * waited for when ops can send without waiting: the caller reads it later (mpathd_reply); NULL:
 * waited for until the deadline. Nothing is restored here. */
int mpf_queueing_disable(const struct mpf_ops *ops, const char *name, const char *uuid, usec_t deadline,
                         bool *ret_mpathd, bool *ret_pending);

/* The ordered flush of one map, arg as given on the command line. Always fills *ret (its
 * result and step say what happened); returns 0, or a negative errno only for -ENOMEM. */
int mpf_flush_map(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                  struct mpf_map_result *ret);

/* One map's flush (mpf_flush_map; tests pass a fake). */
typedef int (*mpf_flush_fn)(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                            struct mpf_map_result *ret);

/* A map flushed again after a first attempt (a --wait-busy round, or once another flusher let go
 * of its lock): by the UUID that attempt found (uuid; NULL or "" when it found none), since the
 * name or node given may belong to another map by now (two aliases swapped), and reported under
 * the MAP given (arg). As mpf_flush_map: always fills *ret; returns 0, or -ENOMEM. */
int mpf_flush_map_again(const struct mpf_ops *ops, const struct mpf_flush_params *p, mpf_flush_fn flush,
                        const char *arg, const char *uuid, struct mpf_map_result *ret);

/* A map or partition map as it is now: by its UUID when it has one (its name may belong to another
 * map by now: dm.h), else by its name. */
int mpf_info_by_ref(const struct mpf_ops *ops, const char *name, const char *uuid, struct mpf_dm_info *ret);

/* The map with this UUID as it is now (*ret): 1 while it is still the one found before (device
 * number devt; its name may have changed), 0 once it is gone or replaced, or a negative errno when
 * it cannot be looked up. */
int mpf_map_still(const struct mpf_ops *ops, const char *uuid, dev_t devt, struct mpf_dm_info *ret);
