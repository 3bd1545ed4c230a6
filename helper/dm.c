/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dm.h"
#include "log.h"
#include "macro.h"

/* How many semaphore decrements we try when abandoning a cookie (one per task on it). */
#define COOKIE_ABANDON_MAX 256

static void dm_task_destroyp(struct dm_task **t)
{
        if (*t)
                dm_task_destroy(*t);
        *t = NULL;
}

_printf_(5, 6) static void mpf_dm_log(int level, const char *file, int line, int dm_errno_or_class,
                                      const char *f, ...)
{
        char buf[1024];
        va_list ap;

        if (log_get_max_level() < LOG_DEBUG)
                return;
        va_start(ap, f);
        (void)vsnprintf(buf, sizeof(buf), f, ap);
        va_end(ap);
        log_debug("libdevmapper: %s", buf);
}

void mpf_dm_init(bool udev_sync)
{
        dm_log_with_errno_init(mpf_dm_log);
        dm_udev_set_sync_support(udev_sync);
}

bool mpf_dm_udev_sync(void)
{
        return dm_udev_get_sync_support();
}

int mpf_dm_check(void)
{
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;

        fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        dmt = dm_task_create(DM_DEVICE_VERSION);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_run(dmt)) {
                int e = dm_task_get_errno(dmt);
                return e > 0 ? -e : -ENODEV;
        }
        return 0;
}

static int task_errno(struct dm_task *dmt, int fallback)
{
        int e = dm_task_get_errno(dmt);
        return e > 0 ? -e : fallback;
}

static int info_run(struct dm_task *dmt, struct mpf_dm_info *ret)
{
        struct dm_info i;
        const char *s;

        if (!dm_task_run(dmt)) {
                int r = task_errno(dmt, -EIO);
                if (r == -ENXIO || r == -ENODEV) {
                        *ret = (struct mpf_dm_info){};
                        return 0;
                }
                return r;
        }
        if (!dm_task_get_info(dmt, &i))
                return -EIO;
        *ret = (struct mpf_dm_info){};
        if (!i.exists)
                return 0;
        ret->exists = true;
        ret->devt = makedev((unsigned)i.major, (unsigned)i.minor);
        ret->open_count = i.open_count;
        ret->suspended = i.suspended;
        ret->deferred_remove = i.deferred_remove;
        s = dm_task_get_name(dmt);
        if (s)
                snprintf(ret->name, sizeof(ret->name), "%s", s);
        s = dm_task_get_uuid(dmt);
        if (s)
                snprintf(ret->uuid, sizeof(ret->uuid), "%s", s);
        return 0;
}

int mpf_dm_info_by_name(const char *name, struct mpf_dm_info *ret)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);

        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_name(dmt, name))
                return -EINVAL;
        return info_run(dmt, ret);
}

int mpf_dm_info_by_uuid(const char *uuid, struct mpf_dm_info *ret)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);

        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_uuid(dmt, uuid))
                return -EINVAL;
        return info_run(dmt, ret);
}

int mpf_dm_info_by_devt(dev_t devt, struct mpf_dm_info *ret)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);

        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_major_minor(dmt, (int)major(devt), (int)minor(devt), 0))
                return -EINVAL;
        return info_run(dmt, ret);
}

static bool have(const char *s)
{
        return s && s[0] != '\0';
}

/* The map a task acts on: by UUID when it has one (dm.h says why), else by name. The kernel takes
 * one or the other, never both. */
static int set_map(struct dm_task *dmt, const char *name, const char *uuid)
{
        if (have(uuid))
                return dm_task_set_uuid(dmt, uuid) ? 0 : -EINVAL;
        return have(name) && dm_task_set_name(dmt, name) ? 0 : -EINVAL;
}

/* Run a DM_DEVICE_TABLE or DM_DEVICE_STATUS task on the map: the task (its targets are read with
 * dm_get_next_target()) and the map's info. -ENXIO if there is no such map. */
static int run_table_task(int task, const char *name, const char *uuid, struct dm_task **ret,
                          struct dm_info *ret_info)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(task);
        int r;

        if (!dmt)
                return -ENOMEM;
        r = set_map(dmt, name, uuid);
        if (r < 0)
                return r;
        if (!dm_task_run(dmt))
                return task_errno(dmt, -EIO);
        if (!dm_task_get_info(dmt, ret_info))
                return -EIO;
        if (!ret_info->exists)
                return -ENXIO;
        *ret = TAKE_PTR(dmt);
        return 0;
}

