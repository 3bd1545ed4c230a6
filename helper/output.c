/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <json-c/json.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "macro.h"
#include "output.h"

/* The length of the valid UTF-8 sequence at s (1-4), or 0 if none starts there (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s)
{
        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (s[0] >= 0xe0 && s[0] <= 0xef) {
                unsigned char lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
                return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
        }
        if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                unsigned char lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
                return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
        }
        return 0;
}

char *mpf_utf8_sanitize(const char *s)
{
        static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
        const unsigned char *p = (const unsigned char *)s;
        size_t n = 0;
        char *ret, *w;

        /* every invalid byte becomes 3 bytes at most */
        for (const unsigned char *q = p; *q; q++)
                n++;
        ret = malloc(n * 3 + 1);
        if (!ret)
                return NULL;
        w = ret;
        while (*p) {
                size_t k = utf8_sequence(p);

                if (k == 0) {
                        memcpy(w, replacement, 3);
                        w += 3;
                        p++;
                        continue;
                }
                memcpy(w, p, k);
                w += k;
                p += k;
        }
        *w = 0;
        return ret;
}

/* A JSON string of s: names, mount points and command names are bytes, JSON is UTF-8. */
static struct json_object *json_string(const char *s)
{
        _cleanup_(freep) char *clean = mpf_utf8_sanitize(s);

        return clean ? json_object_new_string(clean) : NULL;
}

static void json_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
        *o = NULL;
}

/* Adds val (consumed) to obj; false on OOM. */
static bool add(struct json_object *obj, const char *key, struct json_object *val)
{
        if (!val)
                return false;
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return false;
        }
        return true;
}

static bool append(struct json_object *arr, struct json_object *val)
{
        if (!val)
                return false;
        if (json_object_array_add(arr, val) < 0) {
                json_object_put(val);
                return false;
        }
        return true;
}

/* json-c represents null as a NULL object */
static bool add_string_or_null(struct json_object *obj, const char *key, const char *s)
{
        if (!s)
                return json_object_object_add(obj, key, NULL) >= 0;
        return add(obj, key, json_string(s));
}

static struct json_object *strv_to_json(char *const *l)
{
        struct json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        STRV_FOREACH (s, (char **)l)
                if (!append(a, json_string(*s))) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

static bool add_tristate(struct json_object *obj, const char *key, int v)
{
        if (v < 0)
                return json_object_object_add(obj, key, NULL) >= 0;
        return add(obj, key, json_object_new_boolean(v > 0));
}

static struct json_object *blockers_to_json(const struct mpf_blockers *b)
{
        _cleanup_(json_putp) struct json_object *o = json_object_new_object(), *mounts = NULL,
                                                *openers = NULL, *kernel_users = NULL;

