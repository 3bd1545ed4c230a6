/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "names.h"

/* What DM_DEV_STATUS tells about one map. Plain data: tests build it by hand. */
struct mpf_dm_info {
        bool exists;
        char name[MPF_NAME_MAX];
        char uuid[MPF_UUID_MAX];
        dev_t devt;
        int open_count;
        bool suspended;
        bool deferred_remove;
};

/* Route libdevmapper's log through ours (debug level). */
void mpf_dm_init(bool udev_sync);
/* Is the dm driver reachable and are we allowed to use it? -EPERM/-EACCES, -ENOENT/-ENODEV. */
int mpf_dm_check(void);

/* ret->exists is false when there is no such map; negative errno only for real failures. */
int mpf_dm_info_by_name(const char *name, struct mpf_dm_info *ret);
int mpf_dm_info_by_uuid(const char *uuid, struct mpf_dm_info *ret);
int mpf_dm_info_by_devt(dev_t devt, struct mpf_dm_info *ret);

/* The calls below that act on one existing map name it by uuid when it has one (non-NULL, not
 * empty), else by name. A dm UUID is set once and never changes while the map exists; a name
 * does (multipathd renames a map when its alias changes) and, once freed, another map may take
 * it at once: a message or remove by name, sent after we looked at the map, could reach that
 * other map. */

/* The live table: *ret_n_targets, the first target's type and parameters. -ENXIO if the map vanished. */
int mpf_dm_table(const char *name, const char *uuid, unsigned *ret_n_targets, char **ret_type,
                 char **ret_params);
/* The same for the live status line (the multipath target's path states). */
int mpf_dm_status(const char *name, const char *uuid, unsigned *ret_n_targets, char **ret_type,
                  char **ret_status);
/* Target message to sector 0. */
int mpf_dm_message(const char *name, const char *uuid, const char *msg);
/* DM_DEVICE_REMOVE (deferred: dm_task_deferred_remove). With udev sync, *cookie collects the
 * task (0 means "create one"). -EBUSY when open, -ENXIO when already gone. Without udev sync the
 * map is named by name whatever uuid says: libdevmapper then removes /dev/mapper/NAME itself, and
 * only when it was given the name. */
int mpf_dm_remove(const char *name, const char *uuid, bool deferred, uint32_t *cookie);
/* DM_DEV_REMOVE issued directly, with no udev cookie and no udev flags (libdevmapper always
 * sets some, and every event that carries DM_COOKIE makes udev run "dmsetup udevcomplete"):
 * the caller waits for udev by the device's remove uevent. -ENXIO: no such map; -EBUSY: open.
 * Only with udev running (it, not libdevmapper, removes the /dev/mapper node). */
int mpf_dm_remove_uncookied(const char *name, const char *uuid);
/* A map as it can be made again (a kpartx partition map we removed): name, UUID, read-only flag
 * and every target of its table. */
struct mpf_dm_target {
        uint64_t start;
        uint64_t length;
        char *type;
        char *params;
};
struct mpf_dm_saved {
        char name[MPF_NAME_MAX];
        char uuid[MPF_UUID_MAX];
        bool read_only;
        struct mpf_dm_target *targets;
        size_t n_targets;
};
void mpf_dm_saved_done(struct mpf_dm_saved *s);
/* -ENXIO if there is no such map. Saved under the name it has now. */
int mpf_dm_save(const char *name, const char *uuid, struct mpf_dm_saved *ret);
/* DM_DEVICE_CREATE from a saved map, on *cookie as mpf_dm_remove(). -EEXIST if the name is taken. */
int mpf_dm_create(const struct mpf_dm_saved *s, uint32_t *cookie);
/* Names of all maps whose UUID starts with "mpath-" and whose table is one multipath target. */
int mpf_dm_list_multipath(char ***ret_names);

bool mpf_dm_udev_sync(void);
/* A udev cookie for tasks yet to come (other processes' too): 0 without udev sync. */
int mpf_dm_cookie_new(uint32_t *ret);
/* 1 when udev has processed every task of the cookie (semaphore released), 0 not yet. */
int mpf_dm_cookie_ready(uint32_t cookie);
/* Give up waiting for udev: release the cookie's semaphore ourselves so it does not leak. */
int mpf_dm_cookie_abandon(uint32_t cookie);
