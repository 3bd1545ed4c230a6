/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dm-bench: the benchmark's helpers for tests/vm/bench (run in the lab guest).
 *
 *   dm-bench save FILE
 *       write every dm-multipath map (DM UUID "mpath-...") as one line
 *       "NAME UUID START LENGTH TYPE PARAMS", sorted by name
 *   dm-bench create FILE [N]
 *       create the first N maps of FILE (default all) with their saved name,
 *       UUID and table, in this one process, every create under one udev
 *       cookie, waited for once at the end (as lvm does)
 *   dm-bench remove-all
 *       the sequential floor: one process removes every dm-multipath map,
 *       one after the other, through libdevmapper without udev
 *       synchronisation (like dmsetup --noudevsync); the caller runs one
 *       `udevadm settle` afterwards
 *   dm-bench remove-all --threads T
 *       the concurrent floor: the same maps removed by T threads side by
 *       side, each issuing raw DM_DEV_REMOVE ioctls on /dev/mapper/control
 *       (a remove waits in the kernel outside device-mapper's locks, so the
 *       waits overlap); one `udevadm settle` afterwards as above
 *   dm-bench cheap-maps FILE N
 *       write to FILE, in `save`'s format, N multipath maps "cheap0000"...
 *       whose two paths are the null_blk devices nullb(2i) and nullb(2i+1)
 *       (modprobe null_blk nr_devices=2N first); `create FILE` makes them
 *   dm-bench time OUT [--settle] -- CMD [ARG...]
 *       run CMD, then with --settle `udevadm settle`; append to OUT one line
 *       "rc=R cmd_ms=C total_ms=T utime_ms=U stime_ms=S maxrss_kb=M"
 *       (wall times on CLOCK_MONOTONIC, CPU and peak RSS of CMD from wait4)
 *
 * Exit 0 on success, 1 when an operation failed, 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MPATH_PREFIX "mpath-"

static int usage(void);

struct map {
        char *name;
        char *uuid;
        uint64_t start, length;
        char *type;
        char *params;
};

static int cmp_name(const void *a, const void *b)
{
        return strcmp(((const struct map *)a)->name, ((const struct map *)b)->name);
}

/* Read one map's table; true if it is a single-target multipath map with an mpath- UUID. */
static bool read_map(const char *name, struct map *m)
{
        struct dm_task *dmt = dm_task_create(DM_DEVICE_TABLE);
        uint64_t start, length;
        char *type = NULL, *params = NULL;
        const char *uuid;
        bool ok = false;

        if (!dmt)
                return false;
        if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt))
                goto out;
        uuid = dm_task_get_uuid(dmt);
        if (!uuid || strncmp(uuid, MPATH_PREFIX, strlen(MPATH_PREFIX)) != 0)
                goto out;
        if (dm_get_next_target(dmt, NULL, &start, &length, &type, &params) != NULL)
                goto out; /* more than one target: not a multipath map */
        if (!type || strcmp(type, "multipath") != 0)
                goto out;
        if (m) {
                m->name = strdup(name);
                m->uuid = strdup(uuid);
                m->start = start;
                m->length = length;
                m->type = strdup(type);
                m->params = strdup(params ? params : "");
                if (!m->name || !m->uuid || !m->type || !m->params)
                        goto out;
        }
        ok = true;
out:
        dm_task_destroy(dmt);
        return ok;
}

/* Every multipath map, sorted by name. Returns the count, -1 on error. */
static int list_maps(struct map **out)
{
        struct dm_task *dmt = dm_task_create(DM_DEVICE_LIST);
        struct dm_names *names;
        struct map *maps = NULL;
        int n = 0, cap = 0;
        unsigned next;

        if (!dmt || !dm_task_run(dmt) || !(names = dm_task_get_names(dmt))) {
                if (dmt)
                        dm_task_destroy(dmt);
                return -1;
        }
        if (names->dev) {
                do {
                        if (n == cap) {
                                cap = cap ? 2 * cap : 64;
                                maps = realloc(maps, cap * sizeof(*maps));
                                if (!maps) {
                                        dm_task_destroy(dmt);
                                        return -1;
                                }
                        }
                        memset(&maps[n], 0, sizeof(maps[n]));
                        if (read_map(names->name, &maps[n]))
                                n++;
                        next = names->next;
                        names = (struct dm_names *)((char *)names + next);
                } while (next);
        }
        dm_task_destroy(dmt);
        qsort(maps, n, sizeof(*maps), cmp_name);
        *out = maps;
        return n;
}

