/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "mpathd.h"
#include "policy.h"

static const char *const last_del_names[_MPF_LAST_DEL_MAX] = {
        [MPF_LAST_DEL_ALWAYS] = "always",
        [MPF_LAST_DEL_UNUSED] = "unused",
        [MPF_LAST_DEL_NEVER] = "never",
};

const char *mpf_last_del_to_string(MpfLastDel p)
{
        return p >= 0 && p < _MPF_LAST_DEL_MAX ? last_del_names[p] : NULL;
}

int mpf_last_del_from_string(const char *s)
{
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _MPF_LAST_DEL_MAX; i++)
                if (strcmp(s, last_del_names[i]) == 0)
                        return i;
        /* before 0.9.9: "yes" switched queueing off and flushed, "no" flushed an unused map */
        if (strcmp(s, "yes") == 0 || strcmp(s, "1") == 0)
                return MPF_LAST_DEL_ALWAYS;
        if (strcmp(s, "no") == 0 || strcmp(s, "0") == 0)
                return MPF_LAST_DEL_UNUSED;
        return -EINVAL;
}

/* Split one configuration line into at most two words: keyword and value. A value is a plain
 * word or a double-quoted string ("" inside is one quote); '#' and '!' outside quotes start a
 * comment. Writes into line (destroyed). Returns the number of words (0, 1, 2). */
static int split_line(char *line, char **ret_key, char **ret_value)
{
        char *words[2] = {};
        int n = 0;
        char *p = line;

        while (n < 2) {
                char *w;

                p += strspn(p, " \t\r");
                if (!*p || *p == '#' || *p == '!')
                        break;
                if (*p == '"') {
                        char *o;

                        w = o = ++p;
                        while (*p) {
                                if (p[0] == '"' && p[1] == '"') {
                                        *o++ = '"';
                                        p += 2;
                                } else if (*p == '"') {
                                        p++;
                                        break;
                                } else
                                        *o++ = *p++;
                        }
                        *o = 0;
                } else {
                        w = p;
                        p += strcspn(p, " \t\r#!");
                        if (*p == '#' || *p == '!') {
                                *p = 0;
                                words[n++] = w;
                                break;
                        }
                        if (*p)
                                *p++ = 0;
                }
                words[n++] = w;
        }
        *ret_key = words[0];
        *ret_value = words[1];
        return n;
}

int mpf_last_del_from_config(const char *text, const char *wwid, const char **ret_section)
{
        _cleanup_(freep) char *copy = NULL;
        /* section path: [0] top-level section, [1] its subsection */
        char section[2][32] = {};
        int depth = 0;
        int in_defaults = -1, in_overrides = -1, in_entry = -1;
        int entry_value = -1; /* value in the current multipath entry */
        bool entry_matches = false;
        char *save = NULL;

        if (!text)
                return -ENOENT;
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *key = NULL, *value = NULL;
                int n = split_line(line, &key, &value);

                if (n == 0)
                        continue;
                if (strcmp(key, "}") == 0) {
                        if (depth == 2 && strcmp(section[0], "multipaths") == 0 &&
                            strcmp(section[1], "multipath") == 0 && entry_matches && entry_value >= 0)
                                in_entry = entry_value;
                        if (depth > 0)
                                depth--;
                        continue;
                }
                if (value && strcmp(value, "{") == 0) {
                        if (depth < 2)
                                snprintf(section[depth], sizeof(section[depth]), "%s", key);
                        depth++;
                        if (depth == 2 && strcmp(section[0], "multipaths") == 0) {
                                entry_value = -1;
                                entry_matches = false;
                        }
                        continue;
                }
                if (depth == 2 && strcmp(section[0], "multipaths") == 0 &&
                    strcmp(section[1], "multipath") == 0) {
                        if (strcmp(key, "wwid") == 0)
                                entry_matches = value && wwid && strcmp(value, wwid) == 0;
                        else if (strcmp(key, "flush_on_last_del") == 0) {
                                entry_value = mpf_last_del_from_string(value);
                                if (entry_value < 0)
                                        return -EINVAL;
                        }
                        continue;
                }
                if (depth != 1 || strcmp(key, "flush_on_last_del") != 0)
                        continue;
                if (strcmp(section[0], "defaults") == 0) {
                        in_defaults = mpf_last_del_from_string(value);
                        if (in_defaults < 0)
                                return -EINVAL;
                } else if (strcmp(section[0], "overrides") == 0) {
                        in_overrides = mpf_last_del_from_string(value);
                        if (in_overrides < 0)
                                return -EINVAL;
                }
        }
        if (in_entry >= 0) {
                if (ret_section)
                        *ret_section = "multipaths";
                return in_entry;
        }
        if (in_overrides >= 0) {
                if (ret_section)
                        *ret_section = "overrides";
                return in_overrides;
        }
        if (in_defaults >= 0) {
                if (ret_section)
                        *ret_section = "defaults";
                return in_defaults;
        }
        return -ENOENT;
}

