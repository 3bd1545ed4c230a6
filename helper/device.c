/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <libudev.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "device.h"
#include "dm.h"
#include "guardian.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "mpathd.h"
#include "pathlock.h"
#include "syncer.h"
#include "undo.h"
#include "usage.h"
#include "wait.h"

struct mpf_device {
        struct mpf_usage_roots roots;
        bool udev_sync;
        struct udev *udev;
        struct udev_monitor *monitor;
        struct mpf_syncer *syncer;      /* write-back and path opens; started at the first lock */
        struct mpf_change_watch *watch; /* --wait-busy, made at its first wait */
        struct mpf_guardian *guardian;  /* not ours; NULL: none (dry run, tests, the guardian itself) */
        struct mpathd_conn mpathd;      /* our connection to multipathd, kept from map to map */
        /* "remove" uevents that a cookie wait read off the monitor (and would have dropped):
         * udev_wait_removed() looks here first. removed_lost: one could not be kept. */
        struct mpf_removed *removed; /* each event's devt and SEQNUM */
        size_t n_removed;
        bool removed_lost;
        /* locks adopted from pool workers (mpf_device_lock_adopt()), until ops->unlock: a worker
         * forked meanwhile closes its copies */
        struct dev_lock **adopted;
        size_t n_adopted;
        char claimed[MPF_NAME_MAX]; /* the map of the last claim, for the log */
};

static struct udev_monitor *get_monitor(struct mpf_device *d);

/* A map's locks, and the UUID its guardian knows it by. */
struct dev_lock {
        struct mpf_lock lock;
        char uuid[MPF_UUID_MAX];
};

void mpf_device_set_guardian(struct mpf_device *d, struct mpf_guardian *g)
{
        d->guardian = g;
}

static struct udev_monitor *get_monitor(struct mpf_device *d);

bool mpf_udev_running(void)
{
        return mpf_socket_listening(UDEV_CONTROL_PATH);
}

bool mpf_socket_listening(const char *path)
{
        _cleanup_(closep) int fd = -EBADF;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        /* The socket file outlives a killed udevd: only a successful connect says it runs. */
        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return false;
        return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) >= 0 || errno == EINPROGRESS ||
               errno == EAGAIN;
}

int mpf_device_new(bool udev_sync, struct mpf_device **ret)
{
        struct mpf_device *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        mpf_usage_roots_from_env(&d->roots);
        d->mpathd = (struct mpathd_conn)MPATHD_CONN_INIT;
        d->udev_sync = udev_sync;
        mpf_dm_init(udev_sync);
        /* listen before the first remove, so its uevent wakes us up promptly */
        if (udev_sync && !get_monitor(d))
                log_debug("Cannot monitor udev events, re-checking the udev cookie periodically");
        *ret = d;
        return 0;
}

struct mpf_device *mpf_device_leave(struct mpf_device *d)
{
        if (d)
                d->syncer = mpf_syncer_leave(d->syncer);
        return mpf_device_free(d);
}

struct mpf_device *mpf_device_free(struct mpf_device *d)
{
        if (!d)
                return NULL;
        mpathd_conn_close(&d->mpathd);
        free(d->adopted);
        mpf_syncer_free(d->syncer);
        mpf_change_watch_free(d->watch);
        if (d->monitor)
                udev_monitor_unref(d->monitor);
        if (d->udev)
                udev_unref(d->udev);
        free(d->removed);
        free(d);
        return NULL;
}

static int dev_check(void *u)
{
        return mpf_dm_check();
}

static int dev_list(void *u, char ***ret)
{
        return mpf_dm_list_multipath(ret);
}

static int dev_info_by_name(void *u, const char *name, struct mpf_dm_info *ret)
{
        return mpf_dm_info_by_name(name, ret);
}

static int dev_info_by_uuid(void *u, const char *uuid, struct mpf_dm_info *ret)
{
        return mpf_dm_info_by_uuid(uuid, ret);
}

