/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "macro.h"
#include "options.h"
#include "tests.h"

static int parse(struct mpf_options *o, char **err, ...)
{
        static char *argv[32]; /* o->maps points into it */
        int argc = 1, r;
        size_t sz = 0;
        FILE *f;
        va_list ap;

        memset(argv, 0, sizeof(argv));
        argv[0] = (char *)"mpath-flush";
        va_start(ap, err);
        for (char *a; (a = va_arg(ap, char *));)
                argv[argc++] = a;
        va_end(ap);
        f = open_memstream(err, &sz);
        ck_assert_ptr_nonnull(f);
        r = mpf_parse_options(argc, argv, o, f);
        fclose(f);
        return r;
}

START_TEST(test_defaults)
{
        struct mpf_options o;
        _cleanup_(freep) char *err = NULL;

        ck_assert_int_eq(parse(&o, &err, "mpatha", NULL), 0);
        ck_assert_int_eq(o.action, MPF_ACTION_FLUSH);
        ck_assert_uint_eq(o.timeout, 30 * USEC_PER_SEC);
        ck_assert(!o.all && !o.deferred && !o.dry_run && !o.json && !o.no_udev_sync);
        ck_assert_int_eq(o.verbose, 0);
        ck_assert_uint_eq(o.n_maps, 1);
        ck_assert_str_eq(o.maps[0], "mpatha");
        ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_all_options)
{
        struct mpf_options o;
        _cleanup_(freep) char *err = NULL, *err2 = NULL;

        ck_assert_int_eq(parse(&o, &err, "-a", "-d", "-t", "1.5", "-n", "-j", "--no-udev-sync", "-v", "-v",
                               "-v", NULL),
                         0);
        ck_assert(o.all && o.deferred && o.dry_run && o.json && o.no_udev_sync);
        ck_assert_uint_eq(o.timeout, 1500 * USEC_PER_MSEC);
        ck_assert_int_eq(o.verbose, 2);
        ck_assert_uint_eq(o.n_maps, 0);

        ck_assert_int_eq(parse(&o, &err2, "--all", "--deferred", "--timeout=7", "--dry-run", "--json",
                               "--quiet", NULL),
                         0);
        ck_assert(o.all && o.deferred && o.dry_run && o.json);
        ck_assert_uint_eq(o.timeout, 7 * USEC_PER_SEC);
        ck_assert_int_eq(o.verbose, -1);
}
END_TEST