        if (!o)
                return NULL;
        mounts = json_object_new_array();
        openers = json_object_new_array();
        kernel_users = json_object_new_array();
        if (!mounts || !openers || !kernel_users)
                return NULL;
        for (size_t i = 0; i < b->n_mounts; i++) {
                struct json_object *m = json_object_new_object();
                if (!m || !append(mounts, m) || !add(m, "device", json_string(b->mounts[i].device)) ||
                    !add(m, "target", json_string(b->mounts[i].target)) ||
                    !add(m, "pid", json_object_new_int(b->mounts[i].pid)))
                        return NULL;
        }
        for (size_t i = 0; i < b->n_openers; i++) {
                struct json_object *m = json_object_new_object();
                if (!m || !append(openers, m) || !add(m, "pid", json_object_new_int(b->openers[i].pid)) ||
                    !add(m, "comm", json_string(b->openers[i].comm)) ||
                    !add(m, "device", json_string(b->openers[i].device)))
                        return NULL;
        }
        for (size_t i = 0; i < b->n_kernel_users; i++) {
                struct json_object *m = json_object_new_object();
                if (!m || !append(kernel_users, m) ||
                    !add(m, "kind", json_string(b->kernel_users[i].kind)) ||
                    !add(m, "name", json_string(b->kernel_users[i].name)) ||
                    !add(m, "device", json_string(b->kernel_users[i].device)))
                        return NULL;
        }
        if (!add(o, "holders", strv_to_json(b->holders)) || !add(o, "mounts", TAKE_PTR(mounts)) ||
            !add(o, "swaps", strv_to_json(b->swaps)) || !add(o, "openers", TAKE_PTR(openers)) ||
            !add(o, "kernel_users", TAKE_PTR(kernel_users)) ||
            !add(o, "unexplained_opens", json_object_new_int64(b->unexplained_opens)) ||
            !add(o, "mounts_omitted", json_object_new_int64(b->mounts_omitted)) ||
            !add(o, "openers_omitted", json_object_new_int64(b->openers_omitted)))
                return NULL;
        return TAKE_PTR(o);
}

static struct json_object *map_to_json(const struct mpf_map_result *r, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = json_object_new_object(), *q = NULL;
        char dev[32];

        if (!o)
                return NULL;
        q = json_object_new_object();
        if (!q || !add_tristate(q, "before", r->queueing_before) ||
            !add_tristate(q, "after", r->queueing_after))
                return NULL;
        if (r->have_devt)
                snprintf(dev, sizeof(dev), "%u:%u", major(r->devt), minor(r->devt));
        if (!add_string_or_null(o, "map", r->map) || !add_string_or_null(o, "name", r->name) ||
            !add_string_or_null(o, "uuid", r->uuid) ||
            !add_string_or_null(o, "dev", r->have_devt ? dev : NULL) ||
            !add(o, "result", json_object_new_string(mpf_result_to_string(r->result))) ||
            !add(o, "step", json_object_new_string(mpf_step_to_string(r->step))) ||
            !add(o, "reason", json_string(strempty(r->reason))) ||
            !add(o, "blockers", blockers_to_json(&r->blockers)) || !add(o, "queueing", TAKE_PTR(q)) ||
            !add(o, "partitions", strv_to_json(r->partitions)) ||
            !add(o, "data_lost", json_object_new_boolean(r->data_lost)) ||
            !add(o, "failed_write_bytes", json_object_new_int64((int64_t)r->failed_write_bytes)) ||
            !(r->stuck_worker > 0 ? add(o, "stuck_worker", json_object_new_int(r->stuck_worker))
                                  : json_object_object_add(o, "stuck_worker", NULL) >= 0) ||
            !add(o, "elapsed_ms", json_object_new_int64((int64_t)r->elapsed_ms)) ||
            !add(o, "waited_ms", json_object_new_int64((int64_t)r->waited_ms)) ||
            !add(o, "attempts", json_object_new_int64(r->attempts)))
                return NULL;
        if (dry_run && !add(o, "plan", strv_to_json(r->plan)))
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *mpf_run_to_json(const struct mpf_run *run, const char *version, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = json_object_new_object(), *maps = NULL;

        if (!o)
                return NULL;
        maps = json_object_new_array();
        if (!maps)
                return NULL;
        for (size_t i = 0; i < run->n_maps; i++)
                if (!append(maps, map_to_json(&run->maps[i], dry_run)))
                        return NULL;
        if (!add(o, "schema_version", json_object_new_int(MPF_SCHEMA_VERSION)) ||
            !add(o, "version", json_string(version)) || !add(o, "maps", TAKE_PTR(maps)) ||
            !add(o, "exit_status", json_object_new_int(run->exit_status)))
                return NULL;
        if (dry_run && !add(o, "dry_run", json_object_new_boolean(1)))
                return NULL;
        if (run->error && !add(o, "error", json_string(run->error)))
                return NULL;
        return TAKE_PTR(o);
}

static int print_json(FILE *f, struct json_object *o, int flags)
{
        const char *s;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        /* flushed at once: a caller that kills us keeps every line printed */
        if (fprintf(f, "%s\n", s) < 0 || fflush(f) != 0)
                return -EIO;
        return 0;
}

int mpf_print_json(FILE *f, const struct mpf_run *run, const char *version, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = mpf_run_to_json(run, version, dry_run);

        return print_json(f, o, JSON_C_TO_STRING_PRETTY);
}

/* {"schema_version": 1, "type": TYPE} */
static struct json_object *line_new(const char *type)
{
        _cleanup_(json_putp) struct json_object *o = json_object_new_object();

        if (!o || !add(o, "schema_version", json_object_new_int(MPF_SCHEMA_VERSION)) ||
            !add(o, "type", json_object_new_string(type)))
                return NULL;
        return TAKE_PTR(o);
}

struct json_object *mpf_map_line_to_json(const struct mpf_map_result *r, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = line_new("map"), *m = map_to_json(r, dry_run);

        if (!o || !m)
                return NULL;
        /* the map's fields follow schema_version and type, in the document's order */
        json_object_object_foreach (m, key, val) {
                /* null is a NULL object in json-c: nothing to take a reference on */
                if (json_object_object_add(o, key, json_object_get(val)) < 0) {
                        json_object_put(val);
                        return NULL;
                }
        }
        return TAKE_PTR(o);
}

/* One line in one write(2), so that a kill can only cut it off if the pipe to the reader is full. */
static int print_line(FILE *f, struct json_object *o)
{
        _cleanup_(freep) char *line = NULL;
        const char *s;
        size_t len, done = 0;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf_safe(&line, "%s\n", s) < 0)
                return -ENOMEM;
        if (fflush(f) != 0)
                return -EIO;
        len = strlen(line);
        while (done < len) {
                ssize_t k = write(fileno(f), line + done, len - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                done += (size_t)k;
        }
        return 0;
}

int mpf_print_json_map_line(FILE *f, const struct mpf_map_result *r, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = mpf_map_line_to_json(r, dry_run);

        return print_line(f, o);
}

struct json_object *mpf_summary_line_to_json(const struct mpf_run *run, const char *version, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = line_new("summary"), *counts = NULL;

        if (!o)
                return NULL;
        counts = json_object_new_object();
        if (!counts)
                return NULL;
        for (unsigned k = 0; k < _MPF_RESULT_MAX; k++) {
                size_t n = 0;

                for (size_t i = 0; i < run->n_maps; i++)
                        n += run->maps[i].result == (MpfResult)k;
                if (n > 0 &&
                    !add(counts, mpf_result_to_string((MpfResult)k), json_object_new_int64((int64_t)n)))
                        return NULL;
        }
        if (!add(o, "version", json_string(version)) ||
            !add(o, "n_maps", json_object_new_int64((int64_t)run->n_maps)) ||
            !add(o, "results", TAKE_PTR(counts)) ||
            !add(o, "exit_status", json_object_new_int(run->exit_status)))
                return NULL;
        if (dry_run && !add(o, "dry_run", json_object_new_boolean(1)))
                return NULL;
        if (run->udev_late && !add(o, "udev_late", json_object_new_boolean(1)))
                return NULL;
        if (run->error && !add(o, "error", json_string(run->error)))
                return NULL;
        return TAKE_PTR(o);
}

int mpf_print_json_summary_line(FILE *f, const struct mpf_run *run, const char *version, bool dry_run)
{
        _cleanup_(json_putp) struct json_object *o = mpf_summary_line_to_json(run, version, dry_run);

        return print_line(f, o);
}

int mpf_print_json_error(FILE *f, bool lines, const char *version, int exit_status, const char *error)
{
        struct mpf_run run = {.exit_status = exit_status, .error = (char *)error};

        if (lines)
                return mpf_print_json_summary_line(f, &run, version, false);
        return mpf_print_json(f, &run, version, false);
}

char *mpf_map_result_line(const struct mpf_map_result *r)
{
        char *s = NULL;
        const char *res = mpf_result_to_string(r->result), *step = mpf_step_to_string(r->step);
        const char *reason = strempty(r->reason);

        if (r->plan) /* --dry-run: a prediction, nothing was done */
                (void)asprintf_safe(&s, "dry run: would be %s: %s", res, reason);
        else if (r->result == MPF_RESULT_REMOVED && r->step == MPF_STEP_DONE &&
                 strcmp(reason, "removed") == 0 && r->waited_ms == 0)
                (void)asprintf_safe(&s, "removed (%llu ms)", (unsigned long long)r->elapsed_ms);
        else if (r->result == MPF_RESULT_REMOVED && r->step == MPF_STEP_DONE &&
                 strcmp(reason, "removed") == 0)
                (void)asprintf_safe(
                        &s, "removed (%llu ms, of which %llu ms waiting for it to be free, %u attempts)",
                        (unsigned long long)r->elapsed_ms, (unsigned long long)r->waited_ms, r->attempts);
        else
                (void)asprintf_safe(&s, "%s at %s: %s%s%s%s", res, step, reason,
                                    r->restore_failed ? "; QUEUEING COULD NOT BE RESTORED" : "",
                                    r->partitions_lost ? "; PARTITION MAPS COULD NOT BE RE-CREATED" : "",
                                    r->waited_ms > 0 ? " (after waiting for it to be free)" : "");
        return s;
}

void mpf_log_results(const struct mpf_run *run)
{
        if (run->error)
                log_error("%s", run->error);
        for (size_t i = 0; i < run->n_maps; i++) {
                const struct mpf_map_result *r = &run->maps[i];
                _cleanup_(freep) char *line = mpf_map_result_line(r), *message = NULL;
                const char *label = r->name ? r->name : r->map;
                int level = mpf_map_result_exit_code(r) == MPF_EXIT_OK ? LOG_INFO : LOG_ERR;

                if (!line)
                        continue;
                if (level > log_get_max_level())
                        continue;
                if (log_to_journal() && asprintf_safe(&message, "%s: %s", label, line) >= 0) {
                        char priority[8];
                        const struct mpf_journal_field fields[] = {
                                {"MESSAGE", message},
                                {"PRIORITY", priority},
                                {"SYSLOG_IDENTIFIER", "mpath-flush"},
                                {"MPATH_FLUSH_MAP", label},
                                {"MPATH_FLUSH_UUID", strempty(r->uuid)},
                                {"MPATH_FLUSH_STEP", mpf_step_to_string(r->step)},
                                {"MPATH_FLUSH_RESULT", mpf_result_to_string(r->result)},
                        };

                        (void)snprintf(priority, sizeof(priority), "%i", level);
                        if (mpf_journal_send(fields, ELEMENTSOF(fields)) >= 0)
                                continue;
                        /* journald is not there: stderr it is */
                }
                fprintf(stderr, "mpath-flush: %s: %s\n", label, line);
        }
}

void mpf_print_plan(FILE *f, const struct mpf_run *run)
{
        for (size_t i = 0; i < run->n_maps; i++) {
                const struct mpf_map_result *r = &run->maps[i];

                fprintf(f, "%s (%s): would be %s\n", r->name ? r->name : r->map, strempty(r->uuid),
                        mpf_result_to_string(r->result));
                STRV_FOREACH (p, r->plan)
                        fprintf(f, "  %s\n", *p);
                if (r->queueing_before >= 0)
                        fprintf(f, "  queueing now: %s\n", r->queueing_before ? "on" : "off");
        }
}
