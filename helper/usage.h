/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "deadline.h"
#include "names.h"
#include "result.h"

#define MPF_SYSFS_ENV "MPATH_FLUSH_SYSFS"
#define MPF_PROCFS_ENV "MPATH_FLUSH_PROCFS"

/* A block device we look for users of: the map itself, or one of its partition maps. */
struct mpf_target {
        char name[MPF_NAME_MAX]; /* dm name: "mpatha", "mpatha-part1" */
        char uuid[MPF_UUID_MAX]; /* dm UUID ("" when it has none): what ioctls name it by */
        char kname[32];          /* kernel name: "dm-3" */
        dev_t devt;
};

struct mpf_usage_roots {
        const char *sysfs;  /* "/sys" */
        const char *procfs; /* "/proc" */
        /* The run's processes: its main one (run) and what it forked, down to self, the process
         * that scans (a pool worker, or the main one). An fd of the map held by one of them is
         * named as ours, never taken for a foreign user's nor left out. 0: none. */
        pid_t run;
        pid_t self;
};

/* Roots from $MPATH_FLUSH_SYSFS / $MPATH_FLUSH_PROCFS, else /sys and /proc; this process is
 * the run's. */
void mpf_usage_roots_from_env(struct mpf_usage_roots *ret);
/* In a process the run forked (a pool worker): it scans as itself from now on. */
void mpf_usage_roots_forked(struct mpf_usage_roots *roots);
/* Which of the run's processes pid is ("a pool worker", "the guardian", ...), going up its
 * parents from <procfs>/PID/stat; NULL if it is not the run's. comm: its name. */
const char *mpf_usage_own_role(const struct mpf_usage_roots *roots, pid_t pid, const char *comm);

/* Kernel name ("dm-3") of a block device number, from <sysfs>/dev/block/M:m. -ENODEV if it is
 * not a dm device. */
int mpf_sysfs_dm_kname(const char *sysfs, dev_t devt, char *ret, size_t size);
/* The map's partition maps: holders of <kname> whose dm/uuid is "part<N>-<map_uuid>". */
int mpf_sysfs_partitions(const char *sysfs, const char *kname, const char *map_uuid, struct mpf_target **ret,
                         size_t *ret_n);
/* Path devices: <sysfs>/block/<kname>/slaves/<x>, with their dev_t, sorted by dev_t ascending. */
int mpf_sysfs_slaves(const char *sysfs, const char *kname, char ***ret_names, dev_t **ret_devts,
                     size_t *ret_n);

/* 512-byte sectors of the write requests a block device completed so far, successful or failed
 * (the block layer accounts a request's sectors when it ends, whatever its status; an empty cache
 * flush, which counts as a write request, has none): the seventh field of
 * <sysfs>/block/<kname>/stat. */
int mpf_sysfs_sectors_written(const char *sysfs, const char *kname, uint64_t *ret);

/* Who holds targets[0] (the map) or targets[1..] (its partition maps)? Partition maps listed in
 * targets are not holders of the map; holders of a partition map are. An fd held by one of the
 * run's own processes is listed like any opener's, with its role, fd and target in `own` (the
 * mounts of self's and run's namespace are left to other processes to show). *ret_explained: how
 * many of the map's opens the findings account for (partition maps, holders, a mount, swaps, loop
 * devices, external journals, btrfs members, fds). -ETIMEDOUT when the deadline passes during the
 * walk of /proc. */
int mpf_scan_usage(const struct mpf_usage_roots *roots, const struct mpf_target *targets, size_t n_targets,
                   usec_t deadline, struct mpf_blockers *ret, unsigned *ret_explained);

/* Undo mountinfo's octal escapes (\040 etc.) in place. */
void mpf_unescape_mountinfo(char *s);
