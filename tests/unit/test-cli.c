/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The installed program's edges: exit codes for usage and environment errors, --help, --version. */
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "tests.h"

#define NOBODY 65534

static char *read_all(int fd)
{
        char *buf = NULL;
        size_t sz = 0;
        FILE *m = open_memstream(&buf, &sz);
        char tmp[4096];
        ssize_t n;

        while ((n = read(fd, tmp, sizeof(tmp))) > 0)
                fwrite(tmp, 1, (size_t)n, m);
        fclose(m);
        return buf;
}

/* Runs mpath-flush with args, as user nobody when unprivileged is set and we are root; returns its
 * exit status, output in *out and *err. */
static int run_as(bool unprivileged, char **out, char **err, const char *const *args)
{
        const char *exe = getenv("MPF_EXE");
        char *argv[16] = {(char *)"mpath-flush"};
        int po[2], pe[2], st, n = 1;
        pid_t pid;

        ck_assert_msg(exe && *exe, "MPF_EXE not set by meson");
        for (; args[n - 1]; n++)
                argv[n] = (char *)args[n - 1];
        ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* opened before dropping privileges: the build tree may lie below a directory
                 * that only root may enter (a package build's mktemp -d) */
                int fd = open(exe, O_RDONLY | O_CLOEXEC);

                dup2(po[1], STDOUT_FILENO);
                dup2(pe[1], STDERR_FILENO);
                unsetenv("JOURNAL_STREAM");
                if (fd < 0)
                        _exit(127);
                if (unprivileged && geteuid() == 0 &&
                    (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                     setresuid(NOBODY, NOBODY, NOBODY) < 0))
                        _exit(126);
                fexecve(fd, argv, environ);
                _exit(127);
        }
        close(po[1]);
        close(pe[1]);
        *out = read_all(po[0]);
        *err = read_all(pe[0]);
        close(po[0]);
        close(pe[0]);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        return WEXITSTATUS(st);
}

static int run(char **out, char **err, const char *const *args)
{
        return run_as(false, out, err, args);
}

static bool one_line(const char *s)
{
        const char *nl = strchr(s, '\n');
        return nl && nl[1] == 0;
}

START_TEST(test_help_version)
{
        _cleanup_(freep) char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

        ck_assert_int_eq(run(&out, &err, (const char *[]){"--help", NULL}), 0);
        ck_assert_ptr_nonnull(strstr(out, "Usage: mpath-flush"));
        ck_assert_str_eq(err, "");
        ck_assert_int_eq(run(&out2, &err2, (const char *[]){"--version", NULL}), 0);
        ck_assert_ptr_nonnull(startswith(out2, "mpath-flush "));
}
END_TEST

START_TEST(test_usage_exit_2)
{
        static const char *const cases[][4] = {
                {NULL},
                {"-t", "0", "mpatha", NULL},
                {"--timeout=3601", "mpatha", NULL},
                {"--bogus", "mpatha", NULL},
                {"bad/name", NULL},
                {"--all", "mpatha", NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *out = NULL, *err = NULL;

                ck_assert_int_eq(run(&out, &err, cases[i]), 2);
                ck_assert_str_eq(out, "");
                ck_assert_msg(one_line(err) && startswith(err, "mpath-flush: "), "case %zu: '%s'", i, err);
        }
}
END_TEST

START_TEST(test_environment_exit_6)
{
        _cleanup_(freep) char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        struct json_object *doc, *v;

        /* Where device-mapper is usable (root on a kernel with it), the program runs as nobody:
         * /dev/mapper/control is then not permitted, which is the same environment error. A
         * non-root user who may use device-mapper cannot make it unavailable: that fails. */
        ck_assert_msg(geteuid() == 0 || access("/dev/mapper/control", R_OK | W_OK) < 0,
                      "not root and /dev/mapper/control is usable: no way to test exit 6 here");
        ck_assert_int_eq(run_as(true, &out, &err, (const char *[]){"mpatha", NULL}), 6);
        ck_assert_msg(one_line(err) &&
                              (strstr(err, "device-mapper is not available") || strstr(err, "must be root")),
                      "'%s'", err);
        ck_assert_int_eq(run_as(true, &out2, &err2, (const char *[]){"--json", "--all", NULL}), 6);
        doc = json_tokener_parse(out2);
        ck_assert_ptr_nonnull(doc);
        ck_assert(json_object_object_get_ex(doc, "exit_status", &v));
        ck_assert_int_eq(json_object_get_int(v), 6);
        ck_assert(json_object_object_get_ex(doc, "maps", &v));
        ck_assert_uint_eq(json_object_array_length(v), 0);
        json_object_put(doc);
}
END_TEST

/* With --json or --json-lines anywhere on the command line, a usage error is JSON on stdout too:
 * exit_status 2, no maps, the error; and still one line on stderr. */
START_TEST(test_usage_error_json)
{
        static const struct {
                const char *args[6];
                bool lines;
                const char *error;
        } cases[] = {
                {{"--frobnicate", "--json", "mpatha", NULL},
                 false,
                 "unknown or incomplete option '--frobnicate'"},
                {{"--json", "--timeout", "abc", "mpatha", NULL}, false, "invalid --timeout 'abc'"},
                {{"--json-lines", NULL}, true, "no MAP given"},
                {{"-j", "--wait-busy", "--deferred", "mpatha", NULL}, false, "--wait-busy and --deferred"},
                {{"--json-lines", "a/b", NULL}, true, "invalid MAP 'a/b'"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *out = NULL, *err = NULL;
                struct json_object *doc, *v;

                ck_assert_int_eq(run(&out, &err, cases[i].args), 2);
                ck_assert(one_line(err));
                doc = json_tokener_parse(out);
                ck_assert_msg(doc, "case %zu: stdout is not JSON: %s", i, out);
                ck_assert(json_object_object_get_ex(doc, "schema_version", &v));
                ck_assert_int_eq(json_object_get_int(v), 1);
                ck_assert(json_object_object_get_ex(doc, "exit_status", &v));
                ck_assert_int_eq(json_object_get_int(v), 2);
                ck_assert(json_object_object_get_ex(doc, "error", &v));
                ck_assert_msg(strstr(json_object_get_string(v), cases[i].error), "case %zu: error '%s'", i,
                              json_object_get_string(v));
                ck_assert_int_eq(json_object_object_get_ex(doc, "type", &v), cases[i].lines);
                if (cases[i].lines) {
                        ck_assert_str_eq(json_object_get_string(v), "summary");
                        ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1); /* one line */
                } else {
                        ck_assert(json_object_object_get_ex(doc, "maps", &v));
                        ck_assert_uint_eq(json_object_array_length(v), 0);
                }
                json_object_put(doc);
        }
}
END_TEST

static Suite *cli_suite(void)
{
        Suite *s = suite_create("cli");
        TCase *tc = tcase_create("cli");

        tcase_add_test(tc, test_help_version);
        tcase_add_test(tc, test_usage_exit_2);
        tcase_add_test(tc, test_environment_exit_6);
        tcase_add_test(tc, test_usage_error_json);
        suite_add_tcase(s, tc);
        return s;
}

MPF_TEST_MAIN(cli_suite)