/* DM_DEVICE_TABLE or DM_DEVICE_STATUS: the number of targets, the first one's type and parameters. */
static int first_target(int task, const char *name, const char *uuid, unsigned *ret_n_targets,
                        char **ret_type, char **ret_params)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        _cleanup_(freep) char *type = NULL, *params = NULL;
        struct dm_info i;
        void *next = NULL;
        unsigned n = 0;
        int r;

        r = run_table_task(task, name, uuid, &dmt, &i);
        if (r < 0)
                return r;
        do {
                uint64_t start, length;
                char *t = NULL, *p = NULL;

                next = dm_get_next_target(dmt, next, &start, &length, &t, &p);
                if (!t)
                        break;
                if (n++ == 0) {
                        type = strdup(t);
                        params = strdup(p ? p : "");
                        if (!type || !params)
                                return -ENOMEM;
                }
        } while (next);

        *ret_n_targets = n;
        if (ret_type)
                *ret_type = TAKE_PTR(type);
        if (ret_params)
                *ret_params = TAKE_PTR(params);
        return 0;
}

int mpf_dm_table(const char *name, const char *uuid, unsigned *ret_n_targets, char **ret_type,
                 char **ret_params)
{
        return first_target(DM_DEVICE_TABLE, name, uuid, ret_n_targets, ret_type, ret_params);
}

int mpf_dm_status(const char *name, const char *uuid, unsigned *ret_n_targets, char **ret_type,
                  char **ret_status)
{
        return first_target(DM_DEVICE_STATUS, name, uuid, ret_n_targets, ret_type, ret_status);
}

int mpf_dm_message(const char *name, const char *uuid, const char *msg)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
        int r;

        if (!dmt)
                return -ENOMEM;
        r = set_map(dmt, name, uuid);
        if (r < 0)
                return r;
        if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg))
                return -EINVAL;
        if (!dm_task_run(dmt))
                return task_errno(dmt, -EIO);
        return 0;
}

/* Run a task that makes or removes a node on the udev cookie *cookie (0: make one). With udev
 * sync, udev makes and removes the /dev/mapper nodes; without it, libdevmapper does. */
static int run_on_cookie(struct dm_task *dmt, uint32_t *cookie)
{
        uint16_t flags = 0;

        if (dm_udev_get_sync_support())
                flags |= DM_UDEV_DISABLE_LIBRARY_FALLBACK;
        if (!dm_task_set_cookie(dmt, cookie, flags))
                return -EIO;
        if (!dm_task_run(dmt))
                return task_errno(dmt, -EIO);
        return 0;
}

int mpf_dm_remove(const char *name, const char *uuid, bool deferred, uint32_t *cookie)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_REMOVE);
        int r;

        if (!dmt)
                return -ENOMEM;
        /* without udev, libdevmapper removes the node by the name it was given */
        r = set_map(dmt, name, dm_udev_get_sync_support() ? uuid : NULL);
        if (r < 0)
                return r;
        if (deferred && !dm_task_deferred_remove(dmt))
                return -EOPNOTSUPP;
        return run_on_cookie(dmt, cookie);
}

int mpf_dm_remove_uncookied(const char *name, const char *uuid)
{
        struct dm_ioctl dmi = {
                .version = {DM_VERSION_MAJOR, 0, 0},
                .data_size = sizeof(dmi),
                .data_start = sizeof(dmi),
                .event_nr = 0, /* no cookie, no udev flags: the uevent carries no DM_COOKIE */
        };
        _cleanup_(closep) int fd = -EBADF;

        if (have(uuid)) { /* dm.h says why; the kernel takes a name or a UUID, never both */
                if (strlen(uuid) >= sizeof(dmi.uuid))
                        return -EINVAL;
                memcpy(dmi.uuid, uuid, strlen(uuid) + 1);
        } else {
                if (!have(name) || strlen(name) >= sizeof(dmi.name))
                        return -EINVAL;
                memcpy(dmi.name, name, strlen(name) + 1);
        }
        fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (ioctl(fd, DM_DEV_REMOVE, &dmi) < 0)
                return errno == ENODEV ? -ENXIO : negative_errno();
        return 0;
}

void mpf_dm_saved_done(struct mpf_dm_saved *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_targets; i++) {
                free(s->targets[i].type);
                free(s->targets[i].params);
        }
        free(s->targets);
        *s = (struct mpf_dm_saved){};
}

