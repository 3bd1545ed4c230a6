/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ordered flush against a fake world: every step, every failure branch, the restore. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <json-c/json.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flush.h"
#include "guardian.h"
#include "output.h"
#include "run.h"
#include "log.h"
#include "undo.h"
#include "macro.h"
#include "mpathd.h"
#include "worker.h"
#include "tests.h"

#define MAX_CALLS 1024
#define SEQ_MAX 16

#define QUEUEING_PARAMS "1 queue_if_no_path 1 alua 1 1 service-time 0 1 1 8:0 1"
#define NO_QUEUEING_PARAMS "0 0 1 1 service-time 0 1 1 8:0 1"

struct fake_map {
        struct mpf_dm_info info;
        const char *type;
        const char *params;
        char last_message[32]; /* the last target message it got */
};

struct fake {
        struct fake_map maps[4];
        size_t n_maps;
        char *calls[MAX_CALLS];
        size_t n_calls;
        usec_t clock;

        int check_r;
        int lock_r;
        bool lock_removes_map;        /* another flusher removed it while we waited */
        const char *lock_sets_params; /* the table as another flusher left it while we waited */
        bool table_follows_queueing;  /* mpatha's table follows queue_if_no_path / fail_if_no_path */
        bool lock_until_deadline;     /* the lock comes at the deadline */
        bool mounted;                 /* scan finds a mount of the map */
        unsigned explained;
        int mpathd_r;
        int mpathd_restore_r;
        int message_r;
        int message_restore_r;
        unsigned kernel_refuses; /* the first this many queue_if_no_path fail (EBUSY: suspended) */
        int claim_r;
        int flush_r;
        int active_paths_r;   /* active paths in the status line, or an error */
        int save_r;           /* reading a partition map\'s table fails */
        int create_r;         /* making a partition map again fails */
        unsigned create_busy; /* ... with EBUSY this many times first (the map is still claimed) */
        usec_t mpathd_takes;  /* disablequeueing takes this long (multipathd stopped) */
        bool mpathd_late;     /* multipathd gets disablequeueing but answers mpathd_takes later */
        int mpathd_late_r;    /* ... then: 0 "ok" (it switched queueing off), -EBADMSG "fail" (it did
                               * not), -ETIMEDOUT still no answer (it switches it off later) */
        bool mpathd_reply_pending;
        usec_t mpathd_answer_at; /* the pending answer can be read from then on */
        int mpathd_pending_r;    /* ... and says this */
        int mpathd_reply_r;      /* reading it fails so (the connection broke), once */
        usec_t mpathd_sent_at;
        int open_seq[SEQ_MAX]; /* open counts seen by sole-opener, the last one repeats */
        size_t n_open_seq, open_pos;
        int remove_seq[SEQ_MAX]; /* results of removes of the map, the last one repeats */
        size_t n_remove_seq, remove_pos;
        bool deferred_stays;   /* a deferred remove leaves the map (still open) */
        const char *vanish_at; /* before this op runs, someone else removes the map (and partitions) */
        /* before this op runs, multipathd renames maps[rename_index] mpathz and gives its name to
         * another map */
        const char *rename_at;
        size_t rename_index;
        bool remove_keeps_map; /* remove "succeeds" but the map is still there */
        int udev_wait_r;
        int watched_r;                   /* remove_watched: -EOPNOTSUPP (it cannot), else as a remove */
        int wait_removed_r;              /* udev_wait_removed's answer */
        dev_t waited[SEQ_MAX];           /* the devices udev_wait_removed waited for, all calls */
        uint64_t waited_seqnum[SEQ_MAX]; /* and the seqnum each was removed after */
        size_t n_waited;
        int open_after_first_scan;     /* the map's open count from the first scan on (0: unchanged) */
        pid_t own_opener_after_remove; /* scans after a remove was tried find this pid of ours */
        pid_t stuck_worker;            /* a flush that times out leaves this worker behind */
        uint64_t sectors_seq[SEQ_MAX]; /* the map's completed writes, advanced by each flush */
        size_t n_sectors_seq, sectors_pos;
        usec_t udev_wait_takes; /* the next udev wait moves the clock on by this much */
        bool claimed;
        bool worker_holds;           /* the write-back worker holds its open of the map (after flush) */
        int release_r;               /* the worker's write-back before its last close (release at remove) */
        pid_t release_stuck;         /* ... which times out, leaving this worker behind */
        struct mpf_stuck lock_stuck; /* a lock that times out leaves this worker behind */
        int part_open_count;
        int opener_seq[SEQ_MAX]; /* pid of a process opener per scan (0: none), the last one repeats */
        size_t n_opener_seq, opener_pos;
        const char *fail_op; /* this op fails with fail_r from its fail_after-th call on (0: first) */
        unsigned fail_after;
        int fail_r;
        unsigned fail_count;
        unsigned waits;             /* --wait-busy: wait_change calls */
        unsigned unmount_at_wait;   /* the mount goes away during this wait_change call (0: never) */
        int list_r;                 /* listing the maps fails */
        unsigned table_targets;     /* targets in the map's table (0: one) */
        const char *part_vanish_at; /* before this op runs, someone removes the first partition map */
        const char *recreate_at;    /* before this op runs, the map is made again with a new dev_t */
        usec_t deadline;            /* the run's deadline: what the fakes must be given */
        char *undo_text;            /* the undo record as written (NULL: none) */
        int record_r;               /* writing the record fails */
        const char *die_at;         /* the helper dies right before the call that starts so: from then on no
                                     * op changes anything (its own restore cannot run) */
        bool dead;
        bool kernel_queueing, mpathd_queueing; /* mpatha's queueing as the kernel and multipathd see it */
        const char *lock_held_by_other;        /* this map's lock is another flusher's at the first try */
        const char *killed_at_claim;           /* the process claiming this map dies (SIGKILL) */
        const char *hangs_at_claim;            /* the process claiming this map sleeps for good */
        pid_t *hang_child;       /* ... and first forks a child that holds its fds after it is killed (as a
                                  * process in uninterruptible sleep would), its pid put here (shared) */
        unsigned locks_held;     /* map locks taken and not yet released */
        unsigned waited_holding; /* waits for a map lock made while holding another */
};

static struct fake F;

static void maybe_vanish(const char *op)
{
        if (F.vanish_at && strcmp(op, F.vanish_at) == 0)
                for (size_t i = 0; i < F.n_maps; i++)
                        F.maps[i].info.exists = false;
        if (F.part_vanish_at && strcmp(op, F.part_vanish_at) == 0 && F.n_maps > 1)
                F.maps[1].info.exists = false;
        if (F.recreate_at && strcmp(op, F.recreate_at) == 0)
                F.maps[0].info.devt = makedev(254, 99);
        if (F.rename_at && strcmp(op, F.rename_at) == 0) {
                struct fake_map *m = &F.maps[F.rename_index], *o;

                ck_assert_uint_lt(F.n_maps, ELEMENTSOF(F.maps));
                o = &F.maps[F.n_maps++];
                F.rename_at = NULL;
                /* an unused map with queueing on, of another LUN */
                *o = (struct fake_map){.type = "multipath", .params = QUEUEING_PARAMS};
                o->info = (struct mpf_dm_info){.exists = true, .devt = makedev(254, 9)};
                memcpy(o->info.name, m->info.name, sizeof(o->info.name));
                snprintf(o->info.uuid, sizeof(o->info.uuid), "mpath-3600140500000009");
                snprintf(m->info.name, sizeof(m->info.name), "mpathz");
        }
}

/* Every bounded call gets the run's deadline; a restore may get a short grace beyond. */
static void check_deadline(const char *op, usec_t deadline, bool restore)
{
        if (F.deadline == 0)
                return;
        if (!restore) {
                ck_assert_msg(deadline == F.deadline, "%s: deadline %llu, want the run's %llu", op,
                              (unsigned long long)deadline, (unsigned long long)F.deadline);
                return;
        }
        /* the grace past the deadline at most, or from now when that is later (a put-back that
         * waits for multipathd's answer may take the grace past the deadline: put_back_deadline()) */
        ck_assert_msg(deadline >= F.deadline &&
                              deadline <= MAX(F.deadline + RESTORE_GRACE_USEC, F.clock + RESTORE_GRACE_USEC),
                      "%s: restore deadline %llu outside [%llu, max(that, now) + grace]", op,
                      (unsigned long long)deadline, (unsigned long long)F.deadline);
}

static bool should_fail(const char *op)
{
        if (!F.fail_op || strcmp(op, F.fail_op) != 0)
                return false;
        return F.fail_count++ >= F.fail_after;
}

_printf_(1, 2) static void record(const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
        va_end(ap);
        ck_assert_uint_lt(F.n_calls, MAX_CALLS);
        F.calls[F.n_calls++] = s;
        if (F.die_at && startswith(s, F.die_at))
                F.dead = true;
}

static bool called(const char *s)
{
        for (size_t i = 0; i < F.n_calls; i++)
                if (strcmp(F.calls[i], s) == 0)
                        return true;
        return false;
}

/* The first call s at or after call number from. */
static ssize_t call_index_from(size_t from, const char *s)
{
        for (size_t i = from; i < F.n_calls; i++)
                if (strcmp(F.calls[i], s) == 0)
                        return (ssize_t)i;
        return -1;
}

static ssize_t call_index(const char *s)
{
        for (size_t i = 0; i < F.n_calls; i++)
                if (strcmp(F.calls[i], s) == 0)
                        return (ssize_t)i;
        return -1;
}

static struct fake_map *find_name(const char *name)
{
        for (size_t i = 0; i < F.n_maps; i++)
                if (F.maps[i].info.exists && strcmp(F.maps[i].info.name, name) == 0)
                        return &F.maps[i];
        return NULL;
}

static struct fake_map *find_uuid(const char *uuid)
{
        for (size_t i = 0; i < F.n_maps; i++)
                if (F.maps[i].info.exists && strcmp(F.maps[i].info.uuid, uuid) == 0)
                        return &F.maps[i];
        return NULL;
}

/* as the kernel finds the map of an ioctl: by UUID when one is given, else by name */
static struct fake_map *find_ref(const char *name, const char *uuid)
{
        return uuid && uuid[0] ? find_uuid(uuid) : find_name(name);
}

static int f_check(void *u)
{
        return F.check_r;
}

static int f_list(void *u, char ***ret)
{
        char **l = NULL;

        if (F.list_r < 0)
                return F.list_r;
        for (size_t i = 0; i < F.n_maps; i++)
                if (F.maps[i].info.exists && startswith(F.maps[i].info.uuid, "mpath-"))
                        ck_assert_int_eq(strv_extend(&l, F.maps[i].info.name), 0);
        if (!l)
                l = calloc(1, sizeof(char *));
        *ret = l;
        return 0;
}

static void fill(struct fake_map *m, struct mpf_dm_info *ret)
{
        *ret = m ? m->info : (struct mpf_dm_info){};
        /* As in the kernel, a faked mount or opener holds the map open once more than its
         * partition maps do, so the in-use step cannot take the "nobody opens it" short cut. */
        if (m && m == &F.maps[0] && !F.claimed && (F.mounted || F.n_opener_seq > 0) &&
            (size_t)ret->open_count < F.n_maps)
                ret->open_count = (int)F.n_maps;
        if (m && F.claimed && m == &F.maps[0] && F.n_open_seq > 0) {
                ret->open_count = F.open_seq[F.open_pos < F.n_open_seq ? F.open_pos : F.n_open_seq - 1];
                F.open_pos++;
        }
        if (m && m == &F.maps[0] && F.worker_holds)
                ret->open_count++; /* the write-back worker's own open */
}

static int f_info_by_name(void *u, const char *name, struct mpf_dm_info *ret)
{
        if (should_fail("info_by_name"))
                return F.fail_r;
        fill(find_name(name), ret);
        return 0;
}

static int f_info_by_uuid(void *u, const char *uuid, struct mpf_dm_info *ret)
{
        if (should_fail("info_by_uuid"))
                return F.fail_r;
        fill(find_uuid(uuid), ret);
        return 0;
}

static int f_info_by_path(void *u, const char *path, struct mpf_dm_info *ret)
{
        const char *s;

        if (strcmp(path, "/etc/passwd") == 0)
                return -ENOTBLK;
        if (strcmp(path, "/dev/sda") == 0)
                return -ENODEV;
        if ((s = startswith(path, "/dev/mapper/")))
                return -ENOENT; /* fake has no nodes: resolve must fall back to the name */
        if (strcmp(path, "/dev/dm-0") == 0) {
                fill(&F.maps[0], ret);
                return 0;
        }
        return -ENOENT;
}

static int f_table(void *u, const char *name, const char *uuid, unsigned *n, char **type, char **params)
{
        struct fake_map *m = find_ref(name, uuid);
        if (should_fail("table"))
                return F.fail_r;
        if (!m)
                return -ENXIO;
        *n = F.table_targets ? F.table_targets : 1;
        *type = strdup(m->type);
        *params = strdup(m->params);
        return 0;
}

static int f_targets(void *u, const struct mpf_dm_info *map, struct mpf_target **ret, size_t *ret_n)
{
        struct mpf_target *t;
        size_t n = 0;

        if (should_fail("targets"))
                return F.fail_r;
        t = calloc(F.n_maps, sizeof(*t));

        for (size_t i = 0; i < F.n_maps; i++) {
                const struct mpf_dm_info *x = &F.maps[i].info;
                if (i == 0 || (x->exists && mpf_uuid_is_partition_of(x->uuid, map->uuid))) {
                        snprintf(t[n].name, sizeof(t[n].name), "%s", x->name);
                        snprintf(t[n].uuid, sizeof(t[n].uuid), "%s", x->uuid);
                        snprintf(t[n].kname, sizeof(t[n].kname), "dm-%zu", i);
                        t[n].devt = x->devt;
                        n++;
                }
        }
        *ret = t;
        *ret_n = n;
        return 0;
}

static int f_scan_usage(void *u, const struct mpf_target *t, size_t n, usec_t deadline,
                        struct mpf_blockers *ret, unsigned *explained)
{
        *ret = (struct mpf_blockers){};
        record("scan");
        if (F.open_after_first_scan > 0) { /* an opener that was gone by the time we looked */
                F.maps[0].info.open_count = F.open_after_first_scan;
                F.open_after_first_scan = 0;
        }
        if (should_fail("scan"))
                return F.fail_r;
        if (F.mounted)
                ck_assert_int_eq(mpf_blockers_add_mount(ret, t[0].name, "/mnt/data", 123), 0);
        if (F.own_opener_after_remove > 0 && F.remove_pos > 0) {
                ck_assert_int_eq(
                        mpf_blockers_add_opener(ret, F.own_opener_after_remove, "mpath-flush-w", t[0].name),
                        0);
                ck_assert_int_eq(mpf_blockers_mark_own(ret, F.own_opener_after_remove, t[0].name,
                                                       "a pool worker", "fd 7 -> /dev/dm-0"),
                                 0);
        }
        if (F.n_opener_seq > 0) {
                int pid = F.opener_seq[F.opener_pos < F.n_opener_seq ? F.opener_pos : F.n_opener_seq - 1];
                F.opener_pos++;
                if (pid > 0)
                        ck_assert_int_eq(
                                mpf_blockers_add_opener(ret, pid, pid == 200 ? "sleep" : "blkid", t[0].name),
                                0);
                *explained = pid > 0; /* the opener's fd accounts for the open it adds (fill()) */
        } else
                *explained = 0;
        *explained += F.explained + (unsigned)(n - 1);
        return 0;
}

static int f_lock(void *u, const struct mpf_dm_info *map, bool try_map, usec_t deadline, void **ret,
                  struct mpf_stuck *ret_stuck)
{
        record("%s %s", try_map ? "trylock" : "lock", map->uuid);
        check_deadline("lock", deadline, false);
        *ret_stuck = (struct mpf_stuck){};
        if (try_map && F.lock_held_by_other && strcmp(map->uuid, F.lock_held_by_other) == 0) {
                F.lock_held_by_other = NULL; /* released by the time we come back */
                return -EAGAIN;
        }
        if (!try_map && F.locks_held > 0)
                F.waited_holding++;
        if (F.lock_r == -ETIMEDOUT) {
                F.clock = deadline;
                *ret_stuck = F.lock_stuck;
        }
        if (F.lock_r < 0)
                return F.lock_r;
        if (F.lock_removes_map)
                F.maps[0].info.exists = false;
        if (F.lock_sets_params)
                F.maps[0].params = F.lock_sets_params;
        if (F.lock_until_deadline)
                F.clock = deadline; /* got the lock just in time */
        F.locks_held++;
        *ret = &F;
        return 0;
}

