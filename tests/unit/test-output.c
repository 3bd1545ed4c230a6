/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <json-c/json.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "macro.h"
#include "output.h"
#include "tests.h"

static struct json_object *get(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        ck_assert_msg(json_object_object_get_ex(o, key, &v), "missing key %s", key);
        return v;
}

static void make_run(struct mpf_run *run)
{
        struct mpf_map_result *a, *b;

        *run = (struct mpf_run){.exit_status = 4};
        run->maps = calloc(2, sizeof(*run->maps));
        run->n_maps = 2;
        a = &run->maps[0];
        b = &run->maps[1];
        *a = (struct mpf_map_result){
                .map = strdup("/dev/mapper/mpatha"),
                .name = strdup("mpatha"),
                .uuid = strdup("mpath-3600a"),
                .devt = makedev(254, 0),
                .have_devt = true,
                .result = MPF_RESULT_BUSY,
                .step = MPF_STEP_IN_USE,
                .reason = strdup("mpatha mounted on /mnt/\"quoted\" \\ dir (pid 123)"),
                .queueing_before = 1,
                .queueing_after = 1,
                .elapsed_ms = 12,
        };
        ck_assert_int_eq(mpf_blockers_add_mount(&a->blockers, "mpatha-part1", "/mnt/\"quoted\" \\ dir", 123),
                         0);
        ck_assert_int_eq(mpf_blockers_add_opener(&a->blockers, 456, "sleep", "mpatha"), 0);
        ck_assert_int_eq(strv_extend(&a->blockers.holders, "dm-3"), 0);
        ck_assert_int_eq(strv_extend(&a->blockers.swaps, "/dev/dm-4"), 0);
        ck_assert_int_eq(strv_extend(&a->partitions, "mpatha-part1"), 0);
        a->blockers.unexplained_opens = 2;
        *b = (struct mpf_map_result){
                .map = strdup("mpathz"),
                .result = MPF_RESULT_ABSENT,
                .step = MPF_STEP_RESOLVE,
                .reason = strdup("no such map"),
                .queueing_before = -1,
                .queueing_after = -1,
        };
}

