/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <unistd.h>

#include "macro.h"
#include "usage.h"
#include "tests.h"

static char sysfs[512], procfs[512], sysfs_empty[512], sysfs_ku[512], procfs_ku[512], procfs_own[512];

static void setup(void)
{
        const char *f = getenv("MPF_FIXTURES");

        ck_assert_msg(f && *f, "MPF_FIXTURES not set by meson");
        snprintf(sysfs, sizeof(sysfs), "%s/sys-mpatha", f);
        snprintf(procfs, sizeof(procfs), "%s/proc-mpatha", f);
        snprintf(sysfs_empty, sizeof(sysfs_empty), "%s/sys-empty", f);
        snprintf(sysfs_ku, sizeof(sysfs_ku), "%s/sys-kusers", f);
        snprintf(procfs_ku, sizeof(procfs_ku), "%s/proc-kusers", f);
        snprintf(procfs_own, sizeof(procfs_own), "%s/proc-own", f);
}

static const struct mpf_target targets[] = {
        {.name = "mpatha", .kname = "dm-0", .devt = 0},
        {.name = "mpatha-part1", .kname = "dm-1", .devt = 0},
};

static void make_targets(struct mpf_target t[2])
{
        memcpy(t, targets, sizeof(targets));
        t[0].devt = makedev(254, 0);
        t[1].devt = makedev(254, 1);
}

START_TEST(test_kname)
{
        char k[32];

        ck_assert_int_eq(mpf_sysfs_dm_kname(sysfs, makedev(254, 0), k, sizeof(k)), 0);
        ck_assert_str_eq(k, "dm-0");
        ck_assert_int_eq(mpf_sysfs_dm_kname(sysfs, makedev(254, 1), k, sizeof(k)), 0);
        ck_assert_str_eq(k, "dm-1");
        ck_assert_int_eq(mpf_sysfs_dm_kname(sysfs, makedev(8, 0), k, sizeof(k)), -ENODEV);
        ck_assert_int_eq(mpf_sysfs_dm_kname(sysfs, makedev(9, 9), k, sizeof(k)), -ENODEV);
        ck_assert_int_eq(mpf_sysfs_dm_kname(sysfs, makedev(254, 0), k, 3), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_partitions)
{
        _cleanup_(freep) struct mpf_target *t = NULL, *t2 = NULL, *t3 = NULL;
        size_t n = 99;

        ck_assert_int_eq(mpf_sysfs_partitions(sysfs, "dm-0", "mpath-3600140512345678", &t, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(t[0].name, "mpatha-part1");
        ck_assert_str_eq(t[0].kname, "dm-1");
        ck_assert(t[0].devt == makedev(254, 1));
        /* a holder with another UUID (LVM) is not a partition map */
        ck_assert_int_eq(mpf_sysfs_partitions(sysfs, "dm-1", "mpath-3600140512345678", &t2, &n), 0);
        ck_assert_uint_eq(n, 0);
        /* partitions of another map's WWID do not match */
        ck_assert_int_eq(mpf_sysfs_partitions(sysfs, "dm-0", "mpath-3600b", &t3, &n), 0);
        ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_slaves_sorted)
{
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(freep) dev_t *devts = NULL;
        char **n2 = NULL;
        dev_t *d2 = NULL;
        size_t n = 0;

        ck_assert_int_eq(mpf_sysfs_slaves(sysfs, "dm-0", &names, &devts, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(names[0], "sda");
        ck_assert_str_eq(names[1], "sdb");
        ck_assert_ptr_null(names[2]);
        ck_assert(devts[0] == makedev(8, 0));
        ck_assert(devts[1] == makedev(8, 16));
        ck_assert_int_eq(mpf_sysfs_slaves(sysfs, "dm-3", &n2, &d2, &n), -ENOENT);
        ck_assert_ptr_null(n2);
}
END_TEST

START_TEST(test_scan_everything_named)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs, .procfs = procfs, .run = 400, .self = 400};
        struct mpf_target t[2];
        struct mpf_blockers b;
        unsigned explained = 0;
        bool part_mount = false, map_mount = false;

        make_targets(t);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, USEC_INFINITY, &b, &explained), 0);

        /* LVM on the partition map counts; the partition map itself does not */
        ck_assert_uint_eq(strv_length(b.holders), 1);
        ck_assert_str_eq(b.holders[0], "dm-2");
        ck_assert_uint_eq(strv_length(b.holder_names), 1);
        ck_assert_str_eq(b.holder_names[0], "vg0-data");

        /* namespace A once (pid 100 or 200, whichever comes first), namespace B */
        ck_assert_uint_eq(b.n_mounts, 2);
        for (size_t i = 0; i < b.n_mounts; i++) {
                if (strcmp(b.mounts[i].device, "mpatha-part1") == 0) {
                        ck_assert_str_eq(b.mounts[i].target, "/mnt/with space");
                        ck_assert(b.mounts[i].pid == 100 || b.mounts[i].pid == 200);
                        part_mount = true;
                } else {
                        ck_assert_str_eq(b.mounts[i].device, "mpatha");
                        ck_assert_str_eq(b.mounts[i].target, "/srv");
                        ck_assert_int_eq(b.mounts[i].pid, 300);
                        map_mount = true;
                }
        }
        ck_assert(part_mount && map_mount);

        ck_assert_uint_eq(strv_length(b.swaps), 1);
        ck_assert_str_eq(b.swaps[0], "/dev/mapper/mpatha-part1");

        /* and our own fd, named as ours, never left out */
        ck_assert_uint_eq(b.n_openers, 3);
        for (size_t i = 0; i < b.n_openers; i++) {
                if (b.openers[i].pid == 100) {
                        ck_assert_str_eq(b.openers[i].comm, "bash");
                        ck_assert_str_eq(b.openers[i].device, "mpatha");
                        ck_assert_ptr_null(b.openers[i].own);
                } else if (b.openers[i].pid == 400) {
                        ck_assert_str_eq(b.openers[i].device, "mpatha");
                        ck_assert_str_eq(b.openers[i].own,
                                         "the run's main process, which flushes it, fd 7 -> /dev/dm-0");
                } else {
                        ck_assert_int_eq(b.openers[i].pid, 200);
                        ck_assert_str_eq(b.openers[i].comm, "sleep");
                        ck_assert_str_eq(b.openers[i].device, "mpatha-part1");
                        ck_assert_ptr_null(b.openers[i].own);
                }
        }
        ck_assert(mpf_blockers_any_own(&b));
        /* partition map (1) + two fds of pid 100 (2) + ours (1) + the mount of the map (1) */
        ck_assert_uint_eq(explained, 5);
        ck_assert(mpf_blockers_any(&b));
        mpf_blockers_done(&b);
}
END_TEST

START_TEST(test_scan_skips_own_mount_namespace)
{
        /* As if we were pid 300, alone in namespace B: a sandboxed unit's private copy of the
         * host's mounts. What it shows, the host shows too; only namespace A's mount is named. */
        struct mpf_usage_roots roots = {.sysfs = sysfs, .procfs = procfs, .self = 300};
        struct mpf_target t[2];
        struct mpf_blockers b;
        unsigned explained = 0;

        make_targets(t);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, USEC_INFINITY, &b, &explained), 0);
        ck_assert_uint_eq(b.n_mounts, 1);
        ck_assert_str_eq(b.mounts[0].device, "mpatha-part1");
        ck_assert_int_ne(b.mounts[0].pid, 300);
        mpf_blockers_done(&b);
}
END_TEST