static void f_unlock(void *u, void *l)
{
        ck_assert_ptr_eq(l, &F);
        ck_assert_uint_gt(F.locks_held, 0);
        F.locks_held--;
        record("unlock");
        maybe_vanish("unlock");
}

static int f_message(void *u, const char *name, const char *uuid, const char *msg)
{
        struct fake_map *m;

        record("message %s %s", name, msg);
        if (F.dead)
                return -EINTR;
        maybe_vanish("message");
        m = find_ref(name, uuid);
        if (!m)
                return -ENXIO;
        snprintf(m->last_message, sizeof(m->last_message), "%s", msg);
        if (strcmp(msg, "queue_if_no_path") == 0) {
                if (F.kernel_refuses > 0) {
                        F.kernel_refuses--;
                        return -EBUSY;
                }
                if (F.message_restore_r >= 0 && m == &F.maps[0]) {
                        F.kernel_queueing = true;
                        if (F.table_follows_queueing)
                                F.maps[0].params = QUEUEING_PARAMS;
                }
                return F.message_restore_r;
        }
        if (F.message_r >= 0 && F.n_sectors_seq > 0)
                F.sectors_pos++; /* queueing is off: the queued writes fail */
        if (F.message_r >= 0 && m == &F.maps[0]) {
                F.kernel_queueing = false;
                if (F.table_follows_queueing)
                        F.maps[0].params = NO_QUEUEING_PARAMS;
        }
        return F.message_r;
}

static int f_mpathd_reply(void *u, usec_t deadline)
{
        record("mpathd-reply");
        maybe_vanish("mpathd-reply");
        if (F.dead) {
                F.mpathd_reply_pending = false; /* its connection goes with it */
                return -EINTR;
        }
        if (F.deadline != 0 && deadline < F.deadline)
                /* before the remove: as long as a command waited for at once would have been */
                ck_assert_uint_eq(deadline, F.mpathd_sent_at + MPATHD_TIMEOUT_USEC);
        else
                check_deadline("mpathd-reply", deadline, true);
        if (!F.mpathd_reply_pending)
                return -ENOMSG;
        if (F.mpathd_reply_r < 0) {
                int r = F.mpathd_reply_r;

                F.mpathd_reply_r = 0;
                F.mpathd_reply_pending = false;
                return r;
        }
        /* an answer that came while we were busy elsewhere is there, deadline or not */
        if (F.mpathd_pending_r == -ETIMEDOUT || F.mpathd_answer_at > MAX(deadline, F.clock)) {
                F.clock = MAX(F.clock, deadline);
                return -ETIMEDOUT;
        }
        F.clock = MAX(F.clock, F.mpathd_answer_at);
        F.mpathd_reply_pending = false;
        return F.mpathd_pending_r;
}

/* disablequeueing sent, not waited for: multipathd answers at once or mpathd_takes later (late) */
static int f_mpathd_send(void *u, const char *cmd, usec_t deadline)
{
        record("mpathd %s", cmd);
        if (F.dead)
                return -EINTR;
        check_deadline(cmd, deadline, false);
        if (F.mpathd_reply_pending)
                ck_abort_msg("'%s' sent while an answer is pending", cmd);
        if (F.mpathd_takes > 0 && !F.mpathd_late) {
                /* it never got the command (stopped, its backlog full) */
                F.clock = MIN(F.clock + F.mpathd_takes, deadline);
                return -ETIMEDOUT;
        }
        if (F.mpathd_r == -ENOENT || F.mpathd_r == -ECONNREFUSED || F.mpathd_r == -ETIMEDOUT)
                return F.mpathd_r;
        F.mpathd_reply_pending = true;
        F.mpathd_sent_at = F.clock;
        F.mpathd_answer_at = F.clock + (F.mpathd_late ? F.mpathd_takes : 0);
        F.mpathd_pending_r = F.mpathd_late ? F.mpathd_late_r : F.mpathd_r;
        if (F.mpathd_pending_r != -EBADMSG && (F.mpathd_late || F.mpathd_r >= 0) &&
            strcmp(cmd, "disablequeueing map mpatha") == 0)
                F.mpathd_queueing = false; /* carried out, now or later */
        return -EINPROGRESS;
}

static int f_mpathd(void *u, const char *cmd, usec_t deadline)
{
        record("mpathd %s", cmd);
        if (F.dead)
                return -EINTR;
        check_deadline(cmd, deadline, startswith(cmd, "restorequeueing") != NULL);
        if (F.mpathd_reply_pending)
                /* multipathd serves one connection in order: a command after a pending one would
                 * get that one's answer (mpathd_reply reads it first) */
                ck_abort_msg("'%s' sent while an answer is pending", cmd);
        if (startswith(cmd, "restorequeueing") && F.vanish_at)
                return -EBADMSG; /* multipathd no longer knows the map */
        if (startswith(cmd, "restorequeueing")) {
                if (F.mpathd_restore_r >= 0 && strcmp(cmd, "restorequeueing map mpatha") == 0)
                        F.mpathd_queueing = true;
                return F.mpathd_restore_r;
        }
        if (startswith(cmd, "disablequeueing") && F.mpathd_late) {
                F.clock = MIN(F.clock + F.mpathd_takes, deadline);
                F.mpathd_reply_pending = true;
                F.mpathd_answer_at = 0; /* there when asked for again */
                F.mpathd_pending_r = F.mpathd_late_r;
                if (F.mpathd_late_r != -EBADMSG)
                        F.mpathd_queueing = false; /* carried out, now or later */
                return -EINPROGRESS;
        }
        if (startswith(cmd, "disablequeueing") && F.mpathd_takes > 0) {
                F.clock = MIN(F.clock + F.mpathd_takes, deadline);
                return -ETIMEDOUT;
        }
        if (F.mpathd_r >= 0 && strcmp(cmd, "disablequeueing map mpatha") == 0)
                F.mpathd_queueing = false;
        return F.mpathd_r;
}

static int f_claim(void *u, const struct mpf_dm_info *map, int *fd)
{
        record("claim %s", map->name);
        if (F.killed_at_claim && strcmp(map->name, F.killed_at_claim) == 0)
                (void)raise(SIGKILL);
        if (F.hangs_at_claim && strcmp(map->name, F.hangs_at_claim) == 0) {
                log_info("%s: fake: hanging at claim", map->name);
                if (F.hang_child) {
                        pid_t pid = fork();

                        if (pid == 0) {
                                (void)sleep(60);
                                _exit(0);
                        }
                        *F.hang_child = pid;
                }
                for (;;)
                        (void)pause();
        }
        if (F.dead)
                return -EINTR;
        maybe_vanish("claim");
        if (F.vanish_at && strcmp(F.vanish_at, "claim") == 0)
                return -ENOENT;
        if (F.claim_r < 0)
                return F.claim_r;
        F.claimed = true;
        *fd = 42;
        return 0;
}

static int f_flush(void *u, int fd, usec_t deadline, pid_t *ret_stuck)
{
        ck_assert_int_eq(fd, 42);
        record("flush");
        check_deadline("flush", deadline, false);
        if (F.flush_r == -ETIMEDOUT)
                F.clock = deadline;
        *ret_stuck = F.flush_r == -ETIMEDOUT ? F.stuck_worker : 0;
        F.worker_holds = F.flush_r != -ETIMEDOUT;
        return F.flush_r;
}

static int f_sectors_written(void *u, const struct mpf_dm_info *map, uint64_t *ret)
{
        record("sectors-written %s", map->name);
        if (F.n_sectors_seq == 0)
                return -ENOENT;
        *ret = F.sectors_seq[F.sectors_pos < F.n_sectors_seq ? F.sectors_pos : F.n_sectors_seq - 1];
        return 0;
}

static int f_active_paths(void *u, const char *name, const char *uuid)
{
        record("active-paths %s", name);
        return F.active_paths_r;
}

static int f_release(void *u, int fd, bool write_back, usec_t until, pid_t *ret_stuck)
{
        bool held = F.worker_holds;

        ck_assert_int_eq(fd, 42);
        ck_assert(F.claimed);
        F.claimed = false;
        F.worker_holds = false;
        *ret_stuck = 0;
        record("release");
        if (held && write_back) {
                record("worker write-back");
                if (F.release_r == -ETIMEDOUT) {
                        ck_assert_uint_ge(until, F.deadline);
                        F.clock = until;
                        *ret_stuck = F.release_stuck;
                }
                return F.release_r;
        }
        return 0;
}

static int f_remove(void *u, const char *name, const char *uuid, bool deferred, uint32_t *cookie)
{
        struct fake_map *m;
        int r = 0;

        maybe_vanish("remove");
        m = find_ref(name, uuid);
        record("remove%s %s", deferred ? " deferred" : "", name);
        if (F.dead)
                return -EINTR;
        if (*cookie == 0)
                *cookie = 0x0d4d1234; /* libdevmapper makes the cookie before it runs the task */
        if (should_fail("remove"))
                return F.fail_r;
        if (!m)
                return -ENXIO;
        if (m == &F.maps[0] && F.n_remove_seq > 0) {
                r = F.remove_seq[F.remove_pos < F.n_remove_seq ? F.remove_pos : F.n_remove_seq - 1];
                F.remove_pos++;
        }
        if (r < 0)
                return r;
        *cookie = 0x0d4d1234;
        if (deferred && m == &F.maps[0] && F.deferred_stays)
                m->info.deferred_remove = true;
        else if (!F.remove_keeps_map)
                m->info.exists = false;
        return 0;
}

static int f_remove_watched(void *u, const char *name, const char *uuid, uint64_t *ret_seqnum)
{
        struct fake_map *m;
        int r = 0;

        maybe_vanish("remove-watched");
        m = find_ref(name, uuid);
        record("remove-watched %s", name);
        *ret_seqnum = 1000 + F.n_calls; /* the kernel's uevent_seqnum, always rising */
        if (F.watched_r == -EOPNOTSUPP)
                return F.watched_r; /* nothing done */
        if (!m)
                return -ENXIO;
        if (m == &F.maps[0] && F.n_remove_seq > 0) {
                r = F.remove_seq[F.remove_pos < F.n_remove_seq ? F.remove_pos : F.n_remove_seq - 1];
                F.remove_pos++;
        }
        if (r < 0)
                return r;
        m->info.exists = false;
        return 0;
}

static int f_udev_wait_removed(void *u, const struct mpf_removed *maps, size_t n, usec_t deadline)
{
        record("udev_wait_removed %zu", n);
        check_deadline("udev_wait_removed", deadline, true);
        for (size_t i = 0; i < n && F.n_waited < SEQ_MAX; i++) {
                F.waited_seqnum[F.n_waited] = maps[i].seqnum;
                F.waited[F.n_waited++] = maps[i].devt;
        }
        return F.wait_removed_r;
}

static int f_save(void *u, const char *name, const char *uuid, struct mpf_dm_saved *ret)
{
        struct fake_map *m = find_ref(name, uuid);

        record("save %s", name);
        if (F.save_r < 0)
                return F.save_r;
        if (!m)
                return -ENXIO;
        *ret = (struct mpf_dm_saved){.n_targets = 1};
        snprintf(ret->name, sizeof(ret->name), "%s", m->info.name);
        snprintf(ret->uuid, sizeof(ret->uuid), "%s", m->info.uuid);
        ret->targets = calloc(1, sizeof(*ret->targets));
        ck_assert_ptr_nonnull(ret->targets);
        ret->targets[0] = (struct mpf_dm_target){
                .length = 32768, .type = strdup(m->type), .params = strdup(m->params)};
        return 0;
}

/* Makes a removed fake map exist again, if the saved name, UUID and table are its own. */
static int f_create(void *u, const struct mpf_dm_saved *s, uint32_t *cookie)
{
        record("create %s", s->name);
        if (F.dead)
                return -EINTR;
        if (F.create_busy > 0) {
                F.create_busy--;
                return -EBUSY;
        }
        if (F.create_r < 0)
                return F.create_r;
        for (size_t i = 0; i < F.n_maps; i++) {
                struct fake_map *m = &F.maps[i];

                if (strcmp(m->info.name, s->name) != 0 || m->info.exists)
                        continue;
                ck_assert_str_eq(m->info.uuid, s->uuid);
                ck_assert_uint_eq(s->n_targets, 1);
                ck_assert_str_eq(m->type, s->targets[0].type);
                ck_assert_str_eq(m->params, s->targets[0].params);
                m->info.exists = true;
                *cookie = 0x0d4d5678;
                return 0;
        }
        return -EBUSY;
}

static int f_udev_wait(void *u, const struct mpf_dm_info *map, uint32_t cookie, usec_t deadline)
{
        record("udev_wait");
        /* after a failure (partition maps made again) it may run on the restore's grace */
        check_deadline("udev_wait", deadline, true);
        F.clock += F.udev_wait_takes;
        F.udev_wait_takes = 0;
        return F.udev_wait_r;
}

/* The record is kept as text, so that every write goes through format and parse. */
static int f_record_write(void *u, const struct mpf_undo *rec)
{
        char *text = NULL;

        record("record%s%s%s", rec->kernel_queueing_disabled ? " kernel" : "",
               rec->mpathd_queueing_disabled ? " multipathd" : "", rec->n_saved > 0 ? " partitions" : "");
        if (F.dead)
                return -EINTR;
        if (F.record_r < 0)
                return F.record_r;
        if (!mpf_undo_empty(rec))
                ck_assert_int_eq(mpf_undo_format(rec, &text), 0);
        free(F.undo_text);
        F.undo_text = text;
        return 0;
}

static int f_record_read(void *u, const char *uuid, struct mpf_undo *ret)
{
        record("record-read");
        if (!F.undo_text)
                return -ENOENT;
        return mpf_undo_parse(F.undo_text, ret);
}

static usec_t f_now(void *u)
{
        return F.clock;
}

static void f_sleep_until(void *u, usec_t t)
{
        ck_assert_uint_ge(t, F.clock);
        F.clock = t;
}

/* --wait-busy waits with no lock held: every lock taken so far was dropped */
static void f_wait_change(void *u, usec_t t)
{
        size_t locks = 0, unlocks = 0;

        for (size_t i = 0; i < F.n_calls; i++) {
                locks += startswith(F.calls[i], "lock ") != NULL;
                unlocks += strcmp(F.calls[i], "unlock") == 0;
        }
        ck_assert_uint_eq(locks, unlocks);
        record("wait_change");
        if (++F.waits == F.unmount_at_wait) {
                F.mounted = false;
                F.clock += 100 * USEC_PER_MSEC; /* the unmount comes before t: an event */
                return;
        }
        f_sleep_until(u, t);
}

static const struct mpf_ops fake_ops = {
        .check = f_check,
        .list = f_list,
        .info_by_name = f_info_by_name,
        .info_by_uuid = f_info_by_uuid,
        .info_by_path = f_info_by_path,
        .table = f_table,
        .targets = f_targets,
        .scan_usage = f_scan_usage,
        .lock = f_lock,
        .unlock = f_unlock,
        .message = f_message,
        .mpathd = f_mpathd,
        .mpathd_reply = f_mpathd_reply,
        .mpathd_send = f_mpathd_send,
        .claim = f_claim,
        .flush = f_flush,
        .save = f_save,
        .create = f_create,
        .active_paths = f_active_paths,
        .sectors_written = f_sectors_written,
        .release = f_release,
        .remove = f_remove,
        .udev_wait = f_udev_wait,
        .record_write = f_record_write,
        .record_read = f_record_read,
        .now = f_now,
        .sleep_until = f_sleep_until,
        .wait_change = f_wait_change,
};

#define WWID "3600140512345678"
#define TIMEOUT (30 * USEC_PER_SEC)
#define START (1000 * USEC_PER_SEC)

static void add_map(const char *name, const char *uuid, unsigned minor, int open_count, const char *type,
                    const char *params)
{
        struct fake_map *m = &F.maps[F.n_maps++];
        *m = (struct fake_map){.type = type, .params = params};
        m->info.exists = true;
        snprintf(m->info.name, sizeof(m->info.name), "%s", name);
        snprintf(m->info.uuid, sizeof(m->info.uuid), "%s", uuid);
        m->info.devt = makedev(254, minor);
        m->info.open_count = open_count;
}

