/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where the administrator's policy is read: flush_on_last_del in multipath's configuration. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "tests.h"

/* The shape "multipath -t" and "multipathd show config" print (multipath-tools 0.9.4, abridged). */
static const char config_defaults_no[] = "defaults {\n"
                                         "\tverbosity 2\n"
                                         "\tpolling_interval 2\n"
                                         "\tno_path_retry \"queue\"\n"
                                         "\tflush_on_last_del \"no\"\n"
                                         "\tuser_friendly_names \"yes\"\n"
                                         "}\n"
                                         "blacklist {\n"
                                         "\tdevnode \"!^(sd[a-z]|dasd[a-z]|nvme[0-9])\"\n"
                                         "\tdevice {\n"
                                         "\t\tvendor \"COMPELNT\"\n"
                                         "\t\tproduct \"Compellent Vol\"\n"
                                         "\t}\n"
                                         "}\n"
                                         "devices {\n"
                                         "\tdevice {\n"
                                         "\t\tvendor \"Linux\"\n"
                                         "\t\tproduct \"scsi_debug\"\n"
                                         "\t\tflush_on_last_del \"always\"\n"
                                         "\t}\n"
                                         "}\n"
                                         "overrides {\n"
                                         "}\n"
                                         "multipaths {\n"
                                         "}\n";

START_TEST(test_from_string)
{
        ck_assert_int_eq(mpf_last_del_from_string("always"), MPF_LAST_DEL_ALWAYS);
        ck_assert_int_eq(mpf_last_del_from_string("unused"), MPF_LAST_DEL_UNUSED);
        ck_assert_int_eq(mpf_last_del_from_string("never"), MPF_LAST_DEL_NEVER);
        /* older values, as multipath-tools reads them */
        ck_assert_int_eq(mpf_last_del_from_string("yes"), MPF_LAST_DEL_ALWAYS);
        ck_assert_int_eq(mpf_last_del_from_string("1"), MPF_LAST_DEL_ALWAYS);
        ck_assert_int_eq(mpf_last_del_from_string("no"), MPF_LAST_DEL_UNUSED);
        ck_assert_int_eq(mpf_last_del_from_string("0"), MPF_LAST_DEL_UNUSED);
        ck_assert_int_eq(mpf_last_del_from_string("Always"), -EINVAL);
        ck_assert_int_eq(mpf_last_del_from_string(""), -EINVAL);
        ck_assert_int_eq(mpf_last_del_from_string(NULL), -EINVAL);
        ck_assert_str_eq(mpf_last_del_to_string(MPF_LAST_DEL_UNUSED), "unused");
        ck_assert_int_eq(MPF_LAST_DEL_DEFAULT, MPF_LAST_DEL_UNUSED);
}
END_TEST

START_TEST(test_config_defaults)
{
        const char *section = NULL;

        /* "devices" is not read: defaults decide */
        ck_assert_int_eq(mpf_last_del_from_config(config_defaults_no, "35000c500a0000000", &section),
                         MPF_LAST_DEL_UNUSED);
        ck_assert_str_eq(section, "defaults");
        ck_assert_int_eq(
                mpf_last_del_from_config("defaults {\n\tflush_on_last_del always\n}\n", "x", &section),
                MPF_LAST_DEL_ALWAYS);
        ck_assert_int_eq(mpf_last_del_from_config("defaults {\n  flush_on_last_del \"never\" # admin\n}\n",
                                                  "x", NULL),
                         MPF_LAST_DEL_NEVER);
        /* a comment is not a value */
        ck_assert_int_eq(mpf_last_del_from_config("defaults {\n#\tflush_on_last_del always\n}\n", "x", NULL),
                         -ENOENT);
        ck_assert_int_eq(mpf_last_del_from_config("defaults {\n\tflush_on_last_del!always\n}\n", "x", NULL),
                         -EINVAL);
        ck_assert_int_eq(mpf_last_del_from_config("", "x", NULL), -ENOENT);
        ck_assert_int_eq(mpf_last_del_from_config(NULL, "x", NULL), -ENOENT);
        ck_assert_int_eq(
                mpf_last_del_from_config("defaults {\n\tflush_on_last_del \"sometimes\"\n}\n", "x", NULL),
                -EINVAL);
        /* not at top level of a section: a device entry's value is not the default */
        ck_assert_int_eq(mpf_last_del_from_config(
                                 "devices {\n\tdevice {\n\t\tflush_on_last_del yes\n\t}\n}\n", "x", NULL),
                         -ENOENT);
}
END_TEST