START_TEST(test_scan_self_counts_when_not_self)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs, .procfs = procfs, .self = 0};
        struct mpf_target t[2];
        struct mpf_blockers b;
        unsigned explained = 0;
        bool found = false;

        make_targets(t);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, USEC_INFINITY, &b, &explained), 0);
        ck_assert_uint_eq(b.n_openers, 3);
        for (size_t i = 0; i < b.n_openers; i++)
                if (b.openers[i].pid == 400)
                        found = strcmp(b.openers[i].comm, "mpath-flush") == 0;
        ck_assert(found);
        ck_assert_uint_eq(explained, 5);
        mpf_blockers_done(&b);
}
END_TEST

static const char *own_of(const struct mpf_blockers *b, pid_t pid)
{
        for (size_t i = 0; i < b->n_openers; i++)
                if (b->openers[i].pid == pid)
                        return b->openers[i].own ? b->openers[i].own : "(foreign)";
        return "(not listed)";
}

/* Seen from pool worker 410 of run 400 (proc-own, fixtures/README): every process of the run
 * holding the map is named as ours, with its role and fds; another run's worker (500) and a
 * process four generations down (503) are not ours. */
START_TEST(test_scan_names_own_processes)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs_empty, .procfs = procfs_own, .run = 400, .self = 410};
        struct mpf_target t = {.name = "mpatha", .kname = "dm-0", .devt = makedev(254, 0)};
        struct mpf_blockers b;
        unsigned explained = 0;
        const char *s;

        ck_assert_int_eq(mpf_scan_usage(&roots, &t, 1, USEC_INFINITY, &b, &explained), 0);
        ck_assert_uint_eq(b.n_openers, 12);
        ck_assert_uint_eq(explained, 13);
        ck_assert_str_eq(own_of(&b, 400), "the run's main process, fd 7 -> /dev/dm-0");
        /* two fds, in either order, the role once */
        s = own_of(&b, 410);
        ck_assert_msg(
                strcmp(s, "the pool worker that flushes it, fd 5 -> /dev/dm-0, fd 8 -> /dev/dm-0") == 0 ||
                        strcmp(s, "the pool worker that flushes it, fd 8 -> /dev/dm-0, fd 5 -> /dev/dm-0") ==
                                0,
                "410: %s", s);
        ck_assert_str_eq(
                own_of(&b, 411),
                "the write-back worker of the pool worker that flushes it, fd 3 -> /dev/mapper/mpatha");
        ck_assert_str_eq(own_of(&b, 412), "a path lock worker, fd 4 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 413), "a pool worker, fd 6 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 414), "a pool worker's write-back worker, fd 3 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 420), "the guardian, fd 9 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 421), "a put-back process of the guardian, fd 9 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 430), "the run's write-back worker, fd 3 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 501), "a process of the run, fd 3 -> /dev/dm-0");
        ck_assert_str_eq(own_of(&b, 500), "(foreign)");
        ck_assert_str_eq(own_of(&b, 503), "(foreign)");
        /* the reason says it in words */
        {
                _cleanup_(freep) char *d = mpf_blockers_describe(&b);

                ck_assert_ptr_nonnull(
                        strstr(d, "mpatha opened by our own process pid 413 (mpath-flush-w: a pool "
                                  "worker, fd 6 -> /dev/dm-0)"));
                ck_assert_ptr_nonnull(strstr(d, "mpatha opened by pid 500 (mpath-flush-w)"));
        }
        mpf_blockers_done(&b);
}
END_TEST