static int dev_info_by_path(void *u, const char *path, struct mpf_dm_info *ret)
{
        struct mpf_device *d = u;
        struct stat st;
        char kname[32];
        int r;

        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        r = mpf_sysfs_dm_kname(d->roots.sysfs, st.st_rdev, kname, sizeof(kname));
        if (r < 0)
                return r;
        return mpf_dm_info_by_devt(st.st_rdev, ret);
}

static int dev_table(void *u, const char *name, const char *uuid, unsigned *ret_n, char **ret_type,
                     char **ret_params)
{
        return mpf_dm_table(name, uuid, ret_n, ret_type, ret_params);
}

static int dev_targets(void *u, const struct mpf_dm_info *map, struct mpf_target **ret, size_t *ret_n)
{
        struct mpf_device *d = u;
        _cleanup_(freep) struct mpf_target *parts = NULL, *all = NULL;
        char kname[32];
        size_t n = 0;
        int r;

        r = mpf_sysfs_dm_kname(d->roots.sysfs, map->devt, kname, sizeof(kname));
        if (r == -ENODEV)
                return -ENXIO; /* gone */
        if (r < 0)
                return r;
        r = mpf_sysfs_partitions(d->roots.sysfs, kname, map->uuid, &parts, &n);
        if (r < 0)
                return r;
        all = calloc(n + 1, sizeof(*all));
        if (!all)
                return -ENOMEM;
        snprintf(all[0].name, sizeof(all[0].name), "%s", map->name);
        snprintf(all[0].uuid, sizeof(all[0].uuid), "%s", map->uuid);
        snprintf(all[0].kname, sizeof(all[0].kname), "%s", kname);
        all[0].devt = map->devt;
        if (n > 0)
                memcpy(all + 1, parts, n * sizeof(*parts));
        *ret = TAKE_PTR(all);
        *ret_n = n + 1;
        return 0;
}

static int dev_scan_usage(void *u, const struct mpf_target *targets, size_t n, usec_t deadline,
                          struct mpf_blockers *ret, unsigned *ret_explained)
{
        struct mpf_device *d = u;
        return mpf_scan_usage(&d->roots, targets, n, deadline, ret, ret_explained);
}

static int dev_sectors_written(void *u, const struct mpf_dm_info *map, uint64_t *ret)
{
        struct mpf_device *d = u;
        char kname[32];
        int r;

        r = mpf_sysfs_dm_kname(d->roots.sysfs, map->devt, kname, sizeof(kname));
        if (r < 0)
                return r;
        return mpf_sysfs_sectors_written(d->roots.sysfs, kname, ret);
}