START_TEST(test_config_precedence)
{
        const char *section = NULL;
        const char *text = "defaults {\n"
                           "\tflush_on_last_del \"unused\"\n"
                           "}\n"
                           "overrides {\n"
                           "\tflush_on_last_del \"always\"\n"
                           "}\n"
                           "multipaths {\n"
                           "\tmultipath {\n"
                           "\t\twwid \"36001405aaaa\"\n"
                           "\t\tflush_on_last_del \"never\"\n"
                           "\t}\n"
                           "\tmultipath {\n"
                           "\t\tflush_on_last_del \"unused\"\n"
                           "\t\twwid \"36001405bbbb\"\n"
                           "\t}\n"
                           "\tmultipath {\n"
                           "\t\twwid \"36001405cccc\"\n"
                           "\t\talias \"data\"\n"
                           "\t}\n"
                           "}\n";

        ck_assert_int_eq(mpf_last_del_from_config(text, "36001405aaaa", &section), MPF_LAST_DEL_NEVER);
        ck_assert_str_eq(section, "multipaths");
        /* the wwid may come after the value */
        ck_assert_int_eq(mpf_last_del_from_config(text, "36001405bbbb", &section), MPF_LAST_DEL_UNUSED);
        ck_assert_str_eq(section, "multipaths");
        /* an entry without the keyword: overrides, then defaults */
        ck_assert_int_eq(mpf_last_del_from_config(text, "36001405cccc", &section), MPF_LAST_DEL_ALWAYS);
        ck_assert_str_eq(section, "overrides");
        ck_assert_int_eq(mpf_last_del_from_config(text, "36001405dddd", &section), MPF_LAST_DEL_ALWAYS);
        /* a prefix of a wwid is not that wwid */
        ck_assert_int_eq(mpf_last_del_from_config(text, "36001405aaa", &section), MPF_LAST_DEL_ALWAYS);
}
END_TEST

START_TEST(test_config_quotes)
{
        /* a WWID with a quote and spaces, written the multipath.conf way ("" is one quote) */
        const char *text = "multipaths {\n"
                           "\tmultipath {\n"
                           "\t\twwid \"odd \"\"lun\"\" #1\"\n"
                           "\t\tflush_on_last_del always\n"
                           "\t}\n"
                           "}\n";

        ck_assert_int_eq(mpf_last_del_from_config(text, "odd \"lun\" #1", NULL), MPF_LAST_DEL_ALWAYS);
        ck_assert_int_eq(mpf_last_del_from_config(text, "odd", NULL), -ENOENT);
}
END_TEST

START_TEST(test_read_env_override)
{
        char *source = NULL;

        setenv(MPF_LAST_DEL_ENV, "never", 1);
        ck_assert_int_eq(mpf_last_del_read("x", now_monotonic() + USEC_PER_SEC, &source),
                         MPF_LAST_DEL_NEVER);
        ck_assert_str_eq(source, "$" MPF_LAST_DEL_ENV);
        free(source);
        source = NULL;
        /* an invalid override is ignored; with neither multipathd nor multipath: the default */
        setenv(MPF_LAST_DEL_ENV, "sometimes", 1);
        setenv("MULTIPATH_SOCKET_NAME", "/mpath-flush/test/no-such-socket", 1);
        setenv(MPF_MULTIPATH_ENV, "/nonexistent/multipath", 1);
        ck_assert_int_eq(mpf_last_del_read("x", now_monotonic() + USEC_PER_SEC, &source),
                         MPF_LAST_DEL_UNUSED);
        ck_assert_str_eq(source, "default");
        free(source);
        unsetenv(MPF_LAST_DEL_ENV);
}
END_TEST

START_TEST(test_read_multipath_t)
{
        char dir[] = "/tmp/mpf-policy-XXXXXX", prog[64], *source = NULL;
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(prog, sizeof(prog), "%s/multipath", dir);
        f = fopen(prog, "w");
        ck_assert_ptr_nonnull(f);
        /* prints its configuration only when asked with -t */
        fprintf(f, "#!/bin/sh\n[ \"$1\" = -t ] || exit 1\nprintf 'defaults {\\n\\tflush_on_last_del "
                   "\"yes\"\\n}\\n'\n");
        fclose(f);
        ck_assert_int_eq(chmod(prog, 0755), 0);
        unsetenv(MPF_LAST_DEL_ENV);
        setenv("MULTIPATH_SOCKET_NAME", "/mpath-flush/test/no-such-socket", 1);
        setenv(MPF_MULTIPATH_ENV, prog, 1);
        ck_assert_int_eq(mpf_last_del_read("x", now_monotonic() + 5 * USEC_PER_SEC, &source),
                         MPF_LAST_DEL_ALWAYS);
        ck_assert_str_eq(source, "multipath -t, defaults section");
        free(source);
        unlink(prog);
        rmdir(dir);
}
END_TEST

static Suite *policy_suite(void)
{
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("policy");

        tcase_add_test(tc, test_from_string);
        tcase_add_test(tc, test_config_defaults);
        tcase_add_test(tc, test_config_precedence);
        tcase_add_test(tc, test_config_quotes);
        tcase_add_test(tc, test_read_env_override);
        tcase_add_test(tc, test_read_multipath_t);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(policy_suite)