static void setup(void)
{
        for (size_t i = 0; i < F.n_calls; i++)
                free(F.calls[i]);
        free(F.undo_text);
        F = (struct fake){.clock = START,
                          .mpathd_r = 0,
                          .active_paths_r = 2,
                          .deadline = START + TIMEOUT,
                          .kernel_queueing = true,
                          .mpathd_queueing = true};
        log_set_max_level(LOG_EMERG - 1); /* quiet */
}

/* mpatha with one partition map, queueing on, multipathd running */
static void setup_standard(void)
{
        setup();
        add_map("mpatha", "mpath-" WWID, 0, 1, "multipath", QUEUEING_PARAMS);
        add_map("mpatha-part1", "part1-mpath-" WWID, 1, 0, "linear", "254:0 2048");
}

static void flush(const char *arg, bool deferred, bool dry_run, struct mpf_map_result *res)
{
        struct mpf_flush_params p = {.deferred = deferred, .dry_run = dry_run, .deadline = START + TIMEOUT};
        ck_assert_int_eq(mpf_flush_map(&fake_ops, &p, arg, res), 0);
        ck_assert_uint_le(F.clock, START + TIMEOUT + RESTORE_GRACE_USEC);
}

static void assert_calls(const char *const *expected)
{
        size_t n = 0;
        for (; expected[n]; n++) {
                ck_assert_msg(n < F.n_calls, "missing call #%zu '%s'", n, expected[n]);
                ck_assert_str_eq(F.calls[n], expected[n]);
        }
        ck_assert_msg(n == F.n_calls, "unexpected extra call '%s'", n < F.n_calls ? F.calls[n] : "");
}

static void assert_restored(void)
{
        ck_assert(called("mpathd restorequeueing map mpatha"));
        ck_assert(called("message mpatha queue_if_no_path"));
}

static void assert_untouched(void)
{
        for (size_t i = 0; i < F.n_calls; i++) {
                ck_assert_ptr_null(startswith(F.calls[i], "message"));
                ck_assert_ptr_null(startswith(F.calls[i], "remove"));
                ck_assert_ptr_null(startswith(F.calls[i], "mpathd"));
        }
}

START_TEST(test_happy_path_order)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        static const char *const expected[] = {
                "lock mpath-" WWID,
                "record-read", /* none left by a flusher that died */
                /* open once, by its unused partition map: nobody else, no scan */
                "record kernel multipathd", /* written down before it is done */
                "mpathd disablequeueing map mpatha",
                "message mpatha fail_if_no_path",
                "save mpatha-part1",
                "record kernel multipathd partitions",
                "remove mpatha-part1",
                "udev_wait",
                "claim mpatha",
                "flush",
                "mpathd-reply", /* multipathd's answer, read before the map goes */
                "release",
                "worker write-back",
                "remove mpatha",
                "udev_wait",
                "record", /* gone: nothing left to put back */
                "unlock",
                NULL,
        };

        setup_standard();
        F.maps[0].info.open_count = 1; /* the partition map */
        flush("mpatha", false, false, &r);
        assert_calls(expected);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(r.step, MPF_STEP_DONE);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_OK);
        ck_assert_int_eq(r.queueing_before, 1);
        ck_assert_int_eq(r.queueing_after, 0);
        ck_assert_str_eq(r.name, "mpatha");
        ck_assert_str_eq(r.uuid, "mpath-" WWID);
        ck_assert_uint_eq(strv_length(r.partitions), 1);
        ck_assert_str_eq(r.partitions[0], "mpatha-part1");
        ck_assert_uint_eq(r.blockers.unexplained_opens, 0);
        ck_assert(!r.restore_failed);
}
END_TEST

START_TEST(test_resolve_forms)
{
        static const char *const forms[] = {
                "mpatha", "/dev/mapper/mpatha", "/dev/dm-0", WWID, ("mpath-" WWID),
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                flush(forms[i], false, false, &r);
                ck_assert_msg(r.result == MPF_RESULT_REMOVED, "%s: %s", forms[i], r.reason);
                ck_assert_str_eq(r.map, forms[i]);
                ck_assert_str_eq(r.name, "mpatha");
        }
}
END_TEST

START_TEST(test_absent)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2, r3;

        setup_standard();
        flush("mpathz", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(r.step, MPF_STEP_RESOLVE);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_OK);
        ck_assert_uint_eq(F.n_calls, 0);

        flush("mpath-36000000000000", false, false, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_ABSENT);
        flush("/dev/mapper/nothere", false, false, &r3);
        ck_assert_int_eq(r3.result, MPF_RESULT_ABSENT);
        ck_assert_uint_eq(F.n_calls, 0);
}
END_TEST

START_TEST(test_refused)
{
        static const char *const refused[] = {"vg-lv", "mpatha-part1", "notmp", "/etc/passwd", "/dev/sda"};

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                add_map("vg-lv", "LVM-abcdef", 5, 0, "linear", "254:1 0");
                add_map("notmp", "mpath-fake", 6, 0, "linear", "8:0 0"); /* mpath- UUID, wrong target */
                flush(refused[i], false, false, &r);
                ck_assert_msg(r.result == MPF_RESULT_REFUSED, "%s: %s", refused[i],
                              mpf_result_to_string(r.result));
                ck_assert_int_eq(r.step, MPF_STEP_RESOLVE);
                ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_REFUSED);
                ck_assert_uint_eq(F.n_calls, 0);
                ck_assert(F.maps[0].info.exists && F.maps[1].info.exists);
        }
}
END_TEST

START_TEST(test_lock_timeout)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.lock_r = -ETIMEDOUT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_LOCK);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
        assert_untouched();
        ck_assert(!called("unlock"));
}
END_TEST

START_TEST(test_lock_map_vanished_or_error)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2;

        setup_standard();
        F.lock_r = -ENXIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(r.step, MPF_STEP_LOCK);
        assert_untouched();

        setup_standard();
        F.lock_r = -EROFS; /* cannot create the lock file */
        flush("mpatha", false, false, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r2.step, MPF_STEP_LOCK);
        ck_assert_int_eq(mpf_map_result_exit_code(&r2), MPF_EXIT_FAILED);
        assert_untouched();
}
END_TEST

START_TEST(test_lock_recheck_absent)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.lock_removes_map = true;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(r.step, MPF_STEP_LOCK);
        assert_untouched();
        ck_assert(called("unlock"));
}
END_TEST

START_TEST(test_in_use_scan_when_partition_open)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[1].info.open_count = 1; /* mpatha-part1 is open: someone uses the map through it */
        flush("mpatha", false, true, &r);
        ck_assert(called("scan"));
}
END_TEST

START_TEST(test_in_use_no_scan_when_nobody_opens)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1; /* only its partition map's table holds it */
        flush("mpatha", false, true, &r);
        ck_assert(!called("scan"));
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(r.blockers.unexplained_opens, 0);
}
END_TEST

START_TEST(test_in_use_busy)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mounted = true;
        F.maps[0].info.open_count = 2;
        F.explained = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_BUSY);
        ck_assert_ptr_nonnull(strstr(r.reason, "/mnt/data"));
        ck_assert_uint_eq(r.blockers.n_mounts, 1);
        ck_assert_int_eq(r.queueing_after, 1);
        assert_untouched();
        ck_assert(called("unlock"));
}
END_TEST

START_TEST(test_in_use_transient_openers_proceed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.opener_seq[0] = 101; /* a blkid storm: another process each time, then none */
        F.opener_seq[1] = 102;
        F.opener_seq[2] = 0;
        F.n_opener_seq = 3;
        flush("mpatha", false, false, &r);
        ck_assert_msg(r.result == MPF_RESULT_REMOVED, "%s", r.reason);
        ck_assert_uint_le(F.clock, START + IN_USE_SETTLE_USEC);
}
END_TEST

START_TEST(test_in_use_lasting_opener_busy)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.opener_seq[0] = 200; /* sleep < /dev/mapper/mpatha: seen by every scan */
        F.n_opener_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE);
        ck_assert_uint_eq(r.blockers.n_openers, 1);
        ck_assert_int_eq(r.blockers.openers[0].pid, 200);
        ck_assert_str_eq(r.blockers.openers[0].comm, "sleep");
        ck_assert_uint_eq(F.clock, START + IN_USE_SETTLE_USEC);
        assert_untouched();
}
END_TEST

START_TEST(test_dry_run_deferred_lasting_opener)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.opener_seq[0] = 101;
        F.n_opener_seq = 1;
        flush("mpatha", true, true, &r); /* dry run, --deferred: the plan defers */
        ck_assert_int_eq(r.result, MPF_RESULT_DEFERRED);
        assert_untouched();
}
END_TEST

START_TEST(test_unexplained_opens_proceed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 4; /* 1 partition map + 3 nobody accounts for */
        F.active_paths_r = 0;          /* no usable path: they are queued I/O */
        F.open_seq[0] = 1;             /* drained by the flush: only our fd is left */
        F.n_open_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(r.blockers.unexplained_opens, 3);
}
END_TEST

START_TEST(test_queueing_off_untouched)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].params = NO_QUEUEING_PARAMS;
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.queueing_before, 0);
        ck_assert_int_eq(r.queueing_after, 0);
        ck_assert(!called("message mpatha fail_if_no_path"));
        ck_assert(!called("mpathd disablequeueing map mpatha"));
        ck_assert(!called("message mpatha queue_if_no_path"));
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
}
END_TEST

START_TEST(test_fail_if_no_path_fails)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.message_r = -EINVAL;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_QUEUEING);
        ck_assert(called("mpathd restorequeueing map mpatha"));
        ck_assert(!called("remove mpatha-part1"));
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_FAILED);
}
END_TEST

START_TEST(test_mpathd_not_running)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mpathd_r = -ECONNREFUSED;
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert(called("message mpatha fail_if_no_path"));
        ck_assert(called("message mpatha queue_if_no_path"));
        ck_assert(!called("mpathd restorequeueing map mpatha"));
        ck_assert_int_eq(r.queueing_after, 1);
}
END_TEST

/* multipathd got disablequeueing and answers 2 s later (busy with other maps); the flush fails
 * meanwhile (the map is claimed by someone): the put-back reads the answer first, then
 * restorequeueing goes on the same connection, after it, and only then queue_if_no_path to the
 * kernel. */
START_TEST(test_mpathd_late_answer)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        ssize_t reply, restore, kernel;

        setup_standard();
        F.mpathd_late = true;
        F.mpathd_late_r = 0;
        F.mpathd_takes = 2 * USEC_PER_SEC;
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_CLAIM);
        ck_assert(!r.restore_failed);
        assert_restored();
        ck_assert(F.mpathd_queueing);
        ck_assert(F.kernel_queueing);
        reply = call_index("mpathd-reply");
        restore = call_index("mpathd restorequeueing map mpatha");
        kernel = call_index("message mpatha queue_if_no_path");
        ck_assert_int_ge(reply, 0);
        ck_assert_int_lt(reply, restore);
        ck_assert_int_lt(restore, kernel);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* Its late answer is "fail" (it timed our command out): nothing to put back in multipathd. */
START_TEST(test_mpathd_late_answer_fail)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mpathd_late = true;
        F.mpathd_late_r = -EBADMSG;
        F.mpathd_takes = 2 * USEC_PER_SEC;
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert(!r.restore_failed);
        ck_assert(called("mpathd-reply"));
        ck_assert(!called("mpathd restorequeueing map mpatha"));
        ck_assert(called("message mpatha queue_if_no_path"));
        ck_assert(F.mpathd_queueing);
        ck_assert(F.kernel_queueing);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* No answer within the put-back's grace either: queueing goes back in the kernel, the result says
 * it could not be restored (multipathd may still switch it off), and the record keeps multipathd's
 * part for the next flusher. No restorequeueing on another connection: it could overtake. */
START_TEST(test_mpathd_never_answers)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};

        setup_standard();
        F.mpathd_late = true;
        F.mpathd_late_r = -ETIMEDOUT;
        F.mpathd_takes = 100 * USEC_PER_SEC;
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert(r.restore_failed);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_RESTORE_FAILED);
        ck_assert(called("mpathd-reply"));
        ck_assert(!called("mpathd restorequeueing map mpatha"));
        ck_assert(called("message mpatha queue_if_no_path"));
        ck_assert(F.kernel_queueing);
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert(u.mpathd_queueing_disabled);
        ck_assert(u.kernel_queueing_disabled); /* multipathd switches it off there too */
}
END_TEST

/* The steps after queueing do not wait for multipathd's answer; the remove does, as long as a
 * command waited for at once would have (MPATHD_TIMEOUT_USEC), then goes on without it: the map is
 * removed, nothing is put back. */
START_TEST(test_mpathd_late_answer_removed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        ssize_t send, reply, claim, flush_i, remove;

        setup_standard();
        F.mpathd_late = true;
        F.mpathd_late_r = 0;
        F.mpathd_takes = 100 * USEC_PER_SEC;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        send = call_index("mpathd disablequeueing map mpatha");
        claim = call_index("claim mpatha");
        flush_i = call_index("flush");
        reply = call_index("mpathd-reply");
        remove = call_index("remove mpatha");
        ck_assert_int_lt(send, claim);
        ck_assert_int_lt(flush_i, reply);
        ck_assert_int_lt(reply, remove);
        ck_assert_uint_ge(F.clock, START + MPATHD_TIMEOUT_USEC);
        ck_assert_uint_lt(F.clock, START + MPATHD_TIMEOUT_USEC + USEC_PER_SEC);
        ck_assert(!called("mpathd restorequeueing map mpatha"));
}
END_TEST

/* The wait for the answer reaches the deadline: the remove does not start; what the flush changed
 * is put back. */
START_TEST(test_mpathd_answer_until_deadline)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        struct mpf_flush_params p = {.deadline = START + 2 * USEC_PER_SEC};

        setup_standard();
        F.deadline = p.deadline;
        F.mpathd_late = true;
        F.mpathd_late_r = 0;
        F.mpathd_takes = 100 * USEC_PER_SEC;
        ck_assert_int_eq(mpf_flush_map(&fake_ops, &p, "mpatha", &r), 0);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_SOLE_OPENER);
        ck_assert(!called("remove mpatha"));
        ck_assert(called("create mpatha-part1"));
        ck_assert(called("message mpatha queue_if_no_path"));
}
END_TEST

/* The connection broke before the answer came (multipathd restarted): the command is sent once
 * more and waited for; the map is removed. */
START_TEST(test_mpathd_answer_connection_broke)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        size_t sent = 0;

        setup_standard();
        F.mpathd_reply_r = -ECONNRESET;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        for (size_t i = 0; i < F.n_calls; i++)
                sent += strcmp(F.calls[i], "mpathd disablequeueing map mpatha") == 0;
        ck_assert_uint_eq(sent, 2);
        ck_assert_int_lt(call_index("mpathd-reply"), call_index("remove mpatha"));
        ck_assert(!F.mpathd_reply_pending); /* the second one was waited for */
}
END_TEST

/* The same, the map renamed and its old name given to another map before the answer was read: the
 * command is sent again by the name the map has now, and the other map is left alone. */
START_TEST(test_mpathd_answer_connection_broke_renamed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mpathd_reply_r = -ECONNRESET;
        F.rename_at = "mpathd-reply";
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_lt(call_index("mpathd-reply"), call_index("mpathd disablequeueing map mpathz"));
        ck_assert_int_eq(
                call_index_from((size_t)call_index("mpathd-reply"), "mpathd disablequeueing map mpatha"),
                -1);
        ck_assert(F.maps[2].info.exists); /* the map that took the name */
        ck_assert(!F.maps[0].info.exists);
}
END_TEST

/* multipathd answered at once, but the steps in between took longer than the answer's own bound
 * (the partitions step's udev wait, 5 s): the answer there is read all the same, no warning, and
 * nothing is left pending. */
START_TEST(test_mpathd_answer_read_late)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.udev_wait_takes = 5 * USEC_PER_SEC;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(called("mpathd-reply"));
        ck_assert(!F.mpathd_reply_pending);
}
END_TEST

/* multipathd's answer "fail", read before the remove: it did not switch queueing off, so when the
 * remove then fails, queueing is put back in the kernel only. */
START_TEST(test_mpathd_answer_fail_no_restore)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mpathd_r = -EBADMSG;
        F.remove_seq[0] = -EBUSY;
        F.n_remove_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_REMOVE);
        ck_assert(called("mpathd-reply"));
        ck_assert(!called("mpathd restorequeueing map mpatha"));
        ck_assert(called("message mpatha queue_if_no_path"));
        ck_assert(!r.restore_failed);
}
END_TEST

/* A deadline of 1 s, the map claimed by someone at once (the flush fails at claim), multipathd's
 * answer late_r, takes later; returns with the clock within the grace past the deadline. */