/* The map's path device nodes (/dev/sdX), in ascending dev_t order. -ENXIO when the map is gone. */
static int path_nodes(struct mpf_device *d, const struct mpf_dm_info *map, char ***ret, size_t *ret_n)
{
        _cleanup_(strv_freep) char **names = NULL, **paths = NULL;
        _cleanup_(freep) dev_t *devts = NULL;
        char kname[32];
        size_t n = 0;
        int r;

        r = mpf_sysfs_dm_kname(d->roots.sysfs, map->devt, kname, sizeof(kname));
        if (r == -ENODEV)
                return -ENXIO; /* the map is gone */
        if (r < 0)
                return r;
        r = mpf_sysfs_slaves(d->roots.sysfs, kname, &names, &devts, &n);
        if (r == -ENOENT)
                return -ENXIO;
        if (r < 0)
                return r;
        STRV_FOREACH (s, names) {
                char *p;
                /* sysfs spells '/' in kernel names as '!' (cciss!c0d0) */
                for (char *c = *s; *c; c++)
                        if (*c == '!')
                                *c = '/';
                if (asprintf_safe(&p, "/dev/%s", *s) < 0)
                        return -ENOMEM;
                r = strv_push(&paths, p);
                if (r < 0)
                        return r;
        }
        if (!paths) {
                paths = calloc(1, sizeof(char *));
                if (!paths)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(paths);
        *ret_n = n;
        return 0;
}

/* The worker for calls that can sleep in the kernel (path opens, write-back): one for the run,
 * or for each pool worker, started when it is first needed. */
static int get_syncer(struct mpf_device *d)
{
        return d->syncer ? 0 : mpf_syncer_new(&d->syncer);
}

static int dev_lock(void *u, const struct mpf_dm_info *map, bool try_map, usec_t deadline, void **ret_lock,
                    struct mpf_stuck *ret_stuck)
{
        struct mpf_device *d = u;
        _cleanup_(strv_freep) char **paths = NULL;
        _cleanup_(freep) struct dev_lock *l = NULL;
        _cleanup_(closep) int map_fd = -EBADF;
        int *fds = NULL;
        size_t n = 0, n_fds = 0;
        int r;

        *ret_stuck = (struct mpf_stuck){};
        r = mpf_lock_map(mpf_rundir(), map->uuid, try_map, deadline, &map_fd);
        if (r < 0)
                return r;
        /* The path list is read only now: paths added while we waited for the map lock are
         * locked too. */
        r = path_nodes(d, map, &paths, &n);
        if (r < 0)
                return r;
        /* opened by the write-back worker: an open waits out SCSI error recovery, unbounded
         * (pathlock.h) */
        r = get_syncer(d);
        if (r >= 0)
                r = mpf_syncer_lock_paths(d->syncer, paths, n, deadline, &fds, &n_fds, ret_stuck);
        if (r == -ETIMEDOUT && ret_stuck->pid > 0)
                log_warning("%s: %s did not return before the deadline (SCSI error recovery?); its worker "
                            "(pid %i) is stuck in the kernel and was left behind",
                            map->name, ret_stuck->in, (int)ret_stuck->pid);
        if (r < 0)
                return r;
        l = calloc(1, sizeof(*l));
        if (!l) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                free(fds);
                return -ENOMEM;
        }
        l->lock = (struct mpf_lock){.map_fd = TAKE_FD(map_fd), .path_fds = fds, .n_path_fds = n_fds};
        snprintf(l->uuid, sizeof(l->uuid), "%s", map->uuid);
        log_debug("%s: locked %s/lock/%s and %zu path device(s)", map->name, mpf_rundir(), map->uuid,
                  l->lock.n_path_fds);
        /* from now on, if we die, the guardian holds the map lock until it has put the map back */
        r = mpf_guardian_watch(d->guardian, map->uuid, l->lock.map_fd);
        if (r < 0)
                log_warning_errno(r, "%s: Failed to hand the map lock to the guardian: %m, ignoring",
                                  map->name);
        *ret_lock = TAKE_PTR(l);
        return 0;
}

static int dev_paths(void *u, const struct mpf_dm_info *map, char ***ret_names)
{
        struct mpf_device *d = u;
        _cleanup_(freep) dev_t *devts = NULL;
        char kname[32];
        size_t n = 0;
        int r;

        r = mpf_sysfs_dm_kname(d->roots.sysfs, map->devt, kname, sizeof(kname));
        if (r == -ENODEV)
                return -ENXIO;
        if (r < 0)
                return r;
        /* a removed path stays in slaves/ as a dangling link until the table is reloaded: only
         * entries whose dev attribute can be read are listed */
        r = mpf_sysfs_slaves(d->roots.sysfs, kname, ret_names, &devts, &n);
        return r == -ENOENT ? -ENXIO : r;
}

