/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "usage.h"

void mpf_usage_roots_from_env(struct mpf_usage_roots *ret)
{
        const char *s = getenv(MPF_SYSFS_ENV), *p = getenv(MPF_PROCFS_ENV);

        *ret = (struct mpf_usage_roots){
                .sysfs = s && *s ? s : "/sys",
                .procfs = p && *p ? p : "/proc",
                .run = getpid(),
                .self = getpid(),
        };
}

void mpf_usage_roots_forked(struct mpf_usage_roots *roots)
{
        roots->self = getpid();
}

/* The parent's pid from <procfs>/PID/stat ("PID (comm) S PPID ..."; comm may hold anything, so
 * the fields after its last ')' are read), or 0. */
static pid_t read_ppid(const char *procfs, pid_t pid)
{
        _cleanup_(freep) char *p = NULL, *line = NULL;
        const char *s;
        int ppid;
        char state;

        if (asprintf_safe(&p, "%s/%d/stat", procfs, (int)pid) < 0 || read_one_line(p, &line) < 0)
                return 0;
        s = strrchr(line, ')');
        if (!s || sscanf(s + 1, " %c %d", &state, &ppid) != 2 || ppid < 0)
                return 0;
        return (pid_t)ppid;
}

/* The run forks its pool workers, the guardian and write-back and path lock workers; a pool
 * worker forks its own write-back and path lock workers; the guardian its put-back processes. */
#define OWN_GENERATIONS_MAX 3

const char *mpf_usage_own_role(const struct mpf_usage_roots *roots, pid_t pid, const char *comm)
{
        bool in_worker =
                roots->run > 0 && roots->self > 0 && roots->self != roots->run; /* a pool worker's scan */
        pid_t p = pid, parent = 0;
        unsigned up = 0;

        if (pid == roots->self)
                return in_worker ? "the pool worker that flushes it"
                                 : "the run's main process, which flushes it";
        if (roots->run <= 0)
                return NULL;
        while (p != roots->run) {
                if (p <= 1 || up == OWN_GENERATIONS_MAX)
                        return NULL;
                p = read_ppid(roots->procfs, p);
                if (up++ == 0)
                        parent = p;
        }
        if (up == 0)
                return "the run's main process";
        if (strcmp(comm, "mpath-flush-gd") == 0)
                return up == 1 ? "the guardian" : "a put-back process of the guardian";
        if (strcmp(comm, "mpath-flush-pl") == 0)
                return "a path lock worker";
        if (up == 1 && strcmp(comm, "mpath-flush-w") == 0)
                return "a pool worker";
        /* a write-back worker bears the name of the process that forked it */
        if (up == 1 && strcmp(comm, "mpath-flush") == 0)
                return "the run's write-back worker";
        if (up == 2 && strcmp(comm, "mpath-flush-w") == 0)
                return in_worker && parent == roots->self
                               ? "the write-back worker of the pool worker that flushes it"
                               : "a pool worker's write-back worker";
        return "a process of the run";
}

static int parse_devt(const char *s, dev_t *ret)
{
        unsigned ma, mi;
        char tail;

        if (sscanf(s, "%u:%u%c", &ma, &mi, &tail) != 2)
                return -EINVAL;
        *ret = makedev(ma, mi);
        return 0;
}

static int read_attr(const char *sysfs, const char *dev, const char *attr, char **ret)
{
        _cleanup_(freep) char *p = NULL;

        if (asprintf_safe(&p, "%s/block/%s/%s", sysfs, dev, attr) < 0)
                return -ENOMEM;
        return read_one_line(p, ret);
}

int mpf_sysfs_dm_kname(const char *sysfs, dev_t devt, char *ret, size_t size)
{
        _cleanup_(freep) char *p = NULL;
        char link[PATH_MAX];
        const char *base;
        ssize_t n;

        if (asprintf_safe(&p, "%s/dev/block/%u:%u", sysfs, major(devt), minor(devt)) < 0)
                return -ENOMEM;
        n = readlink(p, link, sizeof(link) - 1);
        if (n < 0)
                return errno == ENOENT ? -ENODEV : negative_errno();
        link[n] = 0;
        base = strrchr(link, '/');
        base = base ? base + 1 : link;
        if (!startswith(base, "dm-"))
                return -ENODEV;
        if (strlen(base) >= size)
                return -ENAMETOOLONG;
        strcpy(ret, base);
        return 0;
}