START_TEST(test_json_roundtrip)
{
        struct mpf_run run;
        _cleanup_(freep) char *text = NULL;
        size_t sz = 0;
        FILE *f;
        struct json_object *doc, *maps, *a, *b, *bl, *m, *o, *q;

        make_run(&run);
        f = open_memstream(&text, &sz);
        ck_assert_int_eq(mpf_print_json(f, &run, "0.1.0", false), 0);
        fclose(f);
        doc = json_tokener_parse(text);
        ck_assert_ptr_nonnull(doc);

        ck_assert_str_eq(json_object_get_string(get(doc, "version")), "0.1.0");
        ck_assert_int_eq(json_object_get_int(get(doc, "exit_status")), 4);
        maps = get(doc, "maps");
        ck_assert_uint_eq(json_object_array_length(maps), 2);

        a = json_object_array_get_idx(maps, 0);
        ck_assert_str_eq(json_object_get_string(get(a, "map")), "/dev/mapper/mpatha");
        ck_assert_str_eq(json_object_get_string(get(a, "name")), "mpatha");
        ck_assert_str_eq(json_object_get_string(get(a, "uuid")), "mpath-3600a");
        ck_assert_str_eq(json_object_get_string(get(a, "dev")), "254:0");
        ck_assert_str_eq(json_object_get_string(get(a, "result")), "busy");
        ck_assert_str_eq(json_object_get_string(get(a, "step")), "in-use");
        ck_assert_str_eq(json_object_get_string(get(a, "reason")),
                         "mpatha mounted on /mnt/\"quoted\" \\ dir (pid 123)");
        ck_assert_int_eq(json_object_get_int(get(a, "elapsed_ms")), 12);
        bl = get(a, "blockers");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(get(bl, "holders"), 0)), "dm-3");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(get(bl, "swaps"), 0)),
                         "/dev/dm-4");
        m = json_object_array_get_idx(get(bl, "mounts"), 0);
        ck_assert_str_eq(json_object_get_string(get(m, "device")), "mpatha-part1");
        ck_assert_str_eq(json_object_get_string(get(m, "target")), "/mnt/\"quoted\" \\ dir");
        ck_assert_int_eq(json_object_get_int(get(m, "pid")), 123);
        o = json_object_array_get_idx(get(bl, "openers"), 0);
        ck_assert_int_eq(json_object_get_int(get(o, "pid")), 456);
        ck_assert_str_eq(json_object_get_string(get(o, "comm")), "sleep");
        ck_assert_str_eq(json_object_get_string(get(o, "device")), "mpatha");
        ck_assert_int_eq(json_object_get_int(get(bl, "unexplained_opens")), 2);
        q = get(a, "queueing");
        ck_assert(json_object_get_boolean(get(q, "before")));
        ck_assert(json_object_get_boolean(get(q, "after")));
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(get(a, "partitions"), 0)),
                         "mpatha-part1");
        ck_assert(!json_object_object_get_ex(a, "plan", NULL));

        b = json_object_array_get_idx(maps, 1);
        ck_assert(json_object_is_type(get(b, "name"), json_type_null));
        ck_assert(json_object_is_type(get(b, "uuid"), json_type_null));
        ck_assert(json_object_is_type(get(b, "dev"), json_type_null));
        ck_assert_str_eq(json_object_get_string(get(b, "result")), "absent");
        q = get(b, "queueing");
        ck_assert(json_object_is_type(get(q, "before"), json_type_null));
        ck_assert_uint_eq(json_object_array_length(get(b, "partitions")), 0);
        bl = get(b, "blockers");
        ck_assert_uint_eq(json_object_array_length(get(bl, "mounts")), 0);
        ck_assert_int_eq(json_object_get_int(get(bl, "unexplained_opens")), 0);
        ck_assert(!json_object_object_get_ex(doc, "error", NULL));

        json_object_put(doc);
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_json_error_and_dry_run)
{
        struct mpf_run run = {.exit_status = 6, .error = strdup("must be root")};
        struct json_object *doc;

        doc = mpf_run_to_json(&run, "0.1.0", true);
        ck_assert_ptr_nonnull(doc);
        ck_assert_int_eq(json_object_get_int(get(doc, "exit_status")), 6);
        ck_assert_str_eq(json_object_get_string(get(doc, "error")), "must be root");
        ck_assert_uint_eq(json_object_array_length(get(doc, "maps")), 0);
        ck_assert(json_object_get_boolean(get(doc, "dry_run")));
        json_object_put(doc);
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_result_line)
{
        struct mpf_run run;
        _cleanup_(freep) char *l1 = NULL, *l2 = NULL, *l3 = NULL, *l4 = NULL;
        struct mpf_map_result ok = {.result = MPF_RESULT_REMOVED,
                                    .step = MPF_STEP_DONE,
                                    .reason = (char *)"removed",
                                    .elapsed_ms = 7};

        make_run(&run);
        l1 = mpf_map_result_line(&run.maps[0]);
        ck_assert_str_eq(l1, "busy at in-use: mpatha mounted on /mnt/\"quoted\" \\ dir (pid 123)");
        run.maps[0].restore_failed = true;
        l2 = mpf_map_result_line(&run.maps[0]);
        ck_assert_ptr_nonnull(strstr(l2, "QUEUEING COULD NOT BE RESTORED"));
        l3 = mpf_map_result_line(&ok);
        ck_assert_str_eq(l3, "removed (7 ms)");
        run.maps[0].restore_failed = false;
        ck_assert_int_eq(strv_extend(&run.maps[0].plan, "lock"), 0);
        l4 = mpf_map_result_line(&run.maps[0]);
        ck_assert_str_eq(l4, "dry run: would be busy: mpatha mounted on /mnt/\"quoted\" \\ dir (pid 123)");
        mpf_run_done(&run);
}
END_TEST