static void flush_short_deadline_claimed(int late_r, usec_t takes, struct mpf_map_result *r)
{
        struct mpf_flush_params p = {.deadline = START + USEC_PER_SEC};

        setup_standard();
        F.deadline = p.deadline;
        F.mpathd_late = true;
        F.mpathd_late_r = late_r;
        F.mpathd_takes = takes;
        F.claim_r = -EBUSY;
        ck_assert_int_eq(mpf_flush_map(&fake_ops, &p, "mpatha", r), 0);
        ck_assert_int_eq(r->result, MPF_RESULT_BUSY);
        ck_assert_uint_le(F.clock, p.deadline + RESTORE_GRACE_USEC);
}

/* multipathd's answer at 2.5 s: the put-back waits for it as the remove would have (up to the
 * deadline) and then the grace, reads it, restores queueing in multipathd, and says nothing
 * failed. */
START_TEST(test_mpathd_answer_short_deadline_put_back)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        flush_short_deadline_claimed(0, 2500 * USEC_PER_MSEC, &r);
        ck_assert(!r.restore_failed);
        ck_assert_int_lt(call_index("mpathd-reply"), call_index("mpathd restorequeueing map mpatha"));
        ck_assert(F.mpathd_queueing);
        ck_assert(F.kernel_queueing);
}
END_TEST

/* No answer ever: putting back is bounded once for the whole flush (a step's put-back, then the
 * final one), never past the grace after the deadline (flush_short_deadline_claimed() checks). */
START_TEST(test_mpathd_never_answers_put_back_bounded)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        flush_short_deadline_claimed(-ETIMEDOUT, 100 * USEC_PER_SEC, &r);
        ck_assert(r.restore_failed);
}
END_TEST

START_TEST(test_partition_open_busy)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[1].info.open_count = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_PARTITIONS);
        ck_assert(!called("remove mpatha-part1"));
        assert_restored();
        ck_assert(F.maps[1].info.exists);
}
END_TEST

START_TEST(test_claim_busy_restores)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_CLAIM);
        assert_restored();
        ck_assert_int_eq(r.queueing_after, 1);
        ck_assert(!called("flush"));
        ck_assert(!called("remove mpatha"));
}
END_TEST

START_TEST(test_claim_other_error_failed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.claim_r = -ENOENT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_CLAIM);
        assert_restored();
}
END_TEST

START_TEST(test_flush_eio)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = -EIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_FLUSH);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_FAILED);
        ck_assert(called("release"));
        ck_assert(!called("remove mpatha"));
        assert_restored();
        ck_assert(!F.claimed);
}
END_TEST

/* On a map without a usable path, data that could not be written failed for lack of a path;
 * keeping the map saves none of it: it is removed, and the result says data was lost (exit 8). */
START_TEST(test_flush_eio_pathless_data_lost)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = -EIO;
        F.active_paths_r = 0;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(r.step, MPF_STEP_DONE);
        ck_assert(r.data_lost);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_DATA_LOST);
        ck_assert_ptr_nonnull(strstr(r.reason, "written data was lost"));
        ck_assert(!find_name("mpatha"));
}
END_TEST

/* Writes queued by a writer that closed, on a pathless map: switching queueing off fails them.
 * The disk statistics count them; the map is removed all the same, and the result says so. */
START_TEST(test_queued_writes_failed_counted)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 3; /* its partition map, and two opens nobody accounts for */
        F.active_paths_r = 0;
        F.sectors_seq[0] = 10;
        F.sectors_seq[1] = 13; /* sectors written (failed) after fail_if_no_path */
        F.n_sectors_seq = 2;
        F.open_seq[0] = 1; /* drained: only our own open left */
        F.n_open_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_msg(r.result == MPF_RESULT_REMOVED, "%s", r.reason);
        ck_assert_uint_eq(r.blockers.unexplained_opens, 2);
        ck_assert(r.data_lost);
        ck_assert_uint_eq(r.failed_write_bytes, 3 * 512);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_DATA_LOST);
        ck_assert_ptr_nonnull(strstr(r.reason, "1536 bytes of writes"));
        ck_assert_int_lt(call_index("sectors-written mpatha"), call_index("message mpatha fail_if_no_path"));
}
END_TEST

/* The same with only reads queued: nothing written was lost, a clean removal. */
START_TEST(test_queued_reads_not_data_lost)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 2;
        F.active_paths_r = 0;
        F.sectors_seq[0] = 10;
        F.n_sectors_seq = 1;
        F.open_seq[0] = 1;
        F.n_open_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(!r.data_lost);
        ck_assert_uint_eq(r.failed_write_bytes, 0);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_OK);
}
END_TEST

/* Opens nobody accounts for, on a map with a usable path: no I/O queues there, so it is a user
 * (a loop device, a kernel user): busy at in-use, at once, queueing untouched. */
START_TEST(test_unexplained_with_paths_busy)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, d;

        setup_standard();
        F.maps[0].info.open_count = 2; /* its partition map and one open nobody accounts for */
        F.active_paths_r = 2;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE);
        ck_assert_uint_eq(r.blockers.unexplained_opens, 1);
        ck_assert_ptr_nonnull(strstr(r.reason, "kernel user"));
        ck_assert_int_eq(r.queueing_after, 1);
        assert_untouched();
        ck_assert_uint_le(F.clock, START + IN_USE_SETTLE_USEC);

        /* the dry run predicts the same */
        setup_standard();
        F.maps[0].info.open_count = 2;
        flush("mpatha", false, true, &d);
        ck_assert_int_eq(d.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(d.step, MPF_STEP_IN_USE);
        ck_assert_ptr_nonnull(strstr(d.reason, "kernel user"));
        assert_untouched();
}
END_TEST

/* Runs flush() with the log at LOG_INFO on stderr, and returns what it logged. */
static char *flush_logged(const char *arg, bool deferred, struct mpf_map_result *res)
{
        _cleanup_(closep) int fd = memfd_create("log", MFD_CLOEXEC);
        int saved = dup(STDERR_FILENO);
        char *buf = calloc(1, 65536);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(saved, 0);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        log_set_journal(false);
        log_set_max_level(LOG_INFO);
        flush(arg, deferred, false, res);
        log_set_max_level(LOG_EMERG - 1);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        n = pread(fd, buf, 65535, 0);
        ck_assert_int_ge(n, 0);
        return buf;
}

/* A named opener that stays and an open nobody accounts for, on a map with usable paths: busy
 * (or deferred), named. No line claims queued I/O on a pathless map (the log is what this tests:
 * a busy or deferred map never reaches the queueing step, which alone reads count_writes). */
START_TEST(test_named_and_unexplained_not_queued_io)
{
        for (int deferred = 0; deferred <= 1; deferred++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;
                _cleanup_(freep) char *logged = NULL;

                setup_standard();
                F.maps[0].info.open_count = 3; /* its partition map, pid 200, one nobody accounts for */
                F.opener_seq[0] = 200;         /* stays */
                F.n_opener_seq = 1;
                F.active_paths_r = 2;
                F.deferred_stays = true; /* the kernel removes it when the last opener closes */
                logged = flush_logged("mpatha", deferred, &r);
                ck_assert_int_eq(r.result, (deferred ? MPF_RESULT_DEFERRED : MPF_RESULT_BUSY));
                ck_assert_uint_eq(r.blockers.unexplained_opens, 1);
                ck_assert_uint_eq(r.blockers.n_openers, 1);
                ck_assert_int_eq(r.blockers.openers[0].pid, 200);
                if (!deferred)
                        ck_assert_msg(strstr(r.reason, "pid 200"), "%s", r.reason);
                ck_assert_msg(!strstr(logged, "without a usable path"), "%s", logged);
        }
}
END_TEST

/* An opener that closed between the open count and the scan looks like an open nobody accounts
 * for; counted again, it is gone: not a user, the flush goes on. */
START_TEST(test_unexplained_transient_proceeds)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 2;
        F.open_after_first_scan = 1; /* only its partition map */
        flush("mpatha", false, false, &r);
        ck_assert_msg(r.result == MPF_RESULT_REMOVED, "%s", r.reason);
        ck_assert_uint_eq(r.blockers.unexplained_opens, 0);
        ck_assert_uint_le(F.clock, START + IN_USE_SETTLE_USEC);
}
END_TEST

/* Path states that cannot be read do not prove the map pathless: still a user. */
START_TEST(test_unexplained_status_unreadable_busy)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 2;
        F.active_paths_r = -EBADMSG;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE);
        assert_untouched();
}
END_TEST

/* The lock came at the deadline: nothing that changes the map starts any more. */
START_TEST(test_no_step_after_deadline)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.lock_until_deadline = true;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE); /* not even the scan starts */
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
        assert_untouched();
        ck_assert(!called("claim mpatha"));
        ck_assert(called("unlock"));
}
END_TEST

/* A path device open that waits out SCSI error recovery past the deadline: timeout at lock, the
 * worker that was opening it named with the device; nothing was changed. */
START_TEST(test_lock_timeout_stuck_worker)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.lock_r = -ETIMEDOUT;
        F.lock_stuck = (struct mpf_stuck){.pid = 4343, .in = "opening /dev/sdb"};
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_LOCK);
        ck_assert_int_eq(r.stuck_worker, 4343);
        ck_assert_ptr_nonnull(strstr(r.reason, "opening /dev/sdb"));
        ck_assert_ptr_nonnull(strstr(r.reason, "pid 4343"));
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
        assert_untouched();
        ck_assert(!called("unlock")); /* never locked */
}
END_TEST

/* A lock that simply came too late (another holder) names no worker. */
START_TEST(test_lock_timeout_no_stuck_worker)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.lock_r = -ETIMEDOUT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_LOCK);
        ck_assert_int_eq(r.stuck_worker, 0);
}
END_TEST

/* The worker holds its own open of the map from the flush step on: sole-opener counts it as ours,
 * and it closes last, after ours, writing back what others wrote meanwhile, before the remove. */
START_TEST(test_worker_closes_last)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_lt(call_index("flush"), call_index("release"));
        ck_assert_int_eq(call_index("worker write-back"), call_index("release") + 1);
        ck_assert_int_lt(call_index("worker write-back"), call_index("remove mpatha"));
        ck_assert_int_eq(r.stuck_worker, 0);
}
END_TEST

/* A third open besides ours and the worker's: still busy at sole-opener. */
START_TEST(test_sole_opener_counts_worker_once)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.open_seq[0] = 2; /* ours and someone else's (the worker's comes on top) */
        F.n_open_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_SOLE_OPENER);
        ck_assert(!called("worker write-back")); /* a plain close: no write-back of others' data */
        ck_assert(!called("remove mpatha"));
        assert_restored();
}
END_TEST

/* The map's last close (in the worker) writes back what a transient opener dirtied after the flush
 * step, and stalls past the deadline: timeout at remove, the worker named, the map kept as found. */
START_TEST(test_last_close_stalls)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.release_r = -ETIMEDOUT;
        F.release_stuck = 4444;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_REMOVE);
        ck_assert_int_eq(r.stuck_worker, 4444);
        ck_assert_ptr_nonnull(strstr(r.reason, "pid 4444"));
        ck_assert(!called("remove mpatha"));
        assert_restored();
        ck_assert(called("create mpatha-part1"));
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
}
END_TEST

/* ... fails for lack of any path (queueing is off): removed, written data reported lost. With a
 * usable path the map is kept. */
START_TEST(test_last_close_eio)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.release_r = -EIO;
        F.active_paths_r = 0;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(r.data_lost);
        ck_assert(called("remove mpatha"));

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.release_r = -EIO;
        F.active_paths_r = 2;
        flush("mpatha", false, false, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r2.step, MPF_STEP_REMOVE);
        ck_assert(!r2.data_lost);
        ck_assert(!called("remove mpatha"));
        assert_restored();
}
END_TEST

/* A worker stuck in the kernel at the deadline is named in the result. */
START_TEST(test_flush_timeout_stuck_worker)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = -ETIMEDOUT;
        F.stuck_worker = 4242;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_FLUSH);
        ck_assert_int_eq(r.stuck_worker, 4242);
        ck_assert_ptr_nonnull(strstr(r.reason, "pid 4242"));
        assert_restored();
}
END_TEST

/* Queueing is read again once the lock is ours: another flusher had it off when we resolved the
 * map, and put it back on before letting go of the lock. */
START_TEST(test_lock_rereads_queueing)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2;

        setup_standard();
        F.maps[0].params = NO_QUEUEING_PARAMS;
        F.lock_sets_params = QUEUEING_PARAMS;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(r.queueing_before, 1);
        ck_assert(called("message mpatha fail_if_no_path"));

        /* and the other way round: queueing off by now, nothing to switch off or restore */
        setup_standard();
        F.lock_sets_params = NO_QUEUEING_PARAMS;
        F.flush_r = -EIO;
        flush("mpatha", false, false, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r2.queueing_before, 0);
        ck_assert(!called("message mpatha fail_if_no_path"));
        ck_assert(!called("message mpatha queue_if_no_path"));
}
END_TEST

/* A step after "partitions" fails: the partition maps we removed are made again, as they were. */
START_TEST(test_partitions_recreated_on_failure)
{
        static const char *const cases[] = {"eio", "busy", "timeout"};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                F.maps[0].info.open_count = 1;
                if (strcmp(cases[i], "eio") == 0)
                        F.flush_r = -EIO;
                else if (strcmp(cases[i], "busy") == 0) {
                        F.open_seq[0] = 2; /* someone opened it after in-use */
                        F.n_open_seq = 1;
                } else
                        F.flush_r = -ETIMEDOUT;
                flush("mpatha", false, false, &r);
                ck_assert_msg(r.result != MPF_RESULT_REMOVED, "case %s", cases[i]);
                ck_assert_msg(called("remove mpatha-part1"), "case %s", cases[i]);
                ck_assert_msg(called("create mpatha-part1"), "case %s", cases[i]);
                ck_assert_msg(find_name("mpatha-part1"), "case %s: the partition map is back", cases[i]);
                ck_assert_msg(call_index("create mpatha-part1") < call_index("unlock"),
                              "case %s: made again under the map lock", cases[i]);
                ck_assert_ptr_nonnull(strstr(r.reason, "1 partition map(s) were re-created"));
                ck_assert(!r.partitions_lost);
                ck_assert_int_ne(mpf_map_result_exit_code(&r), MPF_EXIT_RESTORE_FAILED);
                assert_restored();
        }
}
END_TEST

/* ... and if that fails, the exit status says the map could not be put back as found. */
START_TEST(test_partitions_recreate_fails_exit_7)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(freep) char *line = NULL;

        setup_standard();
        F.flush_r = -EIO;
        F.create_r = -ENOMEM;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert(r.partitions_lost);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_RESTORE_FAILED);
        line = mpf_map_result_line(&r);
        ck_assert_ptr_nonnull(strstr(line, "PARTITION MAPS COULD NOT BE RE-CREATED"));
}
END_TEST

/* Removed, deferred, or a partition table we cannot read: nothing is made again. */
START_TEST(test_partitions_not_recreated)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result a, b, c;

        setup_standard();
        flush("mpatha", false, false, &a);
        ck_assert_int_eq(a.result, MPF_RESULT_REMOVED);
        ck_assert(!called("create mpatha-part1"));

        setup_standard();
        F.open_seq[0] = 2; /* a lasting opener: --deferred defers */
        F.n_open_seq = 1;
        F.deferred_stays = true;
        flush("mpatha", true, false, &b);
        ck_assert_int_eq(b.result, MPF_RESULT_DEFERRED);
        ck_assert(!called("create mpatha-part1"));

        setup_standard();
        F.save_r = -EIO;
        flush("mpatha", false, false, &c);
        ck_assert_int_eq(c.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(c.step, MPF_STEP_PARTITIONS);
        ck_assert(!called("remove mpatha-part1"));
        ck_assert(!called("create mpatha-part1"));
        assert_restored();
}
END_TEST

START_TEST(test_flush_cache_flush_failed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = 1; /* written back, cache flush failed (pathless map) */
        F.active_paths_r = 0;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(r.step, MPF_STEP_DONE);
        ck_assert_ptr_nonnull(strstr(r.reason, "cache flush"));
        ck_assert(called("active-paths mpatha"));
        ck_assert(!called("message mpatha queue_if_no_path"));
}
END_TEST

/* With an active path, a failed cache flush means the storage did not make the data stable:
 * the map stays, queueing is restored, and the reason says so. */