void mpf_device_forked(struct mpf_device *d)
{
        int r;

        if (!d)
                return;
        /* our own fds are named as the flusher's (usage.h); the run's main process stays the run */
        mpf_usage_roots_forked(&d->roots);
        /* a connection of our own: replies to our commands must come to us (a reply the parent
         * still waits for is the parent's: our copy goes, theirs stays) */
        mpathd_conn_close(&d->mpathd);
        /* the parent's netlink socket would hand its uevents to whichever process reads first:
         * ours is made again at the first udev wait */
        if (d->monitor)
                d->monitor = udev_monitor_unref(d->monitor);
        if (d->udev)
                d->udev = udev_unref(d->udev);
        d->removed = mfree(d->removed);
        d->n_removed = 0;
        d->removed_lost = false;
        /* ours, before our first remove: its uevent must not be missed (remove_watched) */
        if (d->udev_sync && !get_monitor(d))
                log_debug("Cannot monitor udev events, removing with a udev cookie");
        /* the parent's, not ours to stop; our copy of its worker's socket goes */
        d->syncer = mpf_syncer_forked(d->syncer);
        /* the locks of maps other workers removed, which the parent keeps until its udev wait: our
         * copies only close (no LOCK_UN: the open file description is the parent's too) */
        for (size_t i = 0; i < d->n_adopted; i++) {
                struct dev_lock *l = d->adopted[i];

                for (size_t k = 0; k < l->lock.n_path_fds; k++)
                        l->lock.path_fds[k] = safe_close(l->lock.path_fds[k]);
                l->lock.map_fd = safe_close(l->lock.map_fd);
        }
        d->adopted = mfree(d->adopted);
        d->n_adopted = 0;
        d->watch = NULL;
        /* the guardian hears of our death when it happens, not when the run ends */
        r = mpf_guardian_forked(d->guardian);
        if (r < 0)
                log_warning_errno(r, "Failed to connect to the guardian: %m, ignoring");
}

int mpf_device_lock_fds(void *lock, int *ret_fds, size_t max, size_t *ret_n)
{
        struct dev_lock *l = lock;
        size_t n = 0;

        if (max < 1 + l->lock.n_path_fds)
                return -ENOBUFS;
        ret_fds[n++] = l->lock.map_fd;
        for (size_t i = 0; i < l->lock.n_path_fds; i++)
                ret_fds[n++] = l->lock.path_fds[i];
        *ret_n = n;
        return 0;
}

void mpf_device_lock_drop(void *lock)
{
        struct dev_lock *l = lock;

        if (!l)
                return;
        for (size_t i = 0; i < l->lock.n_path_fds; i++)
                safe_close(l->lock.path_fds[i]);
        free(l->lock.path_fds);
        safe_close(l->lock.map_fd);
        free(l);
}

int mpf_device_lock_adopt(struct mpf_device *d, const char *uuid, const int *fds, size_t n, void **ret_lock)
{
        _cleanup_(freep) struct dev_lock *l = NULL;

        if (!uuid || n == 0)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->lock.path_fds = n > 1 ? calloc(n - 1, sizeof(int)) : NULL;
        if (n > 1 && !l->lock.path_fds)
                return -ENOMEM;
        l->lock.map_fd = fds[0];
        for (size_t i = 1; i < n; i++)
                l->lock.path_fds[i - 1] = fds[i];
        l->lock.n_path_fds = n - 1;
        snprintf(l->uuid, sizeof(l->uuid), "%s", uuid);
        if (d) {
                struct dev_lock **a = reallocarray(d->adopted, d->n_adopted + 1, sizeof(*a));

                if (!a) {
                        free(l->lock.path_fds);
                        return -ENOMEM;
                }
                d->adopted = a;
                d->adopted[d->n_adopted++] = l;
                /* the run's now: watched from its connection, the worker's end no longer puts it back */
                (void)mpf_guardian_watch(d->guardian, uuid, l->lock.map_fd);
        }
        *ret_lock = TAKE_PTR(l);
        return 0;
}

static void dev_unlock(void *u, void *lock)
{
        struct mpf_device *d = u;
        struct dev_lock *l = lock;

        for (size_t i = 0; i < d->n_adopted; i++)
                if (d->adopted[i] == l) {
                        d->adopted[i] = d->adopted[--d->n_adopted];
                        break;
                }
        (void)mpf_guardian_forget(d->guardian, l->uuid);
        mpf_lock_release(&l->lock);
        free(l);
}

static int dev_message(void *u, const char *name, const char *uuid, const char *msg)
{
        return mpf_dm_message(name, uuid, msg);
}

