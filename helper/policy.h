/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "deadline.h"

/* Where the administrator's policy for a map whose last path device was removed is read:
 * multipath's own flush_on_last_del, or this program's override. */

/* An override for mpath-flush alone (set it in a drop-in of mpath-flush-lastpath@.service). */
#define MPF_LAST_DEL_ENV "MPATH_FLUSH_ON_LAST_DEL"
/* The multipath program run for "multipath -t" when multipathd does not answer. */
#define MPF_MULTIPATH_ENV "MPATH_FLUSH_MULTIPATH"
#define MPF_MULTIPATH_DEFAULT "multipath"
/* Largest configuration text we read from multipath -t. */
#define MPF_CONFIG_MAX (4U * 1024U * 1024U)

typedef enum MpfLastDel {
        MPF_LAST_DEL_ALWAYS, /* switch queueing off, then flush (even a map in use stays without it) */
        MPF_LAST_DEL_UNUSED, /* flush an unused map; a map in use keeps queueing as configured */
        MPF_LAST_DEL_NEVER,  /* do nothing */
        _MPF_LAST_DEL_MAX,
} MpfLastDel;

/* multipath-tools' default since 0.9.9 (and what "no" meant before). */
#define MPF_LAST_DEL_DEFAULT MPF_LAST_DEL_UNUSED

const char *mpf_last_del_to_string(MpfLastDel p);
/* "always", "unused", "never"; the older values as multipath-tools reads them: "yes"/"1" is
 * always, "no"/"0" is unused. -EINVAL otherwise. */
int mpf_last_del_from_string(const char *s);

/* flush_on_last_del for the map of wwid in a configuration as "multipathd show config" and
 * "multipath -t" print it: a "multipaths { multipath { wwid ... } }" entry, else "overrides",
 * else "defaults" (multipath-tools' order; "devices" entries are not read). Returns the policy
 * and sets *ret_section ("multipaths", "overrides", "defaults"), -ENOENT when none of them sets
 * it, -EINVAL for a value we do not know. */
int mpf_last_del_from_config(const char *text, const char *wwid, const char **ret_section);

/* The policy in force for wwid: $MPATH_FLUSH_ON_LAST_DEL, else multipathd's configuration, else
 * "multipath -t", else the default. *ret_source says which (for the log). Never fails: an
 * unreadable configuration gives the default, with a warning. */
MpfLastDel mpf_last_del_read(const char *wwid, usec_t deadline, char **ret_source);
