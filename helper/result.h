/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Steps, results and exit codes of doc/CONTRACT.md. */
typedef enum MpfStep {
        MPF_STEP_RESOLVE,
        MPF_STEP_LOCK,
        MPF_STEP_IN_USE,
        MPF_STEP_QUEUEING,
        MPF_STEP_PARTITIONS,
        MPF_STEP_CLAIM,
        MPF_STEP_FLUSH,
        MPF_STEP_SOLE_OPENER,
        MPF_STEP_REMOVE,
        MPF_STEP_UDEV_WAIT,
        MPF_STEP_DONE,
        _MPF_STEP_MAX,
} MpfStep;

typedef enum MpfResult {
        MPF_RESULT_REMOVED,
        MPF_RESULT_ABSENT,
        MPF_RESULT_DEFERRED,
        MPF_RESULT_BUSY,
        MPF_RESULT_TIMEOUT,
        MPF_RESULT_FAILED,
        MPF_RESULT_REFUSED,
        _MPF_RESULT_MAX,
} MpfResult;

enum {
        MPF_EXIT_OK = 0,
        MPF_EXIT_FAILED = 1,
        MPF_EXIT_USAGE = 2,
        MPF_EXIT_REFUSED = 3,
        MPF_EXIT_BUSY = 4,
        MPF_EXIT_TIMEOUT = 5,
        MPF_EXIT_ENVIRONMENT = 6,
        MPF_EXIT_RESTORE_FAILED = 7,
        MPF_EXIT_DATA_LOST = 8,
};

const char *mpf_step_to_string(MpfStep s);
const char *mpf_result_to_string(MpfResult r);
MpfStep mpf_step_from_string(const char *s);
MpfResult mpf_result_from_string(const char *s);

struct mpf_mount {
        char *device; /* map or partition map name */
        char *target;
        pid_t pid;
};

struct mpf_opener {
        pid_t pid;
        char *comm;
        char *device; /* map or partition map name */
        /* one of the run's own processes: which, and its fds of the device ("a pool worker, fd 7
         * -> /dev/dm-3"); NULL: not ours. Not in the JSON document. */
        char *own;
};

/* A kernel user that /sys/block/dm-N/holders does not show: a loop device backed by the map, an
 * external ext4 journal, a btrfs member device. */
struct mpf_kernel_user {
        char *kind;   /* "loop", "journal", "btrfs" */
        char *name;   /* "loop0", the journal's device, the btrfs file system's UUID */
        char *device; /* map or partition map name */
};

struct mpf_blockers {
        char **holders;      /* kernel claimers other than own partition maps: "dm-3" */
        char **holder_names; /* the same, their dm names ("vg0-lv0", "" if none), for humans */
        struct mpf_mount *mounts;
        size_t n_mounts;
        char **swaps;
        struct mpf_opener *openers;
        size_t n_openers;
        struct mpf_kernel_user *kernel_users;
        size_t n_kernel_users;
        unsigned unexplained_opens;
        /* beyond MPF_BLOCKERS_LIST_MAX entries, mounts and openers are only counted: a map held
         * open by thousands of processes still has a result of a bounded size */
        unsigned mounts_omitted;
        unsigned openers_omitted;
        pid_t last_omitted_pid; /* internal: an omitted process is counted once */
};

#define MPF_BLOCKERS_LIST_MAX 100U

void mpf_blockers_done(struct mpf_blockers *b);
bool mpf_blockers_any(const struct mpf_blockers *b);
int mpf_blockers_add_mount(struct mpf_blockers *b, const char *device, const char *target, pid_t pid);
int mpf_blockers_add_opener(struct mpf_blockers *b, pid_t pid, const char *comm, const char *device);
/* pid's entry for device (added before) is one of our own processes: role says which, detail
 * (may be NULL) what it holds ("fd 7 -> /dev/dm-3"); a later call for the entry adds its detail. */
int mpf_blockers_mark_own(struct mpf_blockers *b, pid_t pid, const char *device, const char *role,
                          const char *detail);
/* Does an opener of our own hold it? */
bool mpf_blockers_any_own(const struct mpf_blockers *b);
int mpf_blockers_add_kernel_user(struct mpf_blockers *b, const char *kind, const char *name,
                                 const char *device);
/* "mounted on /mnt (pid 1 mount), opened by pid 2 (sleep), held by dm-3, swap /dev/dm-4" */
char *mpf_blockers_describe(const struct mpf_blockers *b);

/* The outcome for one map: the JSON "maps" entry. */
struct mpf_map_result {
        char *map; /* as given, or the name for --all */
        char *name;
        char *uuid;
        dev_t devt;
        bool have_devt;
        /* internal, not in the JSON document: the uevent seqnum read before its remove with no
         * cookie (struct mpf_removed; 0: unknown or removed with a cookie) */
        uint64_t remove_seqnum;
        MpfResult result;
        MpfStep step;
        char *reason;
        struct mpf_blockers blockers;
        int queueing_before; /* -1 unknown, 0, 1 */
        int queueing_after;
        char **partitions;
        uint64_t elapsed_ms;
        uint64_t waited_ms;   /* --wait-busy: time spent waiting, unlocked, for the map to be free */
        unsigned attempts;    /* flushes tried: 1, more with --wait-busy */
        bool restore_failed;  /* queueing could not be restored: exit 7 */
        bool partitions_lost; /* partition maps we removed could not be made again: exit 7 */
        bool data_lost;       /* writes queued on the map failed when queueing went off: exit 8 if removed */
        uint64_t failed_write_bytes; /* bytes of queued writes that failed meanwhile (its disk statistics) */
        pid_t stuck_worker;  /* the write-back worker missed the deadline and did not die: left behind */
        char **plan;         /* --dry-run: the steps that would run */
        void *held_lock;     /* internal: locks kept until the shared udev wait (--all) */
        bool lock_contended; /* internal: the pool's try of the map lock failed; nothing was done */
};

void mpf_map_result_done(struct mpf_map_result *r);
/* Exit code for one map. */
int mpf_map_result_exit_code(const struct mpf_map_result *r);
/* Combine per-map exit codes by the contract's precedence 7 > 8 > 1 > 5 > 4 > 3 > 0. */
int mpf_exit_code_merge(int a, int b);