static int dev_mpathd(void *u, const char *cmd, usec_t deadline)
{
        struct mpf_device *d = u;
        _cleanup_(freep) char *reply = NULL;
        int r;

        r = mpathd_command_keep(&d->mpathd, cmd, deadline, &reply);
        if (r == -EBADMSG)
                log_debug("multipathd: '%s' answered: %s", cmd, strempty(reply));
        return r;
}

static int dev_mpathd_send(void *u, const char *cmd, usec_t deadline)
{
        struct mpf_device *d = u;

        return mpathd_command_send(&d->mpathd, cmd, deadline);
}

static int dev_mpathd_reply(void *u, usec_t deadline)
{
        struct mpf_device *d = u;
        _cleanup_(freep) char *reply = NULL;
        int r;

        r = mpathd_reply_wait(&d->mpathd, deadline, &reply);
        if (r == -EBADMSG)
                log_debug("multipathd: a late answer: %s", strempty(reply));
        return r;
}

static int dev_claim(void *u, const struct mpf_dm_info *map, int *ret_fd)
{
        struct mpf_device *d = u;
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *p = NULL;
        struct stat st;
        char kname[32];
        int r;

        /* The kernel's node, found by the map's dev_t: /dev/mapper/NAME may be another map's by now
         * (renamed, two aliases swapped), and an O_EXCL open of another map, however brief, could
         * fail its owner's mount. /dev/mapper/NAME only when there is no such node (no devtmpfs).
         * Read-only: closing a writable fd makes udev's inotify watch re-run blkid. */
        r = mpf_sysfs_dm_kname(d->roots.sysfs, map->devt, kname, sizeof(kname));
        if (r == -ENODEV)
                return -ENXIO; /* gone */
        if (r < 0)
                return r;
        if (asprintf_safe(&p, "/dev/%s", kname) < 0)
                return -ENOMEM;
        fd = open(p, O_RDONLY | O_EXCL | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT) {
                /* no such node: udev's, if it is our map's (checked before the O_EXCL open) */
                p = mfree(p);
                if (asprintf_safe(&p, "/dev/mapper/%s", map->name) < 0)
                        return -ENOMEM;
                if (stat(p, &st) < 0)
                        return negative_errno();
                if (!S_ISBLK(st.st_mode) || st.st_rdev != map->devt)
                        return -ESTALE;
                fd = open(p, O_RDONLY | O_EXCL | O_CLOEXEC | O_NOCTTY);
        }
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISBLK(st.st_mode) || st.st_rdev != map->devt)
                return -ESTALE; /* the node is not our map */
        /* -v: an fd of the map that outlives its flush is named by pid and fd (usage.h) */
        snprintf(d->claimed, sizeof(d->claimed), "%s", map->name);
        log_debug("%s: claim: fd %d opened (%s)", map->name, fd, p);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int dev_flush(void *u, int fd, usec_t deadline, pid_t *ret_stuck)
{
        struct mpf_device *d = u;
        int r;

        r = get_syncer(d);
        if (r < 0)
                return r;
        r = mpf_syncer_sync(d->syncer, fd, deadline, ret_stuck);
        log_debug("%s: flush: fd %d written back by the write-back worker (pid %d, answer %d), which %s",
                  d->claimed, fd, (int)mpf_syncer_pid(d->syncer), r,
                  mpf_syncer_holding(d->syncer) ? "now holds its own open of the map" : "holds none");
        return r;
}

static int dev_active_paths(void *u, const char *name, const char *uuid)
{
        _cleanup_(freep) char *type = NULL, *status = NULL;
        unsigned n = 0;
        int r;

        r = mpf_dm_status(name, uuid, &n, &type, &status);
        if (r < 0)
                return r;
        if (n != 1 || !type || strcmp(type, MPF_MULTIPATH_TARGET) != 0)
                return -EBADMSG;
        return mpf_multipath_status_active_paths(status);
}