int mpf_dm_save(const char *name, const char *uuid, struct mpf_dm_saved *ret)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct mpf_dm_saved s = {};
        struct dm_info i;
        const char *u;
        void *next = NULL;
        int r;

        r = run_table_task(DM_DEVICE_TABLE, name, uuid, &dmt, &i);
        if (r < 0)
                return r;
        u = dm_task_get_name(dmt);
        snprintf(s.name, sizeof(s.name), "%s", u && u[0] ? u : name);
        u = dm_task_get_uuid(dmt);
        snprintf(s.uuid, sizeof(s.uuid), "%s", u ? u : "");
        s.read_only = i.read_only;
        do {
                uint64_t start, length;
                char *t = NULL, *p = NULL;
                struct mpf_dm_target *a;

                next = dm_get_next_target(dmt, next, &start, &length, &t, &p);
                if (!t)
                        break;
                a = reallocarray(s.targets, s.n_targets + 1, sizeof(*a));
                if (!a) {
                        r = -ENOMEM;
                        break;
                }
                s.targets = a;
                a[s.n_targets] = (struct mpf_dm_target){
                        .start = start,
                        .length = length,
                        .type = strdup(t),
                        .params = strdup(p ? p : ""),
                };
                s.n_targets++;
                if (!a[s.n_targets - 1].type || !a[s.n_targets - 1].params)
                        r = -ENOMEM;
        } while (next && r >= 0);
        if (r >= 0 && s.n_targets == 0)
                r = -EBADMSG; /* a map without a table cannot be made again */
        if (r < 0) {
                mpf_dm_saved_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int mpf_dm_create(const struct mpf_dm_saved *s, uint32_t *cookie)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_CREATE);

        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_name(dmt, s->name) || (s->uuid[0] && !dm_task_set_uuid(dmt, s->uuid)))
                return -EINVAL;
        if (s->read_only && !dm_task_set_ro(dmt))
                return -EINVAL;
        for (size_t i = 0; i < s->n_targets; i++)
                if (!dm_task_add_target(dmt, s->targets[i].start, s->targets[i].length, s->targets[i].type,
                                        s->targets[i].params))
                        return -ENOMEM;
        return run_on_cookie(dmt, cookie);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int mpf_dm_list_multipath(char ***ret_names)
{
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = dm_task_create(DM_DEVICE_LIST);
        _cleanup_(strv_freep) char **names = NULL;
        struct dm_names *n;
        unsigned next = 0;
        int r;

        if (!dmt)
                return -ENOMEM;
        if (!dm_task_run(dmt))
                return task_errno(dmt, -EIO);
        n = dm_task_get_names(dmt);
        if (n && n->dev) {
                do {
                        struct mpf_dm_info info;
                        _cleanup_(freep) char *type = NULL;
                        unsigned n_targets = 0;

                        n = (struct dm_names *)((char *)n + next);
                        next = n->next;

                        r = mpf_dm_info_by_name(n->name, &info);
                        if (r < 0)
                                return r;
                        if (!info.exists || !mpf_uuid_is_mpath(info.uuid))
                                continue;
                        r = mpf_dm_table(n->name, info.uuid, &n_targets, &type, NULL);
                        if (r == -ENXIO)
                                continue;
                        if (r < 0)
                                return r;
                        if (n_targets != 1 || strcmp(type, MPF_MULTIPATH_TARGET) != 0)
                                continue;
                        r = strv_extend(&names, n->name);
                        if (r < 0)
                                return r;
                } while (next);
        }
        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, strv_length(names), sizeof(char *), cmp_names); /* stable output order */
        *ret_names = TAKE_PTR(names);
        return 0;
}

int mpf_dm_cookie_new(uint32_t *ret)
{
        *ret = 0;
        if (!dm_udev_get_sync_support())
                return 0;
        return dm_udev_create_cookie(ret) ? 0 : -EIO;
}

int mpf_dm_cookie_ready(uint32_t cookie)
{
        int ready = 0;

        if (cookie == 0 || !dm_udev_get_sync_support()) {
                /* no semaphore to wait for; this also runs libdm's own node updates */
                (void)dm_udev_wait(cookie);
                return 1;
        }
        if (!dm_udev_wait_immediate(cookie, &ready))
                return -EIO;
        return ready;
}

int mpf_dm_cookie_abandon(uint32_t cookie)
{
        if (cookie == 0 || !dm_udev_get_sync_support())
                return 0;
        for (unsigned i = 0; i < COOKIE_ABANDON_MAX; i++) {
                int r = mpf_dm_cookie_ready(cookie);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (!dm_udev_complete(cookie))
                        return -EIO;
        }
        return -EBUSY;
}