/* Seen from the run's main process (--jobs 1, or a map set aside by the pool). */
START_TEST(test_scan_names_own_from_main)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs_empty, .procfs = procfs_own, .run = 400, .self = 400};
        struct mpf_target t = {.name = "mpatha", .kname = "dm-0", .devt = makedev(254, 0)};
        struct mpf_blockers b;
        unsigned explained = 0;

        ck_assert_int_eq(mpf_scan_usage(&roots, &t, 1, USEC_INFINITY, &b, &explained), 0);
        ck_assert_str_eq(own_of(&b, 400), "the run's main process, which flushes it, fd 7 -> /dev/dm-0");
        ck_assert_msg(
                strcmp(own_of(&b, 410), "a pool worker, fd 5 -> /dev/dm-0, fd 8 -> /dev/dm-0") == 0 ||
                        strcmp(own_of(&b, 410), "a pool worker, fd 8 -> /dev/dm-0, fd 5 -> /dev/dm-0") == 0,
                "410: %s", own_of(&b, 410));
        ck_assert_str_eq(own_of(&b, 411), "a pool worker's write-back worker, fd 3 -> /dev/mapper/mpatha");
        ck_assert_str_eq(own_of(&b, 430), "the run's write-back worker, fd 3 -> /dev/dm-0");
        mpf_blockers_done(&b);
}
END_TEST

/* A scan that knows no run (tests, tools) names nobody as ours. */
START_TEST(test_own_role_needs_a_run)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs_empty, .procfs = procfs_own};

        ck_assert_ptr_null(mpf_usage_own_role(&roots, 410, "mpath-flush-w"));
        roots.run = 400;
        ck_assert_str_eq(mpf_usage_own_role(&roots, 410, "mpath-flush-w"), "a pool worker");
        /* the run's process by its parents, not by its name */
        ck_assert_ptr_null(mpf_usage_own_role(&roots, 500, "mpath-flush-w"));
        ck_assert_ptr_null(mpf_usage_own_role(&roots, 9999, "mpath-flush-w"));
}
END_TEST

START_TEST(test_scan_unused_map)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs, .procfs = procfs, .self = 400};
        struct mpf_target t = {.name = "mpathb", .kname = "dm-3", .devt = makedev(254, 3)};
        struct mpf_blockers b;
        unsigned explained = 7;

        ck_assert_int_eq(mpf_scan_usage(&roots, &t, 1, USEC_INFINITY, &b, &explained), 0);
        ck_assert(!mpf_blockers_any(&b));
        ck_assert_uint_eq(explained, 0);
        mpf_blockers_done(&b);
}
END_TEST

START_TEST(test_scan_errors)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs_empty, .procfs = "/nonexistent/proc", .self = 0};
        struct mpf_target t[2];
        struct mpf_blockers b;

        make_targets(t);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 0, USEC_INFINITY, &b, NULL), -EINVAL);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, USEC_INFINITY, &b, NULL), -ENOENT);
}
END_TEST