int mpf_sysfs_sectors_written(const char *sysfs, const char *kname, uint64_t *ret)
{
        _cleanup_(freep) char *line = NULL;
        unsigned long long v[7];
        int r;

        /* Documentation/block/stat.rst: read I/Os, read merges, read sectors, read ticks, write I/Os,
         * write merges, write sectors */
        r = read_attr(sysfs, kname, "stat", &line);
        if (r < 0)
                return r;
        if (sscanf(line, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6]) != 7)
                return -EBADMSG;
        *ret = v[6];
        return 0;
}

static int entry_ok(const struct dirent *de)
{
        return de->d_name[0] != '.';
}

int mpf_sysfs_partitions(const char *sysfs, const char *kname, const char *map_uuid, struct mpf_target **ret,
                         size_t *ret_n)
{
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(freep) struct mpf_target *t = NULL;
        size_t n = 0;
        struct dirent *de;

        if (asprintf_safe(&dir, "%s/block/%s/holders", sysfs, kname) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
        } else
                while ((de = readdir(d))) {
                        _cleanup_(freep) char *uuid = NULL, *name = NULL, *dev = NULL;
                        struct mpf_target *nt;
                        dev_t devt;

                        if (!entry_ok(de))
                                continue;
                        if (read_attr(sysfs, de->d_name, "dm/uuid", &uuid) < 0)
                                continue; /* not a dm device: a holder, not a partition map */
                        if (!mpf_uuid_is_partition_of(uuid, map_uuid))
                                continue;
                        if (read_attr(sysfs, de->d_name, "dm/name", &name) < 0 ||
                            read_attr(sysfs, de->d_name, "dev", &dev) < 0 || parse_devt(dev, &devt) < 0)
                                continue; /* vanished meanwhile */
                        if (strlen(name) >= MPF_NAME_MAX || strlen(uuid) >= MPF_UUID_MAX ||
                            strlen(de->d_name) >= sizeof(t->kname))
                                continue;
                        nt = realloc(t, sizeof(*t) * (n + 1));
                        if (!nt)
                                return -ENOMEM;
                        t = nt;
                        t[n] = (struct mpf_target){.devt = devt};
                        strcpy(t[n].name, name);
                        strcpy(t[n].uuid, uuid);
                        strcpy(t[n].kname, de->d_name);
                        n++;
                }
        *ret = TAKE_PTR(t);
        *ret_n = n;
        return 0;
}

struct slave {
        char *name;
        dev_t devt;
};

static int slave_cmp(const void *a, const void *b)
{
        const struct slave *x = a, *y = b;
        return x->devt < y->devt ? -1 : x->devt > y->devt ? 1 : 0;
}