static int cmd_save(const char *file)
{
        struct map *maps = NULL;
        int n = list_maps(&maps);
        FILE *f;

        if (n < 0) {
                fprintf(stderr, "dm-bench: cannot list the dm devices\n");
                return 1;
        }
        f = fopen(file, "w");
        if (!f) {
                fprintf(stderr, "dm-bench: %s: %s\n", file, strerror(errno));
                return 1;
        }
        for (int i = 0; i < n; i++)
                fprintf(f, "%s %s %" PRIu64 " %" PRIu64 " %s %s\n", maps[i].name, maps[i].uuid,
                        maps[i].start, maps[i].length, maps[i].type, maps[i].params);
        if (fclose(f) != 0) {
                fprintf(stderr, "dm-bench: %s: %s\n", file, strerror(errno));
                return 1;
        }
        printf("%d maps saved\n", n);
        return 0;
}

static int cmd_create(const char *file, long want)
{
        char line[8192];
        uint32_t cookie = 0;
        int created = 0, failed = 0;
        FILE *f = fopen(file, "r");

        if (!f) {
                fprintf(stderr, "dm-bench: %s: %s\n", file, strerror(errno));
                return 1;
        }
        while ((want < 0 || created + failed < want) && fgets(line, sizeof(line), f)) {
                char name[256], uuid[256], type[64];
                uint64_t start, length;
                int off = 0;
                struct dm_task *dmt;

                line[strcspn(line, "\n")] = '\0';
                if (sscanf(line, "%255s %255s %" SCNu64 " %" SCNu64 " %63s %n", name, uuid, &start, &length,
                           type, &off) != 5 ||
                    off == 0) {
                        fprintf(stderr, "dm-bench: %s: bad line: %s\n", file, line);
                        failed++;
                        continue;
                }
                dmt = dm_task_create(DM_DEVICE_CREATE);
                if (!dmt || !dm_task_set_name(dmt, name) || !dm_task_set_uuid(dmt, uuid) ||
                    !dm_task_add_target(dmt, start, length, type, line + off) ||
                    !dm_task_set_cookie(dmt, &cookie, 0) || !dm_task_run(dmt)) {
                        fprintf(stderr, "dm-bench: cannot create %s\n", name);
                        failed++;
                } else {
                        created++;
                }
                if (dmt)
                        dm_task_destroy(dmt);
        }
        fclose(f);
        if (cookie && !dm_udev_wait(cookie)) {
                fprintf(stderr, "dm-bench: udev wait failed\n");
                failed++;
        }
        printf("%d maps created\n", created);
        if (want >= 0 && created < want)
                failed++;
        return failed ? 1 : 0;
}

static int cmd_remove_all(void)
{
        struct map *maps = NULL;
        int n, failed = 0;

        dm_udev_set_sync_support(0);
        n = list_maps(&maps);
        if (n < 0) {
                fprintf(stderr, "dm-bench: cannot list the dm devices\n");
                return 1;
        }
        for (int i = 0; i < n; i++) {
                struct dm_task *dmt = dm_task_create(DM_DEVICE_REMOVE);

                if (!dmt || !dm_task_set_name(dmt, maps[i].name) || !dm_task_run(dmt)) {
                        fprintf(stderr, "dm-bench: cannot remove %s\n", maps[i].name);
                        failed++;
                }
                if (dmt)
                        dm_task_destroy(dmt);
        }
        dm_task_update_nodes();
        printf("%d maps removed, %d failed\n", n - failed, failed);
        return failed ? 1 : 0;
}