START_TEST(test_flush_cache_flush_failed_with_paths)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = 1;
        F.active_paths_r = 2;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_FLUSH);
        ck_assert_ptr_nonnull(strstr(r.reason, "2 active path(s)"));
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_FAILED);
        ck_assert(!called("remove mpatha"));
        ck_assert(find_name("mpatha"));
        assert_restored();
}
END_TEST

/* Path states that cannot be read count as "maybe active": the map stays. */
START_TEST(test_flush_cache_flush_failed_status_unreadable)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = 1;
        F.active_paths_r = -EBADMSG;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_FLUSH);
        ck_assert_ptr_nonnull(strstr(r.reason, "cannot be read"));
        ck_assert(!called("remove mpatha"));
        assert_restored();
}
END_TEST

START_TEST(test_flush_timeout)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.flush_r = -ETIMEDOUT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_FLUSH);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
        assert_restored(); /* even past the deadline */
        ck_assert(F.maps[0].info.exists);
}
END_TEST

START_TEST(test_restore_fails_exit_7)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2;

        setup_standard();
        F.flush_r = -EIO;
        F.message_restore_r = -EIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert(r.restore_failed);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_RESTORE_FAILED);
        ck_assert_int_eq(r.queueing_after, 0);

        setup_standard();
        F.claim_r = -EBUSY;
        F.mpathd_restore_r = -ETIMEDOUT;
        flush("mpatha", false, false, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(mpf_map_result_exit_code(&r2), MPF_EXIT_RESTORE_FAILED);
}
END_TEST

START_TEST(test_sole_opener_transient)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.open_seq[0] = 2; /* blkid */
        F.open_seq[1] = 2;
        F.open_seq[2] = 2;
        F.open_seq[3] = 1;
        F.n_open_seq = 4;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        /* backoff 5 + 10 + 20 ms */
        ck_assert_uint_eq(F.clock, START + 35 * USEC_PER_MSEC);
}
END_TEST

START_TEST(test_sole_opener_busy_at_deadline)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.open_seq[0] = 2;
        F.n_open_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_SOLE_OPENER);
        ck_assert_uint_eq(F.clock, START + TIMEOUT); /* waited exactly up to the deadline */
        ck_assert(!called("remove mpatha"));
        ck_assert(!F.claimed);
        assert_restored();
        ck_assert_int_eq(call_index("release") < call_index("message mpatha queue_if_no_path"), 1);
}
END_TEST

START_TEST(test_remove_ebusy_retry)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.remove_seq[0] = -EBUSY;
        F.remove_seq[1] = -EBUSY;
        F.remove_seq[2] = 0;
        F.n_remove_seq = 3;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(F.remove_pos, 3);
        ck_assert_uint_eq(F.clock, START + 30 * USEC_PER_MSEC); /* 10 + 20 ms */
}
END_TEST

START_TEST(test_remove_ebusy_forever)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.remove_seq[0] = -EBUSY;
        F.n_remove_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_REMOVE);
        ck_assert_uint_eq(F.clock, START + TIMEOUT);
        assert_restored();
}
END_TEST

/* An open of the map that one of our own processes still holds at the remove is a leak of ours:
 * the reason says so, not "opened again", and names the process, its role and the fd. */
START_TEST(test_remove_ebusy_own_opener)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.remove_seq[0] = -EBUSY;
        F.n_remove_seq = 1;
        F.own_opener_after_remove = 77;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(r.step, MPF_STEP_REMOVE);
        ck_assert_str_eq(r.reason,
                         "held open by a process of this run, not by a user: mpatha opened by our own "
                         "process pid 77 (mpath-flush-w: a pool worker, fd 7 -> /dev/dm-0); its 1 partition "
                         "map(s) were re-created");
        assert_restored();
}
END_TEST

START_TEST(test_remove_error)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.remove_seq[0] = -EPERM;
        F.n_remove_seq = 1;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_REMOVE);
        assert_restored();
}
END_TEST

START_TEST(test_still_exists_after_remove)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.remove_keeps_map = true;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_UDEV_WAIT);
}
END_TEST

START_TEST(test_udev_wait_timeout_still_removed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.udev_wait_r = -ETIMEDOUT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_ptr_nonnull(strstr(r.reason, "udev"));
        ck_assert(!called("message mpatha queue_if_no_path"));
}
END_TEST

START_TEST(test_deferred_in_use)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.mounted = true;
        F.deferred_stays = true;
        flush("mpatha", true, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_DEFERRED);
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_OK);
        ck_assert(called("remove deferred mpatha-part1"));
        ck_assert(called("remove deferred mpatha"));
        ck_assert(!called("message mpatha fail_if_no_path"));
        ck_assert(!called("claim mpatha"));
        ck_assert_int_eq(r.queueing_after, 1);
}
END_TEST

START_TEST(test_deferred_sole_opener)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.open_seq[0] = 2;
        F.n_open_seq = 1;
        F.deferred_stays = true;
        flush("mpatha", true, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_DEFERRED);
        ck_assert_uint_eq(F.clock, START + SOLE_OPENER_DEFERRED_WAIT_USEC); /* not the whole deadline */
        /* the deferred remove is queued while we still hold the fd */
        ck_assert_int_lt(call_index("remove deferred mpatha"), call_index("release"));
        assert_restored();
        ck_assert_int_eq(r.queueing_after, 1);
}
END_TEST

/* The same with multipathd answering 1 s after the command: its answer is read before
 * sole-opener (once), then the deferred remove is queued and queueing put back after it. */
START_TEST(test_deferred_sole_opener_answer_late)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        size_t replies = 0;

        setup_standard();
        F.open_seq[0] = 2;
        F.n_open_seq = 1;
        F.deferred_stays = true;
        F.mpathd_late = true;
        F.mpathd_late_r = 0;
        F.mpathd_takes = USEC_PER_SEC;
        flush("mpatha", true, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_DEFERRED);
        ck_assert_uint_eq(F.clock, START + USEC_PER_SEC + SOLE_OPENER_DEFERRED_WAIT_USEC);
        for (size_t i = 0; i < F.n_calls; i++)
                replies += strcmp(F.calls[i], "mpathd-reply") == 0;
        ck_assert_uint_eq(replies, 1);
        ck_assert_int_lt(call_index("mpathd-reply"), call_index("remove deferred mpatha"));
        assert_restored();
        ck_assert_int_eq(r.queueing_after, 1);
}
END_TEST

START_TEST(test_deferred_gone_at_once)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.open_seq[0] = 2;
        F.n_open_seq = 1;
        flush("mpatha", true, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
}
END_TEST

START_TEST(test_dry_run)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r, r2;

        setup_standard();
        flush("mpatha", false, true, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(!called("lock mpath-" WWID));
        assert_untouched();
        ck_assert_uint_ge(strv_length(r.plan), 8);
        ck_assert(strv_contains(r.plan, "partitions: remove mpatha-part1"));
        ck_assert(F.maps[0].info.exists);

        setup_standard();
        F.mounted = true;
        flush("mpatha", false, true, &r2);
        ck_assert_int_eq(r2.result, MPF_RESULT_BUSY);
        ck_assert_int_eq(mpf_map_result_exit_code(&r2), MPF_EXIT_BUSY);
        assert_untouched();
}
END_TEST

START_TEST(test_run_environment)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", NULL};

        setup_standard();
        F.check_r = -EACCES;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 1, &run), 0);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_ENVIRONMENT);
        ck_assert_ptr_nonnull(strstr(run.error, "root"));
        ck_assert_uint_eq(run.n_maps, 0);
        ck_assert_uint_eq(F.n_calls, 0);
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_run_all_independent)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 1, "multipath", NO_QUEUEING_PARAMS); /* its mount's open */
        add_map("vg-lv", "LVM-abc", 8, 0, "linear", "");
        F.mounted = true; /* both maps look mounted to the fake scan */
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_str_eq(run.maps[0].map, "mpatha");
        ck_assert_str_eq(run.maps[1].map, "mpathb");
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_BUSY);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_BUSY);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_BUSY);
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_run_precedence)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"absent", (char *)"vg-lv", (char *)"mpatha", NULL};

        setup_standard();
        add_map("vg-lv", "LVM-abc", 8, 0, "linear", "");
        F.flush_r = -EIO;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 3, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REFUSED);
        ck_assert_int_eq(run.maps[2].result, MPF_RESULT_FAILED);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_FAILED);
        mpf_run_done(&run);
}
END_TEST

/* The pool (in this process: no executor in the fake ops): the same results, in the order given,
 * the same exit code. */
START_TEST(test_pool_precedence)
{
        struct mpf_flush_params p = {.jobs = 4, .deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"absent", (char *)"vg-lv", (char *)"mpatha", NULL};

        setup_standard();
        add_map("vg-lv", "LVM-abc", 8, 0, "linear", "");
        F.flush_r = -EIO;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 3, &run), 0);
        ck_assert_uint_eq(run.n_maps, 3);
        ck_assert_str_eq(run.maps[0].map, "absent");
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REFUSED);
        ck_assert_int_eq(run.maps[2].result, MPF_RESULT_FAILED);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_FAILED);
        mpf_run_done(&run);
}
END_TEST

/* The pool only tries map locks, keeps the removed maps' locks until its one udev wait, and
 * never waits for a map lock while holding one. */
START_TEST(test_pool_one_udev_wait)
{
        struct mpf_flush_params p = {.jobs = 4, .deadline = START + TIMEOUT};
        struct mpf_run run;
        static const char *const expected_tail[] = {
                "remove mpathb", "udev_wait", "unlock", "unlock", NULL,
        };
        size_t k = 0;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_OK);
        ck_assert(called("trylock mpath-" WWID));
        ck_assert(called("trylock mpath-3600b"));
        ck_assert(!called("lock mpath-3600b"));
        ck_assert_uint_eq(F.waited_holding, 0);
        ck_assert_uint_ge(F.n_calls, 4);
        for (size_t i = F.n_calls - 4; i < F.n_calls; i++, k++)
                ck_assert_str_eq(F.calls[i], expected_tail[k]);
        ck_assert_uint_eq(F.locks_held, 0);
        mpf_run_done(&run);
}
END_TEST

static int f_cookie_new_fails(void *u, uint32_t *ret)
{
        (void)u;
        (void)ret;
        record("cookie_new");
        return -ENOSPC; /* no semaphore left */
}

/* No shared cookie could be made: each map waits for udev itself before its locks go; none is
 * released before udev finished, and no cookie is left behind. */
START_TEST(test_pool_cookie_new_fails)
{
        struct mpf_ops ops = fake_ops;
        struct mpf_flush_params p = {.jobs = 4, .deadline = START + TIMEOUT};
        struct mpf_run run;

        ops.cookie_new = f_cookie_new_fails;
        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        ck_assert_int_eq(mpf_run_all(&ops, &p, true, NULL, 0, &run), 0);
        ck_assert(called("cookie_new"));
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        /* each map waits for udev right after its remove, not once at the end */
        ck_assert_int_ge(call_index("remove mpatha"), 0);
        ck_assert_str_eq(F.calls[call_index("remove mpatha") + 1], "udev_wait");
        ck_assert_int_ge(call_index("remove mpathb"), 0);
        ck_assert_str_eq(F.calls[call_index("remove mpathb") + 1], "udev_wait");
        ck_assert_int_lt(call_index("remove mpatha"), call_index("trylock mpath-3600b"));
        ck_assert_uint_eq(F.locks_held, 0);
        ck_assert(!run.udev_late);
        mpf_run_done(&run);
}
END_TEST

/* A map whose lock another flusher holds: set aside, flushed after the shared udev wait, once
 * every lock is released, waiting for its lock (the lock rule of doc/CONTRACT.md). */
START_TEST(test_pool_contended_after_wait)
{
        struct mpf_flush_params p = {.jobs = 4, .deadline = START + TIMEOUT};
        struct mpf_run run;
        ssize_t shared_wait = -1, blocking = -1;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.lock_held_by_other = "mpath-3600b";
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(run.maps[1].map, "mpathb");
        ck_assert_uint_eq(run.maps[1].attempts, 1);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_OK);
        for (size_t i = 0; i < F.n_calls; i++) {
                if (strcmp(F.calls[i], "lock mpath-3600b") == 0)
                        blocking = (ssize_t)i;
                if (strcmp(F.calls[i], "udev_wait") == 0 && blocking < 0)
                        shared_wait = (ssize_t)i;
        }
        ck_assert_int_ge(shared_wait, 0);
        ck_assert_int_gt(blocking, shared_wait);
        ck_assert_uint_eq(F.waited_holding, 0);
        ck_assert_uint_eq(F.locks_held, 0);
        mpf_run_done(&run);
}
END_TEST

/* A map set aside because another flusher held its lock is renamed meanwhile, and its name given to
 * another map (two aliases swapped): it is flushed again by its UUID, reported under its first
 * name; the map that took that name is left alone. */
START_TEST(test_pool_contended_renamed)
{
        struct mpf_flush_params p = {.jobs = 4, .deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.lock_held_by_other = "mpath-3600b";
        F.rename_at = "unlock"; /* after the shared udev wait, before the set-aside map's turn */
        F.rename_index = 2;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(F.n_maps, 4);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(run.maps[1].map, "mpathb");
        ck_assert_msg(!F.maps[2].info.exists, "the set-aside map (mpathz by now) is still there");
        ck_assert_msg(F.maps[3].info.exists, "the map that took the name mpathb was removed");
        ck_assert_uint_eq(F.locks_held, 0);
        mpf_run_done(&run);
}
END_TEST

/* The real executor: worker processes (two for four maps), each map's result back in the order
 * given, a worker killed mid-flush reported failed; the flushes ran in the workers, not here. */
START_TEST(test_pool_worker_processes)
{
        struct mpf_flush_params p = {.jobs = 2, .deadline = START + TIMEOUT};
        struct mpf_ops ops = fake_ops;
        struct mpf_workers *w = NULL;
        struct mpf_pool_exec x;
        struct mpf_run run;
        char *maps[] = {(char *)"absent", (char *)"vg-lv", (char *)"mpatha", (char *)"mpathb", NULL};

        setup_standard();
        add_map("vg-lv", "LVM-abc", 8, 0, "linear", "");
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.killed_at_claim = "mpathb";
        ck_assert_int_eq(mpf_workers_new(NULL, &ops, &w), 0);
        mpf_workers_exec(w, &x);
        ops.pool_exec = &x;
        ck_assert_int_eq(mpf_run_all(&ops, &p, false, maps, 4, &run), 0);
        ck_assert_uint_eq(run.n_maps, 4);
        ck_assert_str_eq(run.maps[0].map, "absent");
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REFUSED);
        ck_assert_int_eq(run.maps[2].result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(run.maps[2].uuid, "mpath-" WWID);
        ck_assert(strv_contains(run.maps[2].partitions, "mpatha-part1"));
        ck_assert_str_eq(run.maps[3].map, "mpathb");
        ck_assert_int_eq(run.maps[3].result, MPF_RESULT_FAILED);
        ck_assert_ptr_nonnull(strstr(run.maps[3].reason, "killed by signal 9"));
        ck_assert_int_eq(run.exit_status, MPF_EXIT_FAILED);
        /* nothing of the flushes happened in this process */
        ck_assert(!called("claim mpatha"));
        ck_assert(F.maps[0].info.exists);
        mpf_run_done(&run);
        mpf_workers_free(w);
}
END_TEST

/* A worker that never answers: once the deadline and the put-back grace are over, it is killed
 * and its map reported timeout; the run does not wait for it for good. */
START_TEST(test_pool_worker_hangs)
{
        struct mpf_flush_params p = {.jobs = 2, .deadline = START + 100 * USEC_PER_MSEC};
        struct mpf_ops ops = fake_ops;
        struct mpf_workers *w = NULL;
        struct mpf_pool_exec x;
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", (char *)"mpathb", NULL};
        usec_t t0 = now_monotonic(), took;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.hangs_at_claim = "mpathb";
        F.deadline = p.deadline;
        ck_assert_int_eq(mpf_workers_new(NULL, &ops, &w), 0);
        mpf_workers_exec(w, &x);
        ops.pool_exec = &x;
        ck_assert_int_eq(mpf_run_all(&ops, &p, false, maps, 2, &run), 0);
        took = now_monotonic() - t0;
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_TIMEOUT);
        ck_assert_ptr_nonnull(strstr(run.maps[1].reason, "did not finish by the deadline"));
        ck_assert_int_eq(run.maps[1].stuck_worker, 0); /* it died when killed */
        ck_assert_uint_ge(took, MPF_UNDO_GRACE_USEC + 3 * USEC_PER_SEC);
        ck_assert_uint_lt(took, MPF_UNDO_GRACE_USEC + 8 * USEC_PER_SEC);
        mpf_run_done(&run);
        mpf_workers_free(w);
}
END_TEST