/* Kernel users without a holders/ link are named, and each accounts for one open of the map. */
START_TEST(test_scan_kernel_users)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs_ku, .procfs = procfs_ku, .self = 0};
        struct mpf_target t[2];
        struct mpf_blockers b;
        unsigned explained = 0;
        bool loop = false, btrfs = false, journal = false;
        _cleanup_(freep) char *s = NULL;

        make_targets(t);
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, USEC_INFINITY, &b, &explained), 0);
        ck_assert_uint_eq(b.n_kernel_users, 3);
        for (size_t i = 0; i < b.n_kernel_users; i++) {
                const struct mpf_kernel_user *u = &b.kernel_users[i];

                ck_assert_str_eq(u->device, "mpatha");
                if (strcmp(u->kind, "loop") == 0) {
                        ck_assert_str_eq(u->name, "loop0"); /* not loop1 (a file), not loop2 (unbound) */
                        loop = true;
                } else if (strcmp(u->kind, "btrfs") == 0) {
                        ck_assert_str_eq(u->name, "2f8c1c1e-0000-4000-8000-000000000001");
                        btrfs = true;
                } else {
                        ck_assert_str_eq(u->kind, "journal"); /* dm-0, not dm-1-12 (inside dm-1) */
                        ck_assert_str_eq(u->name, "dm-0");
                        journal = true;
                }
        }
        ck_assert(loop && btrfs && journal);
        ck_assert_uint_eq(explained, 3);
        ck_assert(mpf_blockers_any(&b));
        s = mpf_blockers_describe(&b);
        ck_assert_ptr_nonnull(strstr(s, "mpatha backs loop device loop0"));
        mpf_blockers_done(&b);
}
END_TEST

START_TEST(test_scan_deadline)
{
        struct mpf_usage_roots roots = {.sysfs = sysfs, .procfs = procfs, .self = 400};
        struct mpf_target t[2];
        struct mpf_blockers b;
        unsigned explained = 0;

        make_targets(t);
        /* the walk of /proc stops at the deadline and names nobody */
        ck_assert_int_eq(mpf_scan_usage(&roots, t, 2, now_monotonic(), &b, &explained), -ETIMEDOUT);
}
END_TEST

START_TEST(test_writes_completed)
{
        uint64_t w = 0;

        ck_assert_int_eq(mpf_sysfs_sectors_written(sysfs_ku, "dm-0", &w), 0);
        ck_assert_uint_eq(w, 5680);
        ck_assert_int_eq(mpf_sysfs_sectors_written(sysfs_ku, "dm-9", &w), -ENOENT);
        ck_assert_int_eq(mpf_sysfs_sectors_written(sysfs_ku, "loop0", &w), -ENOENT);
}
END_TEST

START_TEST(test_unescape)
{
        char s[] = "a\\040b\\011c\\134d\\";
        char t[] = "\\04x\\999";

        mpf_unescape_mountinfo(s);
        ck_assert_str_eq(s, "a b\tc\\d\\");
        mpf_unescape_mountinfo(t);
        ck_assert_str_eq(t, "\\04x\\999");
}
END_TEST

START_TEST(test_roots_env)
{
        struct mpf_usage_roots r;

        ck_assert_int_eq(unsetenv(MPF_SYSFS_ENV), 0);
        ck_assert_int_eq(unsetenv(MPF_PROCFS_ENV), 0);
        mpf_usage_roots_from_env(&r);
        ck_assert_str_eq(r.sysfs, "/sys");
        ck_assert_str_eq(r.procfs, "/proc");
        ck_assert_int_eq(r.self, getpid());
        ck_assert_int_eq(setenv(MPF_SYSFS_ENV, sysfs, 1), 0);
        ck_assert_int_eq(setenv(MPF_PROCFS_ENV, procfs, 1), 0);
        mpf_usage_roots_from_env(&r);
        ck_assert_str_eq(r.sysfs, sysfs);
        ck_assert_str_eq(r.procfs, procfs);
}
END_TEST

static Suite *usage_suite(void)
{
        Suite *s = suite_create("usage");
        TCase *tc = tcase_create("usage");

        tcase_add_unchecked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_kname);
        tcase_add_test(tc, test_partitions);
        tcase_add_test(tc, test_slaves_sorted);
        tcase_add_test(tc, test_scan_names_own_processes);
        tcase_add_test(tc, test_scan_names_own_from_main);
        tcase_add_test(tc, test_own_role_needs_a_run);
        tcase_add_test(tc, test_scan_everything_named);
        tcase_add_test(tc, test_scan_skips_own_mount_namespace);
        tcase_add_test(tc, test_scan_self_counts_when_not_self);
        tcase_add_test(tc, test_scan_unused_map);
        tcase_add_test(tc, test_scan_errors);
        tcase_add_test(tc, test_scan_kernel_users);
        tcase_add_test(tc, test_scan_deadline);
        tcase_add_test(tc, test_writes_completed);
        tcase_add_test(tc, test_unescape);
        tcase_add_test(tc, test_roots_env);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(usage_suite)