int mpf_sysfs_slaves(const char *sysfs, const char *kname, char ***ret_names, dev_t **ret_devts,
                     size_t *ret_n)
{
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(freep) struct slave *s = NULL;
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(freep) dev_t *devts = NULL;
        size_t n = 0;
        struct dirent *de;
        int r = 0;

        if (asprintf_safe(&dir, "%s/block/%s/slaves", sysfs, kname) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                _cleanup_(freep) char *p = NULL, *dev = NULL;
                struct slave *ns;
                dev_t devt;

                if (!entry_ok(de))
                        continue;
                if (asprintf_safe(&p, "%s/%s/dev", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (read_one_line(p, &dev) < 0 || parse_devt(dev, &devt) < 0)
                        continue;
                ns = realloc(s, sizeof(*s) * (n + 1));
                if (!ns) {
                        r = -ENOMEM;
                        break;
                }
                s = ns;
                s[n].name = strdup(de->d_name);
                s[n].devt = devt;
                if (!s[n].name) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r >= 0 && n > 0)
                qsort(s, n, sizeof(*s), slave_cmp);
        devts = calloc(n ? n : 1, sizeof(dev_t));
        if (!devts)
                r = -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (r >= 0) {
                        devts[i] = s[i].devt;
                        r = strv_push(&names, s[i].name);
                } else
                        free(s[i].name);
        }
        if (r < 0)
                return r;
        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        *ret_names = TAKE_PTR(names);
        *ret_devts = TAKE_PTR(devts);
        *ret_n = n;
        return 0;
}

void mpf_unescape_mountinfo(char *s)
{
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = 0;
}

/* Does a path name (from /proc/swaps or an fd link) refer to target t? */
static bool path_is_target(const char *path, const struct mpf_target *t)
{
        struct stat st;
        const char *s;

        /* device nodes live in /dev; never stat() anything else (it may hang on a dead NFS) */
        s = startswith(path, "/dev/");
        if (!s)
                return false;
        if (stat(path, &st) >= 0 && S_ISBLK(st.st_mode))
                return st.st_rdev == t->devt;
        /* not resolvable here (deleted node, captured fixture): compare names */
        if (strcmp(s, t->kname) == 0)
                return true;
        s = startswith(s, "mapper/");
        return s && strcmp(s, t->name) == 0;
}

/* Which target a path name refers to: its index, or -1. */
static ssize_t target_index(const char *path, const struct mpf_target *targets, size_t n_targets)
{
        for (size_t i = 0; i < n_targets; i++)
                if (path_is_target(path, &targets[i]))
                        return (ssize_t)i;
        return -1;
}

static int scan_holders(const struct mpf_usage_roots *roots, const struct mpf_target *targets,
                        size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        for (size_t i = 0; i < n_targets; i++) {
                _cleanup_(freep) char *dir = NULL;
                _cleanup_(closedirp) DIR *d = NULL;
                struct dirent *de;

                if (asprintf_safe(&dir, "%s/block/%s/holders", roots->sysfs, targets[i].kname) < 0)
                        return -ENOMEM;
                d = opendir(dir);
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        _cleanup_(freep) char *name = NULL;
                        bool own = false;
                        int r;

                        if (!entry_ok(de))
                                continue;
                        if (i == 0)
                                for (size_t j = 1; j < n_targets; j++)
                                        if (strcmp(de->d_name, targets[j].kname) == 0)
                                                own = true;
                        if (i == 0)
                                (*explained)++; /* every holder of the map holds one open */
                        if (own)
                                continue;
                        if (strv_contains(b->holders, de->d_name))
                                continue;
                        r = strv_extend(&b->holders, de->d_name);
                        if (r < 0)
                                return r;
                        /* LVM, another map: its dm name tells a human more than "dm-3" */
                        if (read_attr(roots->sysfs, de->d_name, "dm/name", &name) < 0) {
                                name = strdup("");
                                if (!name)
                                        return -ENOMEM;
                        }
                        r = strv_push(&b->holder_names, TAKE_PTR(name));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int scan_swaps(const struct mpf_usage_roots *roots, const struct mpf_target *targets,
                      size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        _cleanup_(freep) char *p = NULL, *line = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t sz = 0;
        bool first = true;

        if (asprintf_safe(&p, "%s/swaps", roots->procfs) < 0)
                return -ENOMEM;
        f = fopen(p, "re");
        if (!f)
                return errno == ENOENT ? 0 : negative_errno();
        while (getline(&line, &sz, f) > 0) {
                ssize_t i;
                char *end;
                int r;

                if (first) { /* header */
                        first = false;
                        continue;
                }
                end = line + strcspn(line, " \t\n");
                *end = 0;
                if (!*line)
                        continue;
                mpf_unescape_mountinfo(line);
                i = target_index(line, targets, n_targets);
                if (i < 0)
                        continue;
                r = strv_extend(&b->swaps, line);
                if (r < 0)
                        return r;
                if (i == 0)
                        (*explained)++;
        }
        return 0;
}

/* Loop devices whose backing file is the map or a partition map. A loop device opens its backing
 * file like any process, but leaves no holders/ link and no fd in /proc: only its sysfs
 * attribute names the file (for a block device, the node it was set up with, as d_path() shows
 * it: /dev/dm-0 for /dev/mapper/mpatha). */
static int scan_loops(const struct mpf_usage_roots *roots, const struct mpf_target *targets,
                      size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (asprintf_safe(&dir, "%s/block", roots->sysfs) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_(freep) char *backing = NULL;
                ssize_t i;
                int r;

                if (!startswith(de->d_name, "loop"))
                        continue;
                if (read_attr(roots->sysfs, de->d_name, "loop/backing_file", &backing) < 0)
                        continue; /* not bound */
                i = target_index(backing, targets, n_targets);
                if (i < 0)
                        continue;
                r = mpf_blockers_add_kernel_user(b, "loop", de->d_name, targets[i].name);
                if (r < 0)
                        return r;
                if (i == 0)
                        (*explained)++;
        }
        return 0;
}

/* An external ext4/jbd2 journal on the map: jbd2 names its /proc/fs/jbd2 entry after the journal
 * device alone ("dm-0"; a journal inside a file system is "dm-0-8"). */
static int scan_journals(const struct mpf_usage_roots *roots, const struct mpf_target *targets,
                         size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        for (size_t i = 0; i < n_targets; i++) {
                _cleanup_(freep) char *p = NULL;
                int r;

                if (asprintf_safe(&p, "%s/fs/jbd2/%s", roots->procfs, targets[i].kname) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) < 0)
                        continue;
                r = mpf_blockers_add_kernel_user(b, "journal", targets[i].kname, targets[i].name);
                if (r < 0)
                        return r;
                if (i == 0)
                        (*explained)++;
        }
        return 0;
}

/* A btrfs member device: its mounts show the file system's anonymous device number, not ours;
 * /sys/fs/btrfs/<fsid>/devices/<kname> names it. */
static int scan_btrfs(const struct mpf_usage_roots *roots, const struct mpf_target *targets,
                      size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (asprintf_safe(&dir, "%s/fs/btrfs", roots->sysfs) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                if (!entry_ok(de))
                        continue;
                for (size_t i = 0; i < n_targets; i++) {
                        _cleanup_(freep) char *p = NULL;
                        int r;

                        if (asprintf_safe(&p, "%s/%s/devices/%s", dir, de->d_name, targets[i].kname) < 0)
                                return -ENOMEM;
                        if (access(p, F_OK) < 0)
                                continue;
                        r = mpf_blockers_add_kernel_user(b, "btrfs", de->d_name, targets[i].name);
                        if (r < 0)
                                return r;
                        if (i == 0)
                                (*explained)++;
                }
        }
        return 0;
}

static int scan_mountinfo(const char *path, pid_t pid, const struct mpf_target *targets, size_t n_targets,
                          struct mpf_blockers *b, bool *map_mounted)
{
        _cleanup_(freep) char *line = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t sz = 0;

        f = fopen(path, "re");
        if (!f)
                return 0; /* process exited */
        while (getline(&line, &sz, f) > 0) {
                char *field[5], *save = NULL, *tok = line;
                dev_t devt;
                size_t k;

                for (k = 0; k < 5; k++) {
                        field[k] = strtok_r(tok, " \n", &save);
                        tok = NULL;
                        if (!field[k])
                                break;
                }
                if (k < 5 || parse_devt(field[2], &devt) < 0)
                        continue;
                for (size_t i = 0; i < n_targets; i++)
                        if (targets[i].devt == devt) {
                                int r;

                                mpf_unescape_mountinfo(field[4]);
                                r = mpf_blockers_add_mount(b, targets[i].name, field[4], pid);
                                if (r < 0)
                                        return r;
                                if (i == 0)
                                        *map_mounted = true;
                        }
        }
        return 0;
}

static int read_comm(const char *procfs, pid_t pid, char **ret)
{
        _cleanup_(freep) char *p = NULL;

        if (asprintf_safe(&p, "%s/%d/comm", procfs, (int)pid) < 0)
                return -ENOMEM;
        if (read_one_line(p, ret) < 0) {
                *ret = strdup("?");
                if (!*ret)
                        return -ENOMEM;
        }
        return 0;
}

static int scan_fds(const struct mpf_usage_roots *roots, pid_t pid, const struct mpf_target *targets,
                    size_t n_targets, struct mpf_blockers *b, unsigned *explained)
{
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        const char *own = NULL; /* one of the run's processes: which */
        bool own_known = false;
        struct dirent *de;

        if (asprintf_safe(&dir, "%s/%d/fd", roots->procfs, (int)pid) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return 0; /* exited, or not ours to see */
        while ((de = readdir(d))) {
                _cleanup_(freep) char *p = NULL;
                char link[PATH_MAX];
                struct stat st;
                bool have_stat;
                ssize_t n;

                if (!entry_ok(de))
                        continue;
                if (asprintf_safe(&p, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                n = readlink(p, link, sizeof(link) - 1);
                link[n < 0 ? 0 : n] = 0;
                /* Only device nodes can be our map. Never stat() other files: a file on a hung
                 * network file system would hang us. */
                if (n <= 0 || !startswith(link, "/dev/"))
                        continue;
                have_stat = stat(p, &st) >= 0 && S_ISBLK(st.st_mode);
                for (size_t i = 0; i < n_targets; i++) {
                        _cleanup_(freep) char *comm = NULL;
                        bool match;
                        int r;

                        if (have_stat)
                                match = st.st_rdev == targets[i].devt;
                        else
                                match = path_is_target(link, &targets[i]);
                        if (!match)
                                continue;
                        r = read_comm(roots->procfs, pid, &comm);
                        if (r < 0)
                                return r;
                        r = mpf_blockers_add_opener(b, pid, comm, targets[i].name);
                        if (r < 0)
                                return r;
                        if (!own_known)
                                own = mpf_usage_own_role(roots, pid, comm);
                        own_known = true;
                        if (own) {
                                _cleanup_(freep) char *fd = NULL;

                                if (asprintf_safe(&fd, "fd %s -> %s", de->d_name, link) < 0)
                                        return -ENOMEM;
                                r = mpf_blockers_mark_own(b, pid, targets[i].name, own, fd);
                                if (r < 0)
                                        return r;
                        }
                        if (i == 0)
                                (*explained)++;
                        break;
                }
        }
        return 0;
}

static int pid_from_name(const char *s, pid_t *ret)
{
        char *end;
        long v;

        if (!(*s >= '1' && *s <= '9'))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v <= 0 || v > INT_MAX)
                return -EINVAL;
        *ret = (pid_t)v;
        return 0;
}

int mpf_scan_usage(const struct mpf_usage_roots *roots, const struct mpf_target *targets, size_t n_targets,
                   usec_t deadline, struct mpf_blockers *ret, unsigned *ret_explained)
{
        struct mpf_blockers b = {};
        _cleanup_(strv_freep) char **namespaces = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        unsigned explained = 0;
        bool map_mounted = false;
        struct dirent *de;
        int r;

        if (n_targets == 0)
                return -EINVAL;
        /* each partition map holds the map open once; they are also in its holders/ */
        r = scan_holders(roots, targets, n_targets, &b, &explained);
        if (r < 0)
                goto fail;
        r = scan_swaps(roots, targets, n_targets, &b, &explained);
        if (r < 0)
                goto fail;
        r = scan_loops(roots, targets, n_targets, &b, &explained);
        if (r < 0)
                goto fail;
        r = scan_journals(roots, targets, n_targets, &b, &explained);
        if (r < 0)
                goto fail;
        r = scan_btrfs(roots, targets, n_targets, &b, &explained);
        if (r < 0)
                goto fail;

        d = opendir(roots->procfs);
        if (!d) {
                r = negative_errno();
                goto fail;
        }
        while ((de = readdir(d))) {
                _cleanup_(freep) char *ns = NULL, *p = NULL;
                char key[128];
                ssize_t n;
                pid_t pid;

                if (pid_from_name(de->d_name, &pid) < 0)
                        continue;
                /* thousands of processes, each a few files: the deadline bounds the walk */
                if (deadline_passed(deadline, now_monotonic())) {
                        r = -ETIMEDOUT;
                        goto fail;
                }
                /* Our own mount namespace is either one another process shows first (pid 1's,
                 * when run by hand) or a copy systemd made for our sandbox, whose mounts are the
                 * host's that other processes show. Our fds are looked at: one of the map's here
                 * is a leak of ours, named as such. */
                if (pid == roots->self || pid == roots->run)
                        goto fds;

                /* mounts: once per mount namespace */
                if (asprintf_safe(&ns, "%s/%d/ns/mnt", roots->procfs, (int)pid) < 0 ||
                    asprintf_safe(&p, "%s/%d/mountinfo", roots->procfs, (int)pid) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                n = readlink(ns, key, sizeof(key) - 1);
                if (n > 0) {
                        key[n] = 0;
                        if (strv_contains(namespaces, key))
                                goto fds;
                        r = strv_extend(&namespaces, key);
                        if (r < 0)
                                goto fail;
                }
                /* no namespace link (kernel thread, fixture without it): read its table anyway */
                r = scan_mountinfo(p, pid, targets, n_targets, &b, &map_mounted);
                if (r < 0)
                        goto fail;
        fds:
                r = scan_fds(roots, pid, targets, n_targets, &b, &explained);
                if (r < 0)
                        goto fail;
        }
        if (map_mounted)
                explained++; /* one superblock, however many mounts and namespaces */

        *ret = b;
        if (ret_explained)
                *ret_explained = explained;
        return 0;
fail:
        mpf_blockers_done(&b);
        return r;
}