/* A valid UTF-8 string is kept as it is; each byte that starts no valid sequence becomes U+FFFD. */
START_TEST(test_utf8_sanitize)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"plain /mnt/a b", "plain /mnt/a b"},
                {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe"},
                {"latin1 caf\xe9", "latin1 caf\xef\xbf\xbd"},
                {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
                {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
                {"surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
                {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
                {"too big \xf4\x90\x80\x80", "too big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
                {"", ""},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *s = mpf_utf8_sanitize(cases[i].in);
                ck_assert_str_eq(s, cases[i].out);
        }
}
END_TEST

/* Whatever bytes a mount point, a command name or a map name hold, the document is valid UTF-8
 * and parses; json-c's parser rejects nothing, so check the bytes themselves. */
START_TEST(test_json_invalid_utf8)
{
        struct mpf_run run;
        _cleanup_(freep) char *text = NULL, *clean = NULL;
        size_t sz = 0;
        FILE *f;
        struct json_object *doc, *a, *m;

        make_run(&run);
        free(run.maps[0].blockers.mounts[0].target);
        run.maps[0].blockers.mounts[0].target = strdup("/mnt/caf\xe9");
        free(run.maps[0].blockers.openers[0].comm);
        run.maps[0].blockers.openers[0].comm = strdup("\xff\xfeworker");
        free(run.maps[0].reason);
        run.maps[0].reason = strdup("mpatha mounted on /mnt/caf\xe9 (pid 123)");
        f = open_memstream(&text, &sz);
        ck_assert_int_eq(mpf_print_json(f, &run, "0.1.0", false), 0);
        fclose(f);
        clean = mpf_utf8_sanitize(text);
        ck_assert_str_eq(clean, text); /* nothing left to replace: valid UTF-8 */
        doc = json_tokener_parse(text);
        ck_assert_ptr_nonnull(doc);
        a = json_object_array_get_idx(get(doc, "maps"), 0);
        m = json_object_array_get_idx(get(get(a, "blockers"), "mounts"), 0);
        ck_assert_str_eq(json_object_get_string(get(m, "target")), "/mnt/caf\xef\xbf\xbd");
        m = json_object_array_get_idx(get(get(a, "blockers"), "openers"), 0);
        ck_assert_str_eq(json_object_get_string(get(m, "comm")), "\xef\xbf\xbd\xef\xbf\xbdworker");
        json_object_put(doc);
        mpf_run_done(&run);
}
END_TEST

/* The fields issue 9 added: kernel users, written data lost, a stuck worker. */
START_TEST(test_json_new_fields)
{
        struct mpf_run run;
        struct json_object *doc, *a, *b, *u;

        make_run(&run);
        ck_assert_int_eq(mpf_blockers_add_kernel_user(&run.maps[0].blockers, "loop", "loop0", "mpatha"), 0);
        run.maps[0].data_lost = true;
        run.maps[0].failed_write_bytes = 3;
        run.maps[0].stuck_worker = 4242;
        doc = mpf_run_to_json(&run, "0.1.0", false);
        ck_assert_ptr_nonnull(doc);
        a = json_object_array_get_idx(get(doc, "maps"), 0);
        u = json_object_array_get_idx(get(get(a, "blockers"), "kernel_users"), 0);
        ck_assert_str_eq(json_object_get_string(get(u, "kind")), "loop");
        ck_assert_str_eq(json_object_get_string(get(u, "name")), "loop0");
        ck_assert_str_eq(json_object_get_string(get(u, "device")), "mpatha");
        ck_assert(json_object_get_boolean(get(a, "data_lost")));
        ck_assert_int_eq(json_object_get_int(get(a, "failed_write_bytes")), 3);
        ck_assert_int_eq(json_object_get_int(get(a, "stuck_worker")), 4242);
        b = json_object_array_get_idx(get(doc, "maps"), 1);
        ck_assert(!json_object_get_boolean(get(b, "data_lost")));
        ck_assert_int_eq(json_object_get_int(get(b, "failed_write_bytes")), 0);
        ck_assert(json_object_is_type(get(b, "stuck_worker"), json_type_null));
        ck_assert_uint_eq(json_object_array_length(get(get(b, "blockers"), "kernel_users")), 0);
        json_object_put(doc);
        mpf_run_done(&run);
}
END_TEST

START_TEST(test_journal_stream)
{
        ck_assert(journal_stream_matches("8:12345", 8, 12345));
        ck_assert(!journal_stream_matches("8:12345", 8, 12346));
        ck_assert(!journal_stream_matches("8:12345x", 8, 12345));
        ck_assert(!journal_stream_matches("", 8, 12345));
        ck_assert(!journal_stream_matches(NULL, 8, 12345));
}
END_TEST

static Suite *output_suite(void)
{
        Suite *s = suite_create("output");
        TCase *tc = tcase_create("output");

        tcase_add_test(tc, test_json_roundtrip);
        tcase_add_test(tc, test_json_error_and_dry_run);
        tcase_add_test(tc, test_result_line);
        tcase_add_test(tc, test_utf8_sanitize);
        tcase_add_test(tc, test_json_invalid_utf8);
        tcase_add_test(tc, test_json_new_fields);
        tcase_add_test(tc, test_journal_stream);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(output_suite)
