/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The undo record: text form both ways, the file under the run directory. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "tests.h"
#include "undo.h"

static void fill(struct mpf_undo *u)
{
        struct mpf_dm_saved s = {.read_only = true, .n_targets = 2};

        *u = (struct mpf_undo){.devt = makedev(254, 3), .kernel_queueing_disabled = true};
        strcpy(u->name, "my map");
        strcpy(u->uuid, "mpath-3600140512345678");
        strcpy(s.name, "my map-part1");
        strcpy(s.uuid, "part1-mpath-3600140512345678");
        s.targets = calloc(2, sizeof(*s.targets));
        ck_assert_ptr_nonnull(s.targets);
        s.targets[0] = (struct mpf_dm_target){
                .start = 0, .length = 2048, .type = strdup("linear"), .params = strdup("254:3 2048")};
        s.targets[1] = (struct mpf_dm_target){
                .start = 2048, .length = 8, .type = strdup("error"), .params = strdup("")};
        ck_assert_int_eq(mpf_undo_add_saved(u, &s), 0);
        ck_assert_ptr_null(s.targets); /* taken */
}

START_TEST(test_round_trip)
{
        _cleanup_(mpf_undo_done) struct mpf_undo u = {}, v = {};
        _cleanup_(freep) char *text = NULL, *again = NULL;

        fill(&u);
        ck_assert(!mpf_undo_empty(&u));
        ck_assert_int_eq(mpf_undo_format(&u, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "queueing-off kernel\n"));
        ck_assert_ptr_null(strstr(text, "multipathd"));
        ck_assert_int_eq(mpf_undo_parse(text, &v), 0);
        ck_assert_str_eq(v.name, "my map");
        ck_assert_str_eq(v.uuid, u.uuid);
        ck_assert_uint_eq(v.devt, makedev(254, 3));
        ck_assert(v.kernel_queueing_disabled);
        ck_assert(!v.mpathd_queueing_disabled);
        ck_assert_uint_eq(v.n_saved, 1);
        ck_assert_str_eq(v.saved[0].name, "my map-part1");
        ck_assert(v.saved[0].read_only);
        ck_assert_uint_eq(v.saved[0].n_targets, 2);
        ck_assert_str_eq(v.saved[0].targets[0].params, "254:3 2048");
        ck_assert_uint_eq(v.saved[0].targets[1].start, 2048);
        ck_assert_str_eq(v.saved[0].targets[1].type, "error");
        ck_assert_str_eq(v.saved[0].targets[1].params, "");
        ck_assert_int_eq(mpf_undo_format(&v, &again), 0);
        ck_assert_str_eq(again, text);
        mpf_undo_drop_last(&v);
        v.kernel_queueing_disabled = false;
        ck_assert(mpf_undo_empty(&v));
}
END_TEST

START_TEST(test_malformed)
{
        static const char *const bad[] = {
                "",
                "not a record\nname a\n",
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\n",          /* no dev */
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254\n", /* bad dev */
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\nqueueing-off disk\n",
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\npart-uuid x\n", /* no part */
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\npart a1\n",     /* no uuid, no table */
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\npart a1\npart-uuid p\npart-target 0\n",
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\nsomething else\n",
                MPF_UNDO_MAGIC "\nname a\nuuid mpath-1\ndev 254:1\nnospace\n",
                NULL,
        };

        for (size_t i = 0; bad[i]; i++) {
                struct mpf_undo u = {};
                ck_assert_msg(mpf_undo_parse(bad[i], &u) == -EBADMSG, "case %zu", i);
        }
}
END_TEST

START_TEST(test_refuses_control_characters)
{
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};
        char *text = NULL;

        fill(&u);
        strcpy(u.saved[0].name, "evil\npart-uuid x");
        ck_assert_int_eq(mpf_undo_format(&u, &text), -EINVAL);
        ck_assert_ptr_null(text);
}
END_TEST

START_TEST(test_file)
{
        char dir[] = "/tmp/mpf-undo-XXXXXX";
        _cleanup_(mpf_undo_done) struct mpf_undo u = {}, v = {};
        _cleanup_(freep) char *path = NULL, *tmp = NULL;
        struct stat st;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        fill(&u);
        ck_assert_int_eq(mpf_undo_read(dir, u.uuid, &v), -ENOENT);
        ck_assert_int_eq(mpf_undo_write(dir, &u), 0);
        ck_assert_int_ge(asprintf(&path, "%s/undo/%s", dir, u.uuid), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(mpf_undo_read(dir, u.uuid, &v), 0);
        ck_assert_str_eq(v.name, u.name);
        ck_assert_uint_eq(v.n_saved, 1);
        /* another map's record under this name is not this map's */
        ck_assert_int_eq(mpf_undo_read(dir, "../x", &v), -EINVAL);
        /* nothing left to put back: the file goes */
        while (u.n_saved > 0)
                mpf_undo_drop_last(&u);
        u.kernel_queueing_disabled = false;
        ck_assert_int_eq(mpf_undo_write(dir, &u), 0);
        ck_assert_int_eq(stat(path, &st), -1);
        ck_assert_int_eq(mpf_undo_write(dir, &u), 0); /* and again: no error */
        /* a writer killed mid-write leaves a .new file: the next look for a record removes it */
        ck_assert_int_ge(asprintf(&tmp, "%s.new", path), 0);
        fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(mpf_undo_read(dir, u.uuid, &v), -ENOENT);
        ck_assert_int_eq(stat(tmp, &st), -1);
        ck_assert_int_eq(rmdir(strrchr(path, '/') ? (*strrchr(path, '/') = 0, path) : path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *undo_suite(void)
{
        Suite *s = suite_create("undo");
        TCase *tc = tcase_create("undo");

        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_refuses_control_characters);
        tcase_add_test(tc, test_file);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(undo_suite)