START_TEST(test_usage_error_escapes)
{
        struct mpf_options o;
        _cleanup_(freep) char *err = NULL, *err2 = NULL;
        char longname[300];

        ck_assert_int_eq(parse(&o, &err, "bad\nname\001", NULL), -EINVAL);
        ck_assert_str_eq(err,
                         "mpath-flush: invalid MAP 'bad\\x0aname\\x01': not a map name, /dev path, WWID or "
                         "mpath- UUID (see --help)\n");
        memset(longname, 'm', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        ck_assert_int_eq(parse(&o, &err2, longname, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err2, "mmm...'"));
        ck_assert_uint_lt(strlen(err2), 200);
}
END_TEST

START_TEST(test_if_pathless)
{
        struct mpf_options o;
        _cleanup_(freep) char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL;

        /* the unit's command line; a WWID with characters systemd escapes arrives unescaped */
        ck_assert_int_eq(parse(&o, &e1, "--timeout", "30", "--if-pathless", "--", "F5-lun+x_1", NULL), 0);
        ck_assert_int_eq(o.action, MPF_ACTION_IF_PATHLESS);
        ck_assert_uint_eq(o.n_maps, 1);
        ck_assert_str_eq(o.maps[0], "F5-lun+x_1");
        ck_assert_int_eq(parse(&o, &e2, "--if-pathless", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e2, "one WWID or MAP"));
        ck_assert_int_eq(parse(&o, &e3, "--if-pathless", "a", "b", NULL), -EINVAL);
        ck_assert_int_eq(parse(&o, &e4, "--if-pathless", "--dry-run", "a", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e4, "--if-pathless takes no"));
        /* one map: --jobs would be ignored, so it is refused */
        ck_assert_int_eq(parse(&o, &e5, "--if-pathless", "--jobs", "4", "a", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e5, "--jobs"));
}
END_TEST

START_TEST(test_help_version)
{
        struct mpf_options o;
        _cleanup_(freep) char *e1 = NULL, *e2 = NULL;

        ck_assert_int_eq(parse(&o, &e1, "--help", NULL), 0);
        ck_assert_int_eq(o.action, MPF_ACTION_HELP);
        ck_assert_int_eq(parse(&o, &e2, "--version", NULL), 0);
        ck_assert_int_eq(o.action, MPF_ACTION_VERSION);
}
END_TEST

START_TEST(test_usage_errors)
{
        static const char *const cases[][4] = {
                {NULL},                    /* no MAP */
                {"--all", "mpatha", NULL}, /* --all with MAP */
                {"-t", "0", "mpatha", NULL},
                {"-t", "3601", "mpatha", NULL},
                {"-t", "abc", "mpatha", NULL},
                {"-t", "-1", "mpatha", NULL},
                {"--timeout", NULL},
                {"-x", "mpatha", NULL},
                {"--bogus", "mpatha", NULL},
                {"--all=1", NULL},
                {"a/b", NULL},
                {"", NULL},
                {"mpath-", NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *argv[8] = {(char *)"mpath-flush"};
                int argc = 1;
                struct mpf_options o;
                _cleanup_(freep) char *err = NULL;
                size_t sz = 0;
                FILE *f;

                for (size_t k = 0; k < 4 && cases[i][k]; k++)
                        argv[argc++] = (char *)cases[i][k];
                f = open_memstream(&err, &sz);
                ck_assert_int_eq(mpf_parse_options(argc, argv, &o, f), -EINVAL);
                fclose(f);
                /* exactly one line, naming us */
                ck_assert_msg(startswith(err, "mpath-flush: "), "case %zu: %s", i, err);
                ck_assert_ptr_eq(strchr(err, '\n'), err + strlen(err) - 1);
        }
}
END_TEST

/* Every long and short option of the table is in --help and in the man page, and neither
 * documents an option the table does not accept. */
static void collect_long(const char *text, char ***ret)
{
        for (const char *p = text; (p = strstr(p, "--")); p += 2) {
                char buf[64];
                size_t n = 0;

                if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-'))
                        continue;
                while (n < sizeof(buf) - 1 && (isalnum((unsigned char)p[2 + n]) || p[2 + n] == '-'))
                        buf[n] = p[2 + n], n++;
                buf[n] = 0;
                if (n == 0)
                        continue;
                if (!strv_contains(*ret, buf))
                        ck_assert_int_eq(strv_extend(ret, buf), 0);
        }
}

static bool table_has(const char *name)
{
        for (const struct option *o = mpf_long_options; o->name; o++)
                if (strcmp(o->name, name) == 0)
                        return true;
        return false;
}

static void check_document(const char *what, const char *text, bool man)
{
        _cleanup_(strv_freep) char **found = NULL;

        collect_long(text, &found);
        STRV_FOREACH (s, found)
                ck_assert_msg(table_has(*s), "%s documents --%s, which the option table does not accept",
                              what, *s);
        for (const struct option *o = mpf_long_options; o->name; o++) {
                char needle[64];

                ck_assert_msg(strv_contains(found, o->name), "%s does not document --%s", what, o->name);
                if (o->val < 0x100) {
                        snprintf(needle, sizeof(needle), man ? "*-%c*" : "-%c,", o->val);
                        ck_assert_msg(strstr(text, needle), "%s does not document -%c", what, o->val);
                }
        }
        for (const char *c = mpf_short_options; *c; c++) {
                bool found_long = false;
                if (*c == ':')
                        continue;
                for (const struct option *o = mpf_long_options; o->name; o++)
                        if (o->val == *c)
                                found_long = true;
                ck_assert_msg(found_long, "-%c has no long form", *c);
        }
}

START_TEST(test_help_lists_table)
{
        _cleanup_(freep) char *help = NULL;
        size_t sz = 0;
        FILE *f = open_memstream(&help, &sz);

        mpf_help(f);
        fclose(f);
        check_document("--help", help, false);
}
END_TEST

START_TEST(test_man_lists_table)
{
        const char *path = getenv("MPF_MAN_SCD");
        _cleanup_(freep) char *text = NULL;
        size_t sz = 0;
        FILE *f, *m;
        char buf[4096];
        size_t n;

        ck_assert_msg(path && *path, "MPF_MAN_SCD not set by meson");
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        m = open_memstream(&text, &sz);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, m);
        fclose(f);
        fclose(m);
        check_document(path, text, true);
}
END_TEST

static Suite *options_suite(void)
{
        Suite *s = suite_create("options");
        TCase *tc = tcase_create("options");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_all_options);
        tcase_add_test(tc, test_help_version);
        tcase_add_test(tc, test_if_pathless);
        tcase_add_test(tc, test_usage_error_escapes);
        tcase_add_test(tc, test_usage_errors);
        tcase_add_test(tc, test_help_lists_table);
        tcase_add_test(tc, test_man_lists_table);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(options_suite)