static int dev_release(void *u, int fd, bool write_back, usec_t until, pid_t *ret_stuck)
{
        struct mpf_device *d = u;

        /* never the map's last close while the worker holds its own open */
        log_debug("%s: release: fd %d closed; the write-back worker (pid %d) %s", d->claimed, fd,
                  d->syncer ? (int)mpf_syncer_pid(d->syncer) : 0,
                  !mpf_syncer_holding(d->syncer) ? "holds no open"
                  : write_back                   ? "writes back and closes its open"
                                                 : "closes its open");
        safe_close(fd);
        return mpf_syncer_close(d->syncer, write_back, until, ret_stuck);
}

static int dev_remove(void *u, const char *name, const char *uuid, bool deferred, uint32_t *cookie)
{
        return mpf_dm_remove(name, uuid, deferred, cookie);
}

static int dev_save(void *u, const char *name, const char *uuid, struct mpf_dm_saved *ret)
{
        return mpf_dm_save(name, uuid, ret);
}

static int dev_create(void *u, const struct mpf_dm_saved *s, uint32_t *cookie)
{
        return mpf_dm_create(s, cookie);
}

static struct udev_monitor *get_monitor(struct mpf_device *d)
{
        if (d->monitor)
                return d->monitor;
        if (!d->udev)
                d->udev = udev_new();
        if (!d->udev)
                return NULL;
        d->monitor = udev_monitor_new_from_netlink(d->udev, "udev");
        if (!d->monitor)
                return NULL;
        if (udev_monitor_filter_add_match_subsystem_devtype(d->monitor, "block", "disk") < 0 ||
            udev_monitor_enable_receiving(d->monitor) < 0) {
                d->monitor = udev_monitor_unref(d->monitor);
                return NULL;
        }
        /* a run of many maps reads the remove events of all of them at its end */
        if (udev_monitor_set_receive_buffer_size(d->monitor, UDEV_MONITOR_BUFFER) < 0)
                log_debug("Cannot enlarge the udev monitor's receive buffer, ignoring");
        return d->monitor;
}

static int dev_cookie_new(void *u, uint32_t *ret)
{
        return mpf_dm_cookie_new(ret);
}

/* A uevent read off the monitor while waiting for a cookie: a "remove" is kept for
 * udev_wait_removed(), which may be waiting for it next (a map removed with no cookie before the
 * partition maps of another map were removed with one). */
static void keep_removed(struct mpf_device *d, struct udev_device *dev)
{
        const char *action = udev_device_get_action(dev);
        struct mpf_removed *l;

        if (!action || strcmp(action, "remove") != 0)
                return;
        l = reallocarray(d->removed, d->n_removed + 1, sizeof(*l));
        if (!l) {
                d->removed_lost = true;
                return;
        }
        d->removed = l;
        d->removed[d->n_removed++] =
                (struct mpf_removed){udev_device_get_devnum(dev), udev_device_get_seqnum(dev)};
}

static int dev_udev_wait(void *u, const struct mpf_dm_info *map, uint32_t cookie, usec_t deadline)
{
        struct mpf_device *d = u;
        struct udev_monitor *m = NULL;
        int r;

        if (cookie == 0 || !d->udev_sync)
                return mpf_dm_cookie_ready(cookie) < 0 ? -EIO : 0;

        /* Wake on any processed block uevent (the dm udev rules release the cookie before udevd
         * broadcasts the event); re-check at a bounded interval in case we miss it. */
        m = get_monitor(d);
        for (;;) {
                usec_t t = now_monotonic();
                int ms;

                r = mpf_dm_cookie_ready(cookie);
                if (r < 0)
                        return r;
                if (r > 0)
                        return 0;
                if (deadline_passed(deadline, t)) {
                        log_warning("%s: udev did not process the removal before the deadline, releasing "
                                    "cookie 0x%x",
                                    map ? map->name : "maps", cookie);
                        r = mpf_dm_cookie_abandon(cookie);
                        if (r < 0)
                                log_warning_errno(r, "Failed to release udev cookie 0x%x: %m, ignoring",
                                                  cookie);
                        return -ETIMEDOUT;
                }
                ms = deadline_poll_ms(MIN(deadline, t + UDEV_WAIT_RECHECK_USEC), t);
                if (m) {
                        struct pollfd p = {.fd = udev_monitor_get_fd(m), .events = POLLIN};
                        if (poll(&p, 1, ms) > 0) {
                                struct udev_device *dev;

                                for (;;) {
                                        errno = 0;
                                        dev = udev_monitor_receive_device(m);
                                        if (!dev)
                                                break;
                                        keep_removed(d, dev);
                                        udev_device_unref(dev);
                                }
                                if (errno == ENOBUFS)
                                        d->removed_lost = true;
                        }
                } else
                        sleep_until(t + (usec_t)ms * USEC_PER_MSEC);
        }
}