/* Run "multipath -t" (no shell, fixed arguments) and collect its output until the deadline. */
static int run_multipath_t(usec_t deadline, char **ret)
{
        const char *prog = getenv(MPF_MULTIPATH_ENV);
        _cleanup_(closep) int rfd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t n = 0, size = 0;
        int pipefd[2], status, r = 0;
        pid_t pid;

        if (!prog || !*prog)
                prog = MPF_MULTIPATH_DEFAULT;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (dup2(pipefd[1], STDOUT_FILENO) < 0 || (null >= 0 && dup2(null, STDIN_FILENO) < 0) ||
                    (null >= 0 && dup2(null, STDERR_FILENO) < 0))
                        _exit(127);
                execlp(prog, prog, "-t", (char *)NULL);
                _exit(127);
        }
        safe_close(pipefd[1]);
        rfd = pipefd[0];
        for (;;) {
                struct pollfd p = {.fd = rfd, .events = POLLIN};
                int ms = deadline_poll_ms(deadline, now_monotonic());
                ssize_t k;

                if (ms == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (poll(&p, 1, ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }
                if (size - n < 4096) {
                        char *nb;

                        if (size >= MPF_CONFIG_MAX) {
                                r = -EFBIG;
                                break;
                        }
                        nb = realloc(buf, size + 65536);
                        if (!nb) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = nb;
                        size += 65536;
                }
                k = read(rfd, buf + n, size - n - 1);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        r = negative_errno();
                        break;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        if (r < 0)
                (void)kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -EPROTO;
        if (!buf)
                return -ENODATA;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

MpfLastDel mpf_last_del_read(const char *wwid, usec_t deadline, char **ret_source)
{
        _cleanup_(freep) char *text = NULL;
        const char *e = getenv(MPF_LAST_DEL_ENV), *section = NULL, *from;
        int r;

        if (e && *e) {
                r = mpf_last_del_from_string(e);
                if (r >= 0) {
                        (void)asprintf_safe(ret_source, "$%s", MPF_LAST_DEL_ENV);
                        return r;
                }
                log_warning("$%s=%s is not always, unused or never, ignoring", MPF_LAST_DEL_ENV, e);
        }

        from = "multipathd show config";
        r = mpathd_command("show config", deadline, &text);
        if (r == -EPROTO && text) /* the reply is the configuration, not "ok" */
                r = 0;
        if (r < 0) {
                if (r != -ENOENT && r != -ECONNREFUSED)
                        log_debug("multipathd show config failed: %s, trying multipath -t", strerror(-r));
                text = mfree(text);
                from = "multipath -t";
                r = run_multipath_t(deadline, &text);
        }
        if (r >= 0) {
                r = mpf_last_del_from_config(text, wwid, &section);
                if (r >= 0) {
                        (void)asprintf_safe(ret_source, "%s, %s section", from, section);
                        return r;
                }
                if (r == -EINVAL)
                        log_warning("%s: flush_on_last_del has a value we do not know, using the default "
                                    "(%s)",
                                    from, mpf_last_del_to_string(MPF_LAST_DEL_DEFAULT));
        } else
                log_warning("Cannot read multipath's configuration (%s: %s), using the default "
                            "flush_on_last_del (%s)",
                            from, strerror(-r), mpf_last_del_to_string(MPF_LAST_DEL_DEFAULT));
        (void)asprintf_safe(ret_source, "default");
        return MPF_LAST_DEL_DEFAULT;
}
