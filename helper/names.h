/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* Kernel limits (DM_NAME_LEN, DM_UUID_LEN include the NUL). */
#define MPF_NAME_MAX 128
#define MPF_UUID_MAX 129

#define MPF_MPATH_UUID_PREFIX "mpath-"
#define MPF_MULTIPATH_TARGET "multipath"

typedef enum MpfArgKind {
        MPF_ARG_PATH, /* starts with '/': /dev/mapper/NAME, /dev/dm-N, any block node */
        MPF_ARG_UUID, /* mpath-<WWID> */
        MPF_ARG_NAME, /* a map name, or a WWID (tried as mpath-<WWID> when no such name) */
} MpfArgKind;

/* Non-empty, shorter than MPF_NAME_MAX, no '/', no control characters. */
bool mpf_name_valid(const char *s);
/* Returns an MpfArgKind, or -EINVAL for syntax that no map can have. */
int mpf_arg_classify(const char *arg);
/* "mpath-X" with X non-empty. */
bool mpf_uuid_is_mpath(const char *uuid);
/* "part<N>-<map_uuid>" with N decimal, map_uuid an mpath UUID. */
bool mpf_uuid_is_partition_of(const char *part_uuid, const char *map_uuid);
/* Does a multipath table's parameter string enable queue_if_no_path in its features?
 * Returns 1/0, or -EBADMSG when the feature list cannot be parsed. */
int mpf_features_queue_if_no_path(const char *params);
/* How many paths a multipath target's status line shows active ("A"), over all path groups:
 *   <#features> <features> <#handler args> <handler args> <#groups> <next group>
 *   per group: <state> <#selector args> <args> <#paths> <#path selector args>
 *     per path: <dev> <A|F> <fail count> <path selector args>
 * Returns >= 0, or -EBADMSG when the line cannot be parsed. */
int mpf_multipath_status_active_paths(const char *status);