int mpf_uevent_seqnum(const char *sysfs, uint64_t *ret)
{
        _cleanup_(freep) char *p = NULL, *line = NULL;
        char *end;
        int r;

        r = asprintf_safe(&p, "%s/kernel/uevent_seqnum", sysfs);
        if (r < 0)
                return r;
        r = read_one_line(p, &line);
        if (r < 0)
                return r;
        errno = 0;
        *ret = strtoull(line, &end, 10);
        if (errno != 0 || end == line || *end != '\0')
                return -EINVAL;
        return 0;
}

static int dev_remove_watched(void *u, const char *name, const char *uuid, uint64_t *ret_seqnum)
{
        struct mpf_device *d = u;

        /* without udev, libdevmapper removes the node itself, on a cookie; without a monitor, the
         * remove uevent could not be seen */
        if (!d->udev_sync || !d->monitor)
                return -EOPNOTSUPP;
        /* Our remove's uevent gets a SEQNUM above this: an older "remove" of the same devt (a map
         * of that number removed by someone else before) is not ours. Unreadable: 0, any "remove"
         * of the devt counts, as it did before we knew of the seqnum. */
        if (mpf_uevent_seqnum(d->roots.sysfs, ret_seqnum) < 0)
                *ret_seqnum = 0;
        return mpf_dm_remove_uncookied(name, uuid);
}

bool mpf_removed_matches(const struct mpf_removed *m, dev_t devnum, uint64_t seqnum)
{
        return m->devt == devnum && (m->seqnum == 0 || seqnum > m->seqnum);
}

size_t mpf_removed_mark(const struct mpf_removed *maps, bool *seen, size_t n, dev_t devnum, uint64_t seqnum)
{
        for (size_t i = 0; i < n; i++)
                if (!seen[i] && mpf_removed_matches(&maps[i], devnum, seqnum)) {
                        seen[i] = true;
                        return 1;
                }
        return 0;
}

bool mpf_udev_removal_settled(const char *udev_run, dev_t devt)
{
        char p[PATH_MAX];

        /* systemd-udevd deletes the database entry before it runs the remove's rules and removes
         * the symlinks; it keeps <udev_run>/queue while any event is queued or being processed
         * (an event leaves the queue once its worker reported it done, after the broadcast). */
        (void)snprintf(p, sizeof(p), "%s/data/b%u:%u", udev_run, major(devt), minor(devt));
        if (access(p, F_OK) >= 0 || errno != ENOENT)
                return false;
        (void)snprintf(p, sizeof(p), "%s/queue", udev_run);
        return access(p, F_OK) < 0 && errno == ENOENT;
}