/* A worker left behind (here: a child of a hung worker that outlives it, as a worker in
 * uninterruptible sleep would) does not hold the caller's stderr: a caller that reads our output
 * to its end has it as soon as the run is over. What the workers log reaches it all the same. */
START_TEST(test_pool_worker_log_relayed)
{
        struct mpf_flush_params p = {.jobs = 2, .deadline = START + 100 * USEC_PER_MSEC};
        struct mpf_ops ops = fake_ops;
        struct mpf_workers *w = NULL;
        struct mpf_pool_exec x;
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", (char *)"mpathb", NULL};
        char buf[65536];
        size_t got = 0;
        int pipefd[2], saved, flags;
        usec_t until;
        bool eof = false;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.hangs_at_claim = "mpathb";
        F.hang_child = mmap(NULL, sizeof(pid_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(F.hang_child, MAP_FAILED);
        *F.hang_child = 0;
        F.deadline = p.deadline;
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(pipefd[1], STDERR_FILENO), 0);
        close(pipefd[1]); /* the caller's stderr is our fd 2, as a program's is */
        log_set_journal(false);
        log_set_max_level(LOG_INFO);
        ck_assert_int_eq(mpf_workers_new(NULL, &ops, &w), 0);
        mpf_workers_exec(w, &x);
        ops.pool_exec = &x;
        ck_assert_int_eq(mpf_run_all(&ops, &p, false, maps, 2, &run), 0);
        mpf_workers_free(w);
        /* the caller's end: our stderr is all that is left of it */
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_TIMEOUT);
        flags = fcntl(pipefd[0], F_GETFL);
        ck_assert_int_eq(fcntl(pipefd[0], F_SETFL, flags | O_NONBLOCK), 0);
        /* the hung worker's child keeps its fds for a minute: end of file at once all the same */
        until = now_monotonic() + 3 * USEC_PER_SEC;
        while (!eof && now_monotonic() < until) {
                ssize_t n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got);

                if (n == 0)
                        eof = true;
                else if (n > 0)
                        got += (size_t)n;
                else
                        (void)usleep(10 * 1000);
        }
        buf[got] = 0;
        close(pipefd[0]);
        ck_assert_int_gt(*F.hang_child, 0);
        (void)kill(*F.hang_child, SIGKILL);
        ck_assert_msg(eof, "the caller's stderr is still held after the run");
        ck_assert_ptr_nonnull(strstr(buf, "mpathb: fake: hanging at claim"));
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_run_all_one_udev_wait)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;
        static const char *const expected_tail[] = {
                "remove mpathb", "udev_wait", "unlock", "unlock", NULL,
        };
        size_t waits = 0, k = 0;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_OK);
        /* one udev wait for the partition map of mpatha, one at the end for both maps */
        for (size_t i = 0; i < F.n_calls; i++)
                waits += strcmp(F.calls[i], "udev_wait") == 0;
        ck_assert_uint_eq(waits, 2);
        /* the locks are held until udev is done with both maps */
        ck_assert_uint_ge(F.n_calls, 4);
        for (size_t i = F.n_calls - 4; i < F.n_calls; i++, k++)
                ck_assert_str_eq(F.calls[i], expected_tail[k]);
        ck_assert_ptr_null(run.maps[0].held_lock);
        mpf_run_done(&run);
}
END_TEST

/* --all, and every remove on the shared cookie fails: the cookie was made all the same, and is
 * waited for (released) at the end so that its semaphore does not leak. */
START_TEST(test_run_all_failed_removes_release_cookie)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;
        ssize_t last_remove = -1;

        setup();
        add_map("mpatha", "mpath-3600a", 0, 0, "multipath", NO_QUEUEING_PARAMS);
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.fail_op = "remove";
        F.fail_r = -EBUSY;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_BUSY);
        /* the first map's retries took the whole deadline: the second is not touched */
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_TIMEOUT);
        for (size_t i = 0; i < F.n_calls; i++)
                if (startswith(F.calls[i], "remove"))
                        last_remove = (ssize_t)i;
        ck_assert_int_ge(last_remove, 0);
        ck_assert_uint_gt(F.n_calls, (size_t)last_remove + 1);
        ck_assert_str_eq(F.calls[F.n_calls - 1], "udev_wait");
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_run_all_udev_late)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.udev_wait_r = -ETIMEDOUT;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_ptr_nonnull(strstr(run.maps[1].reason, "udev"));
        ck_assert(called("unlock"));
        mpf_run_done(&run);
}
END_TEST

/* --wait-busy through the real flush: a map unmounted during the third wait is removed; the
 * waits happen with no lock held (f_wait_change checks); the free map is not flushed again. */
START_TEST(test_run_wait_busy_unmounted)
{
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", (char *)"absent", NULL};

        setup_standard();
        F.mounted = true;
        F.unmount_at_wait = 3;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 2, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_eq(run.maps[0].attempts, 4);
        ck_assert_uint_gt(run.maps[0].waited_ms, 0);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_ABSENT);
        ck_assert_uint_eq(run.maps[1].attempts, 1);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_OK);
        ck_assert_uint_eq(F.waits, 3);
        mpf_run_done(&run);
}
END_TEST

/* --wait-busy: a lasting opener at sole-opener gets WAIT_BUSY_LOCKED_USEC with the map locked, then
 * the map is unlocked, queueing restored, and the unlocked wait takes over until the deadline. */
START_TEST(test_run_wait_busy_sole_opener_unlocked)
{
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", NULL};
        size_t locks = 0;

        setup_standard();
        F.open_seq[0] = 2; /* someone else keeps it open */
        F.n_open_seq = 1;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 1, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_BUSY);
        ck_assert_int_eq(run.maps[0].step, MPF_STEP_SOLE_OPENER);
        ck_assert_int_eq(run.maps[0].queueing_after, 1);
        ck_assert_uint_gt(F.waits, 0);
        for (size_t i = 0; i < F.n_calls; i++)
                locks += startswith(F.calls[i], "lock ") != NULL;
        ck_assert_uint_eq(locks, run.maps[0].attempts);
        /* each attempt held the lock at most WAIT_BUSY_LOCKED_USEC at sole-opener: with a 30 s
         * deadline, that leaves room for many */
        ck_assert_uint_ge(run.maps[0].attempts, 5);
        ck_assert_uint_le(F.clock, START + TIMEOUT);
        mpf_run_done(&run);
}
END_TEST

/* --wait-busy: the remove refused with EBUSY is retried at most WAIT_BUSY_LOCKED_USEC with the map
 * locked; then busy at remove, unlocked, queueing and partition maps restored, and a later attempt
 * (the opener gone) removes it. */
START_TEST(test_run_wait_busy_remove_ebusy)
{
        struct mpf_flush_params p = {.wait_busy = true, .deadline = START + TIMEOUT};
        struct mpf_run run;
        char *maps[] = {(char *)"mpatha", NULL};
        size_t n_remove = 0, waits_at = 0;

        setup_standard();
        for (size_t i = 0; i < SEQ_MAX - 1; i++)
                F.remove_seq[i] = -EBUSY; /* about 1 s of EBUSY at 10..200 ms backoff, then more */
        F.remove_seq[SEQ_MAX - 1] = 0;
        F.n_remove_seq = SEQ_MAX;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, false, maps, 1, &run), 0);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_uint_ge(run.maps[0].attempts, 2);
        /* the first attempt gave up on EBUSY well before the deadline, and restored the map */
        for (size_t i = 0; i < F.n_calls && !waits_at; i++) {
                n_remove += strcmp(F.calls[i], "remove mpatha") == 0;
                if (strcmp(F.calls[i], "wait_change") == 0)
                        waits_at = i;
        }
        ck_assert_uint_gt(waits_at, 0);
        ck_assert_uint_lt(n_remove, SEQ_MAX - 1);
        ck_assert(called("message mpatha queue_if_no_path"));
        ck_assert(called("create mpatha-part1"));
        mpf_run_done(&run);
}
END_TEST

/* No step starts after the deadline: the udev wait of the partitions step takes it all, so the
 * map is never claimed; the partition map is made again and queueing restored. */
START_TEST(test_no_claim_after_deadline)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.udev_wait_takes = TIMEOUT;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(r.step, MPF_STEP_CLAIM);
        ck_assert(!called("claim mpatha"));
        ck_assert(!called("remove mpatha"));
        ck_assert(called("create mpatha-part1"));
        ck_assert(find_name("mpatha-part1"));
        assert_restored();
        ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_TIMEOUT);
}
END_TEST

/* --all: a map whose turn comes after the deadline is not touched at all. */
START_TEST(test_run_all_no_map_after_deadline)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", QUEUEING_PARAMS);
        F.maps[0].info.open_count = 1;
        F.udev_wait_takes = TIMEOUT; /* mpatha's partitions step takes the whole deadline */
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_TIMEOUT);
        ck_assert(find_name("mpatha-part1"));
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_TIMEOUT);
        ck_assert_int_eq(run.maps[1].step, MPF_STEP_RESOLVE);
        ck_assert(!called("lock mpath-3600b"));
        ck_assert(!called("message mpathb fail_if_no_path"));
        ck_assert(!called("mpathd disablequeueing map mpathb"));
        ck_assert_int_eq(run.exit_status, MPF_EXIT_TIMEOUT);
        mpf_run_done(&run);
}
END_TEST

/* ---- the undo record: what a guardian or the next flusher puts back ---- */

/* The helper flushes mpatha and is killed right before the call that starts with at; then the
 * test goes on as the guardian or the next flusher. */
static void killed_at(const char *at, struct mpf_map_result *r)
{
        F.die_at = at;
        flush("mpatha", false, false, r);
        ck_assert_msg(F.dead, "never reached %s", at);
        F.dead = false;
        F.die_at = NULL;
}

/* What the guardian does once the helper is gone: put mpatha back from its record, within its
 * grace (it has no run deadline). */
static int guardian_put_back(void)
{
        F.deadline = 0;
        return mpf_undo_leftover(&fake_ops, "mpath-" WWID, F.clock + MPF_UNDO_GRACE_USEC, NULL);
}

/* The helper dies before each call of a flush in turn (SIGKILL: nothing of its own restore runs).
 * What its record says then puts the map back: it is gone, or queueing is on in the kernel and in
 * multipathd and the partition map exists. */
START_TEST(test_killed_anywhere_undone)
{
        static const char *const points[] = {
                "record kernel",
                "mpathd disablequeueing",
                "message mpatha fail",
                "save",
                "record kernel multipathd partitions",
                "remove mpatha-part1",
                "udev_wait",
                "claim",
                "flush",
                "release",
                "remove mpatha",
                NULL,
        };

        for (size_t i = 0; points[i]; i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;
                int k;

                setup_standard();
                F.maps[0].info.open_count = 1;
                F.die_at = points[i];
                flush("mpatha", false, false, &r);
                ck_assert_msg(F.dead, "never reached %s", points[i]);
                F.dead = false;
                F.die_at = NULL;
                F.deadline = 0; /* the guardian has no run deadline, only its grace */
                k = mpf_undo_leftover(&fake_ops, "mpath-" WWID, START + 100 * USEC_PER_SEC, NULL);
                ck_assert_msg(k >= 0, "%s: %d", points[i], k);
                if (!find_uuid("mpath-" WWID))
                        continue; /* gone: nothing to put back */
                ck_assert_msg(F.kernel_queueing, "died at %s: kernel queueing left off", points[i]);
                ck_assert_msg(F.mpathd_queueing, "died at %s: multipathd queueing left off", points[i]);
                ck_assert_msg(find_name("mpatha-part1"), "died at %s: partition map lost", points[i]);
                ck_assert_msg(!F.undo_text, "died at %s: the record is still there", points[i]);
        }
}
END_TEST

/* The next flusher finds a record left behind, puts the map back, and reads its queueing again. */
START_TEST(test_next_flusher_undoes_leftover)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.die_at = "remove mpatha-part1";
        flush("mpatha", false, false, &r);
        F.dead = false;
        F.die_at = NULL;
        F.maps[1].info.exists = false;         /* it died right after this remove */
        F.maps[0].params = NO_QUEUEING_PARAMS; /* as its table reads now */
        ck_assert_ptr_nonnull(F.undo_text);
        mpf_map_result_done(&r);

        F.flush_r = -EIO; /* keep the map: look at what the next flusher leaves */
        flush("mpatha", false, false, &r);
        ck_assert(called("create mpatha-part1"));
        ck_assert_uint_lt(call_index("create mpatha-part1"), call_index("claim mpatha"));
        ck_assert(F.kernel_queueing);
        ck_assert(F.mpathd_queueing);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* The helper dies with multipathd's answer to disablequeueing pending: that connection died with
 * it, and multipathd (busy) may still carry the command out. The guardian cannot read the answer;
 * its restorequeueing times out. It puts queueing back in the kernel, says so, and the record keeps
 * both queueing marks (carried out, the command switches the kernel's queueing off too), so that
 * the next flusher puts back both, whatever multipathd does by then. */
START_TEST(test_killed_answer_pending_restore_times_out)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.mpathd_late = true;
        F.mpathd_late_r = 0;
        F.mpathd_takes = 30 * USEC_PER_SEC;
        killed_at("flush", &r);
        ck_assert(!F.mpathd_reply_pending); /* its connection went with it */
        F.mpathd_restore_r = -ETIMEDOUT;
        ck_assert_int_lt(guardian_put_back(), 0);
        ck_assert(called("mpathd restorequeueing map mpatha"));
        ck_assert(F.kernel_queueing); /* put back in the kernel all the same */
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert(u.mpathd_queueing_disabled);
        ck_assert(u.kernel_queueing_disabled);
        ck_assert(!u.mpathd_reply_pending);

        /* multipathd carries the dead helper's command out: queueing off in both */
        F.kernel_queueing = false;
        F.maps[0].params = NO_QUEUEING_PARAMS;
        F.mpathd_restore_r = 0;
        mpf_map_result_done(&r);
        F.flush_r = -EIO; /* keep the map: look at what the next flusher leaves */
        flush("mpatha", false, false, &r);
        ck_assert(F.kernel_queueing);
        ck_assert(F.mpathd_queueing);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* mpatha (queueing, one partition map) after a helper and its guardian died at the flush step:
 * queueing off in the kernel and in multipathd, the partition map removed, the record saying so. */
static void left_at_flush(void)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.table_follows_queueing = true;
        killed_at("flush", &r);
}

/* The next flusher finds both marks, and multipathd still does not take restorequeueing: the
 * kernel's queueing is on again all the same, and the flush must see it (its queueing step
 * switches it off before the flush), not the table it read before the put-back. */
START_TEST(test_next_flusher_partial_putback_rereads_table)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        ssize_t on, off, fl;
        size_t mark;

        left_at_flush();
        /* what the guardian of test_killed_answer_pending_restore_times_out leaves, and
         * multipathd's late command switched the kernel's queueing off again */
        F.kernel_queueing = false;
        F.maps[0].params = NO_QUEUEING_PARAMS;
        F.mpathd_queueing = false;
        F.mpathd_restore_r = -ETIMEDOUT;
        mark = F.n_calls;
        ck_assert_ptr_nonnull(F.undo_text);

        flush("mpatha", false, false, &r);
        on = call_index_from(mark, "message mpatha queue_if_no_path");
        off = call_index_from(mark, "message mpatha fail_if_no_path");
        fl = call_index_from(mark, "flush");
        ck_assert_int_ge(on, 0);
        ck_assert_int_gt(off, on);
        ck_assert_int_gt(fl, off);
        ck_assert_int_eq(r.queueing_before, 1);
}
END_TEST

/* The next flusher can put back neither mark of the record (multipathd still busy, the kernel
 * refusing the message: a suspended map answers EBUSY), then removes the partition map the record
 * had it make again, and its own flush fails. Its records carry the marks it could not put back,
 * so its put-back tries them again and what is still left stays written down: neither is lost
 * when it writes its own record. */