/*
 * The concurrent floor. Threads call the DM ioctl themselves instead of going
 * through libdevmapper: libdevmapper keeps process-wide state without a lock
 * (the control fd opened on first use, the stack of /dev/mapper node
 * operations every remove appends to, the udev cookie semaphores), so
 * dm_task_run() is not safe to call from several threads at once. The
 * kernel's side is: every ioctl on the control fd carries its own struct
 * dm_ioctl, and DM_DEV_REMOVE takes device-mapper's hash lock only around the
 * lookup and the unhash. No udev flags are passed (as with dmsetup
 * --noudevsync); udev removes the /dev/mapper nodes itself.
 */
struct remover {
        const struct map *maps;
        int n;
        int control_fd;
        atomic_int next;
        atomic_int failed;
};

static int dm_remove_raw(int control_fd, const char *name)
{
        struct dm_ioctl dmi = {
                .version = {DM_VERSION_MAJOR, 0, 0},
                .data_size = sizeof(dmi),
                .data_start = sizeof(dmi),
        };

        if (strlen(name) >= sizeof(dmi.name))
                return -ENAMETOOLONG;
        strcpy(dmi.name, name);
        if (ioctl(control_fd, DM_DEV_REMOVE, &dmi) < 0)
                return -errno;
        return 0;
}

static void *remover_thread(void *arg)
{
        struct remover *r = arg;
        int i;

        while ((i = atomic_fetch_add(&r->next, 1)) < r->n) {
                int e = dm_remove_raw(r->control_fd, r->maps[i].name);

                if (e < 0) {
                        fprintf(stderr, "dm-bench: cannot remove %s: %s\n", r->maps[i].name, strerror(-e));
                        atomic_fetch_add(&r->failed, 1);
                }
        }
        return NULL;
}

static int cmd_remove_all_threads(long threads)
{
        struct remover r = {.next = 0, .failed = 0};
        struct map *maps = NULL;
        pthread_t *tids;
        long started = 0;

        if (threads < 1 || threads > 1024)
                return usage();
        /* The list is read before any thread starts: libdevmapper is used by this thread only. */
        r.n = list_maps(&maps);
        if (r.n < 0) {
                fprintf(stderr, "dm-bench: cannot list the dm devices\n");
                return 1;
        }
        r.maps = maps;
        r.control_fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (r.control_fd < 0) {
                fprintf(stderr, "dm-bench: /dev/mapper/control: %s\n", strerror(errno));
                return 1;
        }
        tids = calloc(threads, sizeof(*tids));
        if (!tids)
                return 1;
        for (; started < threads; started++) {
                int e = pthread_create(&tids[started], NULL, remover_thread, &r);

                if (e != 0) {
                        fprintf(stderr, "dm-bench: cannot start thread %ld: %s\n", started, strerror(e));
                        break;
                }
        }
        if (started == 0)
                remover_thread(&r);
        for (long t = 0; t < started; t++)
                pthread_join(tids[t], NULL);
        free(tids);
        close(r.control_fd);
        printf("%d maps removed by %ld thread(s), %d failed\n", r.n - r.failed, started ? started : 1,
               (int)r.failed);
        return r.failed ? 1 : 0;
}