static int dev_udev_wait_removed(void *u, const struct mpf_removed *maps, size_t n, usec_t deadline)
{
        struct mpf_device *d = u;
        _cleanup_(freep) bool *seen = NULL;
        size_t left = n;
        /* events may have been missed: look at udev's database and queue too */
        bool lost = !d->monitor || d->removed_lost;

        if (n == 0 || !d->udev_sync)
                return 0;
        seen = calloc(n, sizeof(bool));
        if (!seen)
                return -ENOMEM;
        /* those a cookie wait read already */
        for (size_t k = 0; k < d->n_removed;) {
                if (mpf_removed_mark(maps, seen, n, d->removed[k].devt, d->removed[k].seqnum) == 0) {
                        k++;
                        continue;
                }
                left--;
                d->removed[k] = d->removed[--d->n_removed];
        }
        for (;;) {
                usec_t t = now_monotonic();
                int ms;

                if (lost)
                        for (size_t i = 0; i < n; i++)
                                if (!seen[i] && mpf_udev_removal_settled(UDEV_RUN_DIR, maps[i].devt)) {
                                        seen[i] = true;
                                        left--;
                                }
                if (left == 0)
                        return 0;
                if (deadline_passed(deadline, t)) {
                        log_warning("udev did not process the removal of %zu map(s) before the deadline",
                                    left);
                        return -ETIMEDOUT;
                }
                ms = deadline_poll_ms(lost ? MIN(deadline, t + UDEV_WAIT_RECHECK_USEC) : deadline, t);
                if (!d->monitor) {
                        sleep_until(t + (usec_t)ms * USEC_PER_MSEC);
                        continue;
                }
                {
                        struct pollfd p = {.fd = udev_monitor_get_fd(d->monitor), .events = POLLIN};

                        if (poll(&p, 1, ms) <= 0)
                                continue;
                }
                for (;;) {
                        struct udev_device *dev;
                        const char *action;

                        errno = 0;
                        dev = udev_monitor_receive_device(d->monitor);
                        if (!dev) {
                                if (errno == ENOBUFS && !lost) {
                                        log_debug("udev events were lost (receive buffer full): looking at "
                                                  "udev's database and queue too");
                                        lost = true;
                                }
                                break;
                        }
                        action = udev_device_get_action(dev);
                        /* one event is one map's; one not ours is kept for a later wait (finish_shared
                         * waits map by map when short of memory) */
                        if (action && strcmp(action, "remove") == 0) {
                                if (mpf_removed_mark(maps, seen, n, udev_device_get_devnum(dev),
                                                     udev_device_get_seqnum(dev)) > 0)
                                        left--;
                                else
                                        keep_removed(d, dev);
                        }
                        udev_device_unref(dev);
                }
        }
}

static int dev_record_write(void *u, const struct mpf_undo *rec)
{
        return mpf_undo_write(mpf_rundir(), rec);
}

static int dev_record_read(void *u, const char *uuid, struct mpf_undo *ret)
{
        return mpf_undo_read(mpf_rundir(), uuid, ret);
}

static usec_t dev_now(void *u)
{
        return now_monotonic();
}

static void dev_sleep_until(void *u, usec_t t)
{
        sleep_until(t);
}

static void dev_wait_change(void *u, usec_t t)
{
        struct mpf_device *d = u;

        if (!d->watch && mpf_change_watch_new(mpf_udev_running(), &d->watch) < 0) {
                sleep_until(t);
                return;
        }
        (void)mpf_change_watch_wait(d->watch, t);
}

void mpf_device_ops(struct mpf_device *d, struct mpf_ops *ret)
{
        *ret = (struct mpf_ops){
                .userdata = d,
                .check = dev_check,
                .list = dev_list,
                .info_by_name = dev_info_by_name,
                .info_by_uuid = dev_info_by_uuid,
                .info_by_path = dev_info_by_path,
                .table = dev_table,
                .targets = dev_targets,
                .scan_usage = dev_scan_usage,
                .lock = dev_lock,
                .cookie_new = dev_cookie_new,
                .unlock = dev_unlock,
                .paths = dev_paths,
                .message = dev_message,
                .mpathd = dev_mpathd,
                .mpathd_reply = dev_mpathd_reply,
                .mpathd_send = dev_mpathd_send,
                .claim = dev_claim,
                .flush = dev_flush,
                .release = dev_release,
                .active_paths = dev_active_paths,
                .sectors_written = dev_sectors_written,
                .remove = dev_remove,
                .save = dev_save,
                .create = dev_create,
                .udev_wait = dev_udev_wait,
                .remove_watched = dev_remove_watched,
                .udev_wait_removed = dev_udev_wait_removed,
                .record_write = dev_record_write,
                .record_read = dev_record_read,
                .now = dev_now,
                .sleep_until = dev_sleep_until,
                .wait_change = dev_wait_change,
        };
}