START_TEST(test_next_flusher_keeps_marks_it_could_not_put_back)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};
        ssize_t first;
        size_t mark;

        left_at_flush();
        F.mpathd_restore_r = -ETIMEDOUT;
        F.message_restore_r = -EBUSY;
        F.flush_r = -EIO;
        mark = F.n_calls;

        flush("mpatha", false, false, &r);
        ck_assert_int_ge(call_index_from(mark, "remove mpatha-part1"), 0);
        /* tried by the record's put-back, and again by this flusher's own */
        first = call_index_from(mark, "message mpatha queue_if_no_path");
        ck_assert_int_ge(first, 0);
        ck_assert_int_gt(call_index_from((size_t)first + 1, "message mpatha queue_if_no_path"), first);
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert(u.kernel_queueing_disabled);
        ck_assert(u.mpathd_queueing_disabled);
        ck_assert_uint_eq(u.n_saved, 0);
}
END_TEST

/* The record's put-back gets restorequeueing through, not queue_if_no_path (the kernel refuses it
 * once); the next flusher finds the map busy. Its own put-back switches the kernel's queueing on
 * (it was on before the flusher that died) and removes the record: nothing is left behind to put
 * back later, over what an administrator may have set since. */
START_TEST(test_next_flusher_puts_back_what_the_record_could_not)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup();
        add_map("mpatha", "mpath-" WWID, 0, 0, "multipath", QUEUEING_PARAMS);
        F.table_follows_queueing = true;
        killed_at("claim", &r);
        mpf_map_result_done(&r);
        ck_assert_ptr_nonnull(F.undo_text);
        F.kernel_refuses = 1;
        F.maps[0].info.open_count = 1;
        F.mounted = true;

        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_BUSY);
        ck_assert(F.kernel_queueing);
        ck_assert_int_eq(r.queueing_before, 0);
        ck_assert_int_eq(r.queueing_after, 1);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* What a guardian finds if the next flusher dies in turn, after it removed the partition map
 * again: the record it wrote says the marks it could not put back, and that partition map. */
START_TEST(test_next_flusher_record_says_what_is_left)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};

        left_at_flush();
        F.mpathd_restore_r = -ETIMEDOUT;
        F.message_restore_r = -EBUSY;
        killed_at("claim", &r);
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert(u.kernel_queueing_disabled);
        ck_assert(u.mpathd_queueing_disabled);
        ck_assert_uint_eq(u.n_saved, 1);
        ck_assert_str_eq(u.saved[0].name, "mpatha-part1");
}
END_TEST

/* The record keeps queueing off in multipathd (its restorequeueing does not get through), and the
 * next flusher's own disablequeueing does not reach multipathd (refused): restorequeueing is still
 * owed, whatever that flusher's command came to. Its put-back sends it again (it stops: the map
 * is claimed by someone else) and, unanswered, the record keeps saying it. */
START_TEST(test_next_flusher_owes_restorequeueing_left_behind)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};
        ssize_t first;
        size_t mark;

        setup();
        add_map("mpatha", "mpath-" WWID, 0, 0, "multipath", QUEUEING_PARAMS);
        F.table_follows_queueing = true;
        killed_at("claim", &r);
        mpf_map_result_done(&r);
        F.mpathd_restore_r = -ETIMEDOUT;
        F.mpathd_r = -ECONNREFUSED;
        F.claim_r = -EBUSY;
        mark = F.n_calls;

        flush("mpatha", false, false, &r);
        ck_assert_int_ne(r.result, MPF_RESULT_REMOVED);
        first = call_index_from(mark, "mpathd restorequeueing map mpatha");
        ck_assert_int_ge(first, 0);
        ck_assert_int_gt(call_index_from((size_t)first + 1, "mpathd restorequeueing map mpatha"), first);
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert(u.mpathd_queueing_disabled);
}
END_TEST

/* The map was renamed after its flusher died (multipathd changed its alias) and another map took
 * the old name: queueing is put back on the map the record names by UUID and dev_t, told by its
 * name now; the other map is left alone. */
START_TEST(test_undo_renamed_map)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        size_t mark;

        setup_standard();
        F.maps[0].info.open_count = 1;
        killed_at("flush", &r);
        snprintf(F.maps[0].info.name, sizeof(F.maps[0].info.name), "mpathz");
        add_map("mpatha", "mpath-3600140500000009", 9, 0, "multipath", NO_QUEUEING_PARAMS);
        mark = F.n_calls;
        ck_assert_int_ge(guardian_put_back(), 0);
        ck_assert_int_ge(call_index_from(mark, "mpathd restorequeueing map mpathz"), 0);
        ck_assert_int_ge(call_index_from(mark, "message mpathz queue_if_no_path"), 0);
        ck_assert_int_lt(call_index_from(mark, "message mpatha queue_if_no_path"), 0);
        ck_assert_int_lt(call_index_from(mark, "mpathd restorequeueing map mpatha"), 0);
}
END_TEST

/* multipathd renamed the map while it was being flushed (its alias changed) and gave the old name to
 * another map, unused, with queueing on: the kernel message and the remove reach the map by its UUID;
 * the other map keeps its queueing and is not removed. */
START_TEST(test_renamed_while_flushed)
{
        static const char *const when[] = {"message", "remove"};

        for (size_t i = 0; i < ELEMENTSOF(when); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                F.rename_at = when[i];
                flush("mpatha", false, false, &r);
                ck_assert_msg(r.result == MPF_RESULT_REMOVED, "renamed at %s: got %s at %s (%s)", when[i],
                              mpf_result_to_string(r.result), mpf_step_to_string(r.step), r.reason);
                ck_assert_uint_eq(F.n_maps, 3);
                ck_assert_msg(!F.maps[0].info.exists, "renamed at %s: the map is still there", when[i]);
                ck_assert_msg(F.maps[2].info.exists, "renamed at %s: the map that took its name was removed",
                              when[i]);
                ck_assert_str_eq(F.maps[0].last_message, "fail_if_no_path");
                ck_assert_msg(F.maps[2].last_message[0] == '\0', "renamed at %s: the other map got %s",
                              when[i], F.maps[2].last_message);
        }
}
END_TEST

/* "fail" to restorequeueing: multipathd knows no map of that name, so it keeps no queueing state
 * for it: nothing is left to put back there, and nothing kept for the kernel on its account. */
START_TEST(test_restorequeueing_fail_is_nothing_to_restore)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        killed_at("flush", &r);
        F.mpathd_restore_r = -EBADMSG;
        ck_assert_int_eq(guardian_put_back(), 1);
        ck_assert(F.kernel_queueing);
        ck_assert_ptr_null(F.undo_text);
}
END_TEST

/* The write-back worker of a killed helper still has the map open O_EXCL for a moment: making the
 * partition map again is retried until it is let go. */
START_TEST(test_undo_create_retried_while_claimed)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        killed_at("flush", &r);
        F.create_busy = 3;
        ck_assert_int_eq(guardian_put_back(), 1);
        ck_assert(find_name("mpatha-part1"));
        ck_assert_uint_eq(F.create_busy, 0);
        ck_assert_uint_gt(F.clock, START); /* it waited in between */
}
END_TEST

/* A record that cannot be written: nothing is changed. */
START_TEST(test_record_write_fails)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.record_r = -ENOSPC;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_QUEUEING);
        assert_untouched();
}
END_TEST

/* What could not be put back stays written down, for the next flusher. */
START_TEST(test_record_kept_when_restore_fails)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.flush_r = -EIO;
        F.create_r = -ENOMEM;
        flush("mpatha", false, false, &r);
        ck_assert(r.partitions_lost);
        ck_assert_ptr_nonnull(F.undo_text);
        ck_assert_int_eq(mpf_undo_parse(F.undo_text, &u), 0);
        ck_assert_uint_eq(u.n_saved, 1);
        ck_assert_str_eq(u.saved[0].name, "mpatha-part1");
        ck_assert(!u.kernel_queueing_disabled);
}
END_TEST

/* The guardian: the helper handed it the map lock, then died. */
START_TEST(test_guardian_serve)
{
        char path[] = "/tmp/mpf-guardian-XXXXXX";
        int sv[2], lock, other;
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        for (int forgot = 0; forgot <= 1; forgot++) {
                setup_standard();
                F.maps[0].info.open_count = 1;
                F.die_at = "claim";
                flush("mpatha", false, false, &r);
                mpf_map_result_done(&r);
                F.dead = false;
                F.die_at = NULL;
                ck_assert(!F.kernel_queueing);

                lock = mkstemp(path);
                ck_assert_int_ge(lock, 0);
                ck_assert_int_eq(flock(lock, LOCK_EX), 0);
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
                ck_assert_int_eq(mpf_guardian_watch_fd(sv[0], "mpath-" WWID, lock), 0);
                if (forgot)
                        ck_assert_int_eq(mpf_guardian_forget_fd(sv[0], "mpath-" WWID), 0);
                close(sv[0]); /* the helper is gone */
                close(lock);
                F.deadline = 0; /* the guardian has no run deadline, only its grace */
                ck_assert_int_eq(mpf_guardian_serve(sv[1], &fake_ops), forgot ? 0 : 1);
                close(sv[1]);
                /* it let go of the lock */
                other = open(path, O_RDONLY | O_CLOEXEC);
                ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
                close(other);
                unlink(path);
                ck_assert(F.kernel_queueing == !forgot);
                ck_assert(F.mpathd_queueing == !forgot);
                ck_assert((find_name("mpatha-part1") != NULL) == !forgot);
                strcpy(path, "/tmp/mpf-guardian-XXXXXX");
        }
}
END_TEST

/* Every remaining failure branch: which op fails, on which call, what the result must be. */
START_TEST(test_failure_branches)
{
        static const struct {
                const char *op;
                unsigned after;
                int r;
                bool deferred;
                MpfResult result;
                MpfStep step;
                bool restored;  /* queueing had been disabled and must be restored */
                int open_count; /* of the map, when not the standard 1 (its partition map) */
        } cases[] = {
                {"info_by_name", 0, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_RESOLVE, false},
                {"table", 0, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_RESOLVE, false},
                {"table", 0, -ENXIO, false, MPF_RESULT_ABSENT, MPF_STEP_RESOLVE, false},
                {"info_by_uuid", 0, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_LOCK, false},
                {"targets", 0, -ENXIO, false, MPF_RESULT_ABSENT, MPF_STEP_IN_USE, false},
                {"targets", 0, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_IN_USE, false},
                /* the scan runs only for a map open more often than its partition maps explain */
                {"scan", 0, -EACCES, false, MPF_RESULT_FAILED, MPF_STEP_IN_USE, false, 2},
                /* info_by_name: resolve only; after it, the map and its partition maps are looked
                 * up by UUID: 1st info_by_uuid: lock re-check; 2nd: in-use (is the partition map
                 * open?); 3rd: partition check; 4th: sole-opener; 5th: is it gone? */
                {"info_by_uuid", 1, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_IN_USE, false},
                {"info_by_uuid", 2, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_PARTITIONS, true},
                {"remove", 0, -EBUSY, false, MPF_RESULT_BUSY, MPF_STEP_PARTITIONS, true},
                {"remove", 0, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_PARTITIONS, true},
                {"info_by_uuid", 3, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_SOLE_OPENER, true},
                {"info_by_uuid", 4, -EIO, false, MPF_RESULT_FAILED, MPF_STEP_UDEV_WAIT, false},
                {"remove", 0, -EIO, true, MPF_RESULT_FAILED, MPF_STEP_REMOVE, false},
                {"remove", 1, -EIO, true, MPF_RESULT_FAILED, MPF_STEP_REMOVE, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                if (cases[i].open_count > 0)
                        F.maps[0].info.open_count = cases[i].open_count;
                if (cases[i].deferred)
                        F.mounted = true;
                F.fail_op = cases[i].op;
                F.fail_after = cases[i].after;
                F.fail_r = cases[i].r;
                flush("mpatha", cases[i].deferred, false, &r);
                ck_assert_msg(r.result == cases[i].result && r.step == cases[i].step,
                              "case %zu (%s #%u): got %s at %s (%s)", i, cases[i].op, cases[i].after,
                              mpf_result_to_string(r.result), mpf_step_to_string(r.step), r.reason);
                ck_assert_msg(called("message mpatha queue_if_no_path") == cases[i].restored, "case %zu", i);
                ck_assert_msg(!F.claimed, "case %zu left the map open", i);
                ck_assert_ptr_nonnull(r.reason);
                if (called("lock mpath-" WWID))
                        ck_assert_msg(called("unlock"), "case %zu kept the lock", i);
        }
}
END_TEST

/* multipath -f or dmsetup removes the map while we work on it: absent (or removed), never 1 or 7 */
START_TEST(test_removed_by_someone_else)
{
        static const char *const when[] = {"message", "claim"};

        for (size_t i = 0; i < ELEMENTSOF(when); i++) {
                _cleanup_(mpf_map_result_done) struct mpf_map_result r;

                setup_standard();
                F.vanish_at = when[i];
                flush("mpatha", false, false, &r);
                ck_assert_msg(r.result == MPF_RESULT_ABSENT, "%s: %s at %s: %s", when[i],
                              mpf_result_to_string(r.result), mpf_step_to_string(r.step), r.reason);
                ck_assert_int_eq(mpf_map_result_exit_code(&r), MPF_EXIT_OK);
                ck_assert(!r.restore_failed);
                ck_assert(called("unlock"));
        }
}
END_TEST

START_TEST(test_unparsable_features_disable_anyway)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].params = "garbage";
        F.claim_r = -EBUSY;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.queueing_before, -1);
        ck_assert(called("message mpatha fail_if_no_path"));
        ck_assert(called("message mpatha queue_if_no_path"));
}
END_TEST

/* The program level: options in, one JSON document on stdout, the exit status out. */
START_TEST(test_run_json_document)
{
        char path[] = "/tmp/mpf-test-run-XXXXXX";
        char *maps[] = {(char *)"mpatha", (char *)"nothere", NULL};
        struct mpf_options o = {.json = true, .timeout = TIMEOUT, .maps = maps, .n_maps = 2, .verbose = -1};
        struct json_object *doc, *arr, *v;
        int fd, saved, status;

        setup_standard();
        F.claim_r = -EBUSY;
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        fflush(stdout);
        saved = dup(STDOUT_FILENO);
        ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
        status = mpf_run_with_ops(&o, &fake_ops);
        fflush(stdout);
        ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
        close(saved);
        close(fd);
        ck_assert_int_eq(status, MPF_EXIT_BUSY);

        doc = json_object_from_file(path);
        unlink(path);
        ck_assert_ptr_nonnull(doc);
        ck_assert(json_object_object_get_ex(doc, "exit_status", &v));
        ck_assert_int_eq(json_object_get_int(v), MPF_EXIT_BUSY);
        ck_assert(json_object_object_get_ex(doc, "maps", &arr));
        ck_assert_uint_eq(json_object_array_length(arr), 2);
        ck_assert(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "result", &v));
        ck_assert_str_eq(json_object_get_string(v), "busy");
        ck_assert(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "step", &v));
        ck_assert_str_eq(json_object_get_string(v), "claim");
        ck_assert(json_object_object_get_ex(json_object_array_get_idx(arr, 1), "result", &v));
        ck_assert_str_eq(json_object_get_string(v), "absent");
        json_object_put(doc);
}
END_TEST

/* Two partition maps, the second cannot be removed after the first was: the first is made again,
 * the second was never touched, queueing is put back. */
START_TEST(test_second_partition_fails_first_remade)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        add_map("mpatha-part2", "part2-mpath-" WWID, 2, 0, "linear", "254:0 34816");
        F.maps[0].info.open_count = 2;
        F.fail_op = "remove";
        F.fail_after = 1; /* the second remove fails */
        F.fail_r = -EIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_PARTITIONS);
        ck_assert_ptr_nonnull(strstr(r.reason, "mpatha-part2"));
        ck_assert(called("remove mpatha-part1"));
        ck_assert(called("create mpatha-part1"));
        ck_assert(!called("create mpatha-part2"));
        ck_assert_ptr_nonnull(find_name("mpatha-part1"));
        ck_assert_ptr_nonnull(find_name("mpatha-part2"));
        ck_assert(!r.partitions_lost);
        ck_assert(!called("claim mpatha"));
        assert_restored();
}
END_TEST

/* A partition map removed by someone else between the in-use step and ours: skipped, not an error. */
START_TEST(test_partition_vanishes_partway)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.part_vanish_at = "message"; /* while queueing is being disabled */
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(!called("save mpatha-part1"));
        ck_assert(!called("remove mpatha-part1"));
        ck_assert(called("remove mpatha"));
}
END_TEST

/* The map is removed and made again (a new dev_t) by someone else while we fail: that map is not
 * ours to restore; we say so. */