static int cmd_cheap_maps(const char *file, long n)
{
        FILE *f;

        if (n < 1 || n > 10000)
                return usage();
        f = fopen(file, "w");
        if (!f) {
                fprintf(stderr, "dm-bench: %s: %s\n", file, strerror(errno));
                return 1;
        }
        for (long i = 0; i < n; i++) {
                char dev[2][32];
                uint64_t sectors = 0;

                for (int p = 0; p < 2; p++) {
                        char path[64], size[64];
                        FILE *d;
                        bool ok;

                        snprintf(path, sizeof(path), "/sys/block/nullb%ld/dev", 2 * i + p);
                        d = fopen(path, "re");
                        ok = d && fscanf(d, "%31s", dev[p]) == 1;
                        if (d)
                                fclose(d);
                        snprintf(path, sizeof(path), "/sys/block/nullb%ld/size", 2 * i + p);
                        d = fopen(path, "re");
                        ok = ok && d && fgets(size, sizeof(size), d);
                        if (d)
                                fclose(d);
                        if (!ok) {
                                fprintf(stderr,
                                        "dm-bench: nullb%ld is missing (modprobe null_blk nr_devices=%ld)\n",
                                        2 * i + p, 2 * n);
                                fclose(f);
                                return 1;
                        }
                        sectors = strtoull(size, NULL, 10);
                }
                /* as multipathd writes them: queueing, round-robin, one path group with both paths */
                fprintf(f,
                        "cheap%04ld mpath-cheap%04ld 0 %" PRIu64 " multipath 1 queue_if_no_path 0 1 1 "
                        "round-robin 0 2 1 %s 1 %s 1\n",
                        i, i, sectors, dev[0], dev[1]);
        }
        if (fclose(f) != 0) {
                fprintf(stderr, "dm-bench: %s: %s\n", file, strerror(errno));
                return 1;
        }
        printf("%ld cheap maps written\n", n);
        return 0;
}

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int spawn(char *const argv[], int *status, struct rusage *ru)
{
        pid_t pid = fork();

        if (pid < 0)
                return -1;
        if (pid == 0) {
                execvp(argv[0], argv);
                fprintf(stderr, "dm-bench: %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        while (wait4(pid, status, 0, ru) < 0)
                if (errno != EINTR)
                        return -1;
        return 0;
}

static int cmd_time(const char *out, bool settle, char *const argv[])
{
        struct rusage ru = {0}, ru2;
        int status, st2, rc;
        double t0, t1, t2;
        FILE *f;

        t0 = now_ms();
        if (spawn(argv, &status, &ru) < 0) {
                fprintf(stderr, "dm-bench: cannot run %s: %s\n", argv[0], strerror(errno));
                return 1;
        }
        t1 = now_ms();
        if (settle) {
                char *const sargv[] = {"udevadm", "settle", "-t", "600", NULL};

                if (spawn(sargv, &st2, &ru2) < 0 || !WIFEXITED(st2) || WEXITSTATUS(st2) != 0)
                        fprintf(stderr, "dm-bench: udevadm settle failed\n");
        }
        t2 = now_ms();
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        f = fopen(out, "a");
        if (!f) {
                fprintf(stderr, "dm-bench: %s: %s\n", out, strerror(errno));
                return 1;
        }
        fprintf(f, "rc=%d cmd_ms=%.1f total_ms=%.1f utime_ms=%.1f stime_ms=%.1f maxrss_kb=%ld\n", rc,
                t1 - t0, t2 - t0, ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
                ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3, ru.ru_maxrss);
        fclose(f);
        return 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: dm-bench save FILE | create FILE [N] | remove-all [--threads T] |\n"
                        "       cheap-maps FILE N | time OUT [--settle] -- CMD [ARG...]\n");
        return 2;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage();
        if (strcmp(argv[1], "save") == 0 && argc == 3)
                return cmd_save(argv[2]);
        if (strcmp(argv[1], "create") == 0 && (argc == 3 || argc == 4))
                return cmd_create(argv[2], argc == 4 ? strtol(argv[3], NULL, 10) : -1);
        if (strcmp(argv[1], "remove-all") == 0 && argc == 2)
                return cmd_remove_all();
        if (strcmp(argv[1], "remove-all") == 0 && argc == 4 && strcmp(argv[2], "--threads") == 0)
                return cmd_remove_all_threads(strtol(argv[3], NULL, 10));
        if (strcmp(argv[1], "cheap-maps") == 0 && argc == 4)
                return cmd_cheap_maps(argv[2], strtol(argv[3], NULL, 10));
        if (strcmp(argv[1], "time") == 0 && argc >= 5) {
                bool settle = false;
                int i = 3;

                if (strcmp(argv[i], "--settle") == 0) {
                        settle = true;
                        i++;
                }
                if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc)
                        return usage();
                return cmd_time(argv[2], settle, argv + i + 1);
        }
        return usage();
}