START_TEST(test_recreated_with_new_devt_not_restored)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.recreate_at = "claim";
        F.claim_r = -EIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(r.step, MPF_STEP_CLAIM);
        ck_assert(called("message mpatha fail_if_no_path"));
        ck_assert(!called("message mpatha queue_if_no_path"));
        ck_assert(!called("mpathd restorequeueing map mpatha"));
        ck_assert(!called("create mpatha-part1"));
        ck_assert(!r.restore_failed);
}
END_TEST

START_TEST(test_dm_node_missing)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        flush("/dev/dm-7", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_ABSENT);
        ck_assert_int_eq(r.step, MPF_STEP_RESOLVE);
        ck_assert_ptr_nonnull(strstr(r.reason, "/dev/dm-7 does not exist"));
        ck_assert_uint_eq(F.n_calls, 0); /* no lock, nothing changed */
}
END_TEST

START_TEST(test_multi_target_table_refused)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.table_targets = 2;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REFUSED);
        ck_assert_ptr_nonnull(strstr(r.reason, "2 target(s)"));
        ck_assert_uint_eq(F.n_calls, 0);
}
END_TEST

/* A process opener is being watched to see if it lasts, and a re-scan fails: failed, nothing
 * touched. */
START_TEST(test_scan_fails_while_openers_settle)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.opener_seq[0] = 200;
        F.n_opener_seq = 1;
        F.fail_op = "scan";
        F.fail_after = 1;
        F.fail_r = -EIO;
        flush("mpatha", false, false, &r);
        ck_assert_int_eq(r.result, MPF_RESULT_FAILED);
        ck_assert_int_eq(r.step, MPF_STEP_IN_USE);
        ck_assert_ptr_nonnull(strstr(r.reason, "cannot find the map's users"));
        ck_assert_int_ge(call_index("unlock"), 0);
        assert_untouched();
}
END_TEST

/* --all with one map removed and one refused: each its own result, the exit status the more severe. */
START_TEST(test_run_all_mixed)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "linear",
                "8:16 0"); /* an mpath- UUID, not a multipath table */
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_str_eq(run.maps[0].map, "mpatha");
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(run.maps[1].map, "mpathb");
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REFUSED);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_REFUSED);
        ck_assert_ptr_null(find_name("mpatha"));
        ck_assert_ptr_nonnull(find_name("mpathb"));
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_run_all_list_fails)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_run run;

        setup_standard();
        F.list_r = -EIO;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_FAILED);
        ck_assert_ptr_nonnull(strstr(run.error, "cannot list the multipath maps"));
        ck_assert_uint_eq(run.n_maps, 0);
        ck_assert_uint_eq(F.n_calls, 0);
        mpf_run_done(&run);

        setup_standard();
        F.list_r = -EPERM;
        ck_assert_int_eq(mpf_run_all(&fake_ops, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.exit_status, MPF_EXIT_ENVIRONMENT);
        mpf_run_done(&run);
}
END_TEST

/* ---- the final remove with no udev cookie, waited for by its uevent (ops->remove_watched) ---- */

static struct mpf_ops watched_ops(void)
{
        struct mpf_ops o = fake_ops;

        o.remove_watched = f_remove_watched;
        o.udev_wait_removed = f_udev_wait_removed;
        return o;
}

static void flush_watched(const char *arg, struct mpf_map_result *res)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_ops o = watched_ops();

        ck_assert_int_eq(mpf_flush_map(&o, &p, arg, res), 0);
}

START_TEST(test_watched_remove_order)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        static const char *const expected[] = {
                "lock mpath-" WWID,
                "record-read",
                "record kernel multipathd",
                "mpathd disablequeueing map mpatha",
                "message mpatha fail_if_no_path",
                "save mpatha-part1",
                "record kernel multipathd partitions",
                "remove mpatha-part1", /* partition maps: on a cookie, as before */
                "udev_wait",
                "claim mpatha",
                "flush",
                "mpathd-reply", /* multipathd's answer, read before the map goes */
                "release",
                "worker write-back",
                "remove-watched mpatha",
                "udev_wait_removed 1", /* its own remove uevent, not a cookie */
                "record",
                "unlock",
                NULL,
        };

        setup_standard();
        F.maps[0].info.open_count = 1;
        flush_watched("mpatha", &r);
        assert_calls(expected);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(r.reason, "removed");
        ck_assert_uint_eq(F.n_waited, 1);
        ck_assert(F.waited[0] == makedev(254, 0));
        /* only an event after our remove is ours: the seqnum read before it reaches the wait */
        ck_assert_uint_eq(F.waited_seqnum[0], r.remove_seqnum);
        ck_assert_uint_ge(F.waited_seqnum[0], 1000);
}
END_TEST

/* It cannot (no udev, no monitor): nothing was done, and the remove goes on a cookie. */
START_TEST(test_watched_unsupported_uses_cookie)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.watched_r = -EOPNOTSUPP;
        flush_watched("mpatha", &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert(called("remove-watched mpatha"));
        ck_assert(called("remove mpatha"));
        ck_assert(!called("udev_wait_removed 1"));
        ck_assert_str_eq(F.calls[F.n_calls - 3], "udev_wait");
}
END_TEST

/* Opened again between release and remove: the uncookied remove is retried like any other, and
 * a failed one is not waited for. */
START_TEST(test_watched_remove_busy_retried)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;
        size_t removes = 0, waits = 0;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.remove_seq[0] = -EBUSY;
        F.remove_seq[1] = 0;
        F.n_remove_seq = 2;
        flush_watched("mpatha", &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        for (size_t i = 0; i < F.n_calls; i++) {
                removes += strcmp(F.calls[i], "remove-watched mpatha") == 0;
                waits += startswith(F.calls[i], "udev_wait_removed") != NULL;
        }
        ck_assert_uint_eq(removes, 2);
        ck_assert_uint_eq(waits, 1);
}
END_TEST

/* udev did not broadcast the remove by the deadline: removed, and the result says udev was late. */
START_TEST(test_watched_udev_late)
{
        _cleanup_(mpf_map_result_done) struct mpf_map_result r;

        setup_standard();
        F.maps[0].info.open_count = 1;
        F.wait_removed_r = -ETIMEDOUT;
        flush_watched("mpatha", &r);
        ck_assert_int_eq(r.result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(r.reason, "removed; udev had not finished with it at the deadline");
}
END_TEST

/* --all: the maps removed without a cookie are waited for once, by their uevents, after the shared
 * cookie, with their locks held until then. */
START_TEST(test_run_all_watched_one_wait)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_ops o = watched_ops();
        struct mpf_run run;
        static const char *const expected_tail[] = {
                "remove-watched mpathb", "udev_wait", "udev_wait_removed 2", "unlock", "unlock", NULL,
        };
        size_t k = 0;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        ck_assert_int_eq(mpf_run_all(&o, &p, true, NULL, 0, &run), 0);
        ck_assert_uint_eq(run.n_maps, 2);
        ck_assert_int_eq(run.maps[0].result, MPF_RESULT_REMOVED);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_uint_ge(F.n_calls, 5);
        for (size_t i = F.n_calls - 5; i < F.n_calls; i++, k++)
                ck_assert_str_eq(F.calls[i], expected_tail[k]);
        ck_assert_uint_eq(F.n_waited, 2);
        ck_assert(F.waited[0] == makedev(254, 0));
        ck_assert(F.waited[1] == makedev(254, 7));
        /* each map with the seqnum read before its own remove */
        ck_assert_uint_eq(F.waited_seqnum[0], run.maps[0].remove_seqnum);
        ck_assert_uint_eq(F.waited_seqnum[1], run.maps[1].remove_seqnum);
        ck_assert_uint_gt(F.waited_seqnum[1], F.waited_seqnum[0]);
        ck_assert_uint_ge(F.waited_seqnum[0], 1000);
        mpf_run_done(&run);
}
END_TEST

/* ...and when udev is late for them, each removed map's result says so. */
START_TEST(test_run_all_watched_late)
{
        struct mpf_flush_params p = {.deadline = START + TIMEOUT};
        struct mpf_ops o = watched_ops();
        struct mpf_run run;

        setup_standard();
        add_map("mpathb", "mpath-3600b", 7, 0, "multipath", NO_QUEUEING_PARAMS);
        F.wait_removed_r = -ETIMEDOUT;
        ck_assert_int_eq(mpf_run_all(&o, &p, true, NULL, 0, &run), 0);
        ck_assert_int_eq(run.maps[1].result, MPF_RESULT_REMOVED);
        ck_assert_str_eq(run.maps[1].reason, "removed; udev had not finished with it at the deadline");
        mpf_run_done(&run);
}
END_TEST

static Suite *flush_suite(void)
{
        Suite *s = suite_create("flush");
        TCase *tc = tcase_create("steps");

        tcase_add_test(tc, test_happy_path_order);
        tcase_add_test(tc, test_watched_remove_order);
        tcase_add_test(tc, test_watched_unsupported_uses_cookie);
        tcase_add_test(tc, test_watched_remove_busy_retried);
        tcase_add_test(tc, test_watched_udev_late);
        tcase_add_test(tc, test_run_all_watched_one_wait);
        tcase_add_test(tc, test_run_all_watched_late);
        tcase_add_test(tc, test_resolve_forms);
        tcase_add_test(tc, test_absent);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_lock_timeout);
        tcase_add_test(tc, test_lock_recheck_absent);
        tcase_add_test(tc, test_lock_map_vanished_or_error);
        tcase_add_test(tc, test_in_use_scan_when_partition_open);
        tcase_add_test(tc, test_in_use_no_scan_when_nobody_opens);
        tcase_add_test(tc, test_in_use_busy);
        tcase_add_test(tc, test_unexplained_opens_proceed);
        tcase_add_test(tc, test_in_use_transient_openers_proceed);
        tcase_add_test(tc, test_in_use_lasting_opener_busy);
        tcase_add_test(tc, test_dry_run_deferred_lasting_opener);
        tcase_add_test(tc, test_queueing_off_untouched);
        tcase_add_test(tc, test_fail_if_no_path_fails);
        tcase_add_test(tc, test_mpathd_not_running);
        tcase_add_test(tc, test_mpathd_late_answer);
        tcase_add_test(tc, test_mpathd_late_answer_fail);
        tcase_add_test(tc, test_mpathd_never_answers);
        tcase_add_test(tc, test_mpathd_late_answer_removed);
        tcase_add_test(tc, test_mpathd_answer_until_deadline);
        tcase_add_test(tc, test_mpathd_answer_connection_broke);
        tcase_add_test(tc, test_mpathd_answer_connection_broke_renamed);
        tcase_add_test(tc, test_mpathd_answer_read_late);
        tcase_add_test(tc, test_mpathd_answer_fail_no_restore);
        tcase_add_test(tc, test_mpathd_answer_short_deadline_put_back);
        tcase_add_test(tc, test_mpathd_never_answers_put_back_bounded);
        tcase_add_test(tc, test_partition_open_busy);
        tcase_add_test(tc, test_claim_busy_restores);
        tcase_add_test(tc, test_claim_other_error_failed);
        tcase_add_test(tc, test_flush_eio);
        tcase_add_test(tc, test_flush_eio_pathless_data_lost);
        tcase_add_test(tc, test_queued_writes_failed_counted);
        tcase_add_test(tc, test_queued_reads_not_data_lost);
        tcase_add_test(tc, test_unexplained_with_paths_busy);
        tcase_add_test(tc, test_unexplained_status_unreadable_busy);
        tcase_add_test(tc, test_unexplained_transient_proceeds);
        tcase_add_test(tc, test_named_and_unexplained_not_queued_io);
        tcase_add_test(tc, test_flush_timeout_stuck_worker);
        tcase_add_test(tc, test_lock_timeout_stuck_worker);
        tcase_add_test(tc, test_lock_timeout_no_stuck_worker);
        tcase_add_test(tc, test_worker_closes_last);
        tcase_add_test(tc, test_sole_opener_counts_worker_once);
        tcase_add_test(tc, test_last_close_stalls);
        tcase_add_test(tc, test_last_close_eio);
        tcase_add_test(tc, test_no_step_after_deadline);
        tcase_add_test(tc, test_lock_rereads_queueing);
        tcase_add_test(tc, test_flush_timeout);
        tcase_add_test(tc, test_flush_cache_flush_failed);
        tcase_add_test(tc, test_partitions_recreated_on_failure);
        tcase_add_test(tc, test_partitions_recreate_fails_exit_7);
        tcase_add_test(tc, test_partitions_not_recreated);
        tcase_add_test(tc, test_flush_cache_flush_failed_with_paths);
        tcase_add_test(tc, test_flush_cache_flush_failed_status_unreadable);
        tcase_add_test(tc, test_restore_fails_exit_7);
        tcase_add_test(tc, test_sole_opener_transient);
        tcase_add_test(tc, test_sole_opener_busy_at_deadline);
        tcase_add_test(tc, test_remove_ebusy_retry);
        tcase_add_test(tc, test_remove_ebusy_forever);
        tcase_add_test(tc, test_remove_ebusy_own_opener);
        tcase_add_test(tc, test_remove_error);
        tcase_add_test(tc, test_still_exists_after_remove);
        tcase_add_test(tc, test_udev_wait_timeout_still_removed);
        tcase_add_test(tc, test_deferred_in_use);
        tcase_add_test(tc, test_deferred_sole_opener);
        tcase_add_test(tc, test_deferred_sole_opener_answer_late);
        tcase_add_test(tc, test_deferred_gone_at_once);
        tcase_add_test(tc, test_dry_run);
        tcase_add_test(tc, test_run_environment);
        tcase_add_test(tc, test_run_all_independent);
        tcase_add_test(tc, test_run_precedence);
        tcase_add_test(tc, test_run_json_document);
        tcase_add_test(tc, test_no_claim_after_deadline);
        tcase_add_test(tc, test_killed_anywhere_undone);
        tcase_add_test(tc, test_next_flusher_undoes_leftover);
        tcase_add_test(tc, test_killed_answer_pending_restore_times_out);
        tcase_add_test(tc, test_next_flusher_partial_putback_rereads_table);
        tcase_add_test(tc, test_next_flusher_keeps_marks_it_could_not_put_back);
        tcase_add_test(tc, test_next_flusher_puts_back_what_the_record_could_not);
        tcase_add_test(tc, test_next_flusher_owes_restorequeueing_left_behind);
        tcase_add_test(tc, test_next_flusher_record_says_what_is_left);
        tcase_add_test(tc, test_restorequeueing_fail_is_nothing_to_restore);
        tcase_add_test(tc, test_undo_renamed_map);
        tcase_add_test(tc, test_renamed_while_flushed);
        tcase_add_test(tc, test_record_write_fails);
        tcase_add_test(tc, test_undo_create_retried_while_claimed);
        tcase_add_test(tc, test_record_kept_when_restore_fails);
        tcase_add_test(tc, test_guardian_serve);
        tcase_add_test(tc, test_run_all_no_map_after_deadline);
        tcase_add_test(tc, test_failure_branches);
        tcase_add_test(tc, test_unparsable_features_disable_anyway);
        tcase_add_test(tc, test_removed_by_someone_else);
        tcase_add_test(tc, test_run_all_one_udev_wait);
        tcase_add_test(tc, test_run_all_udev_late);
        tcase_add_test(tc, test_run_wait_busy_unmounted);
        tcase_add_test(tc, test_run_wait_busy_sole_opener_unlocked);
        tcase_add_test(tc, test_run_wait_busy_remove_ebusy);
        tcase_add_test(tc, test_run_all_failed_removes_release_cookie);
        tcase_add_test(tc, test_second_partition_fails_first_remade);
        tcase_add_test(tc, test_partition_vanishes_partway);
        tcase_add_test(tc, test_recreated_with_new_devt_not_restored);
        tcase_add_test(tc, test_dm_node_missing);
        tcase_add_test(tc, test_multi_target_table_refused);
        tcase_add_test(tc, test_scan_fails_while_openers_settle);
        tcase_add_test(tc, test_run_all_mixed);
        tcase_add_test(tc, test_pool_precedence);
        tcase_add_test(tc, test_pool_one_udev_wait);
        tcase_add_test(tc, test_pool_cookie_new_fails);
        tcase_add_test(tc, test_pool_contended_after_wait);
        tcase_add_test(tc, test_pool_contended_renamed);
        tcase_add_test(tc, test_pool_worker_processes);
        tcase_add_test(tc, test_pool_worker_hangs);
        tcase_add_test(tc, test_pool_worker_log_relayed);
        tcase_add_test(tc, test_run_all_list_fails);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(flush_suite)
