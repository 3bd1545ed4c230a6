/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "result.h"

static const char *const step_table[_MPF_STEP_MAX] = {
        [MPF_STEP_RESOLVE] = "resolve",
        [MPF_STEP_LOCK] = "lock",
        [MPF_STEP_IN_USE] = "in-use",
        [MPF_STEP_QUEUEING] = "queueing",
        [MPF_STEP_PARTITIONS] = "partitions",
        [MPF_STEP_CLAIM] = "claim",
        [MPF_STEP_FLUSH] = "flush",
        [MPF_STEP_SOLE_OPENER] = "sole-opener",
        [MPF_STEP_REMOVE] = "remove",
        [MPF_STEP_UDEV_WAIT] = "udev-wait",
        [MPF_STEP_DONE] = "done",
};

static const char *const result_table[_MPF_RESULT_MAX] = {
        [MPF_RESULT_REMOVED] = "removed",   [MPF_RESULT_ABSENT] = "absent",
        [MPF_RESULT_DEFERRED] = "deferred", [MPF_RESULT_BUSY] = "busy",
        [MPF_RESULT_TIMEOUT] = "timeout",   [MPF_RESULT_FAILED] = "failed",
        [MPF_RESULT_REFUSED] = "refused",
};

const char *mpf_step_to_string(MpfStep s)
{
        if ((unsigned)s >= _MPF_STEP_MAX)
                return NULL;
        return step_table[s];
}

const char *mpf_result_to_string(MpfResult r)
{
        if ((unsigned)r >= _MPF_RESULT_MAX)
                return NULL;
        return result_table[r];
}

MpfStep mpf_step_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _MPF_STEP_MAX; i++)
                if (strcmp(step_table[i], s) == 0)
                        return (MpfStep)i;
        return _MPF_STEP_MAX;
}

MpfResult mpf_result_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _MPF_RESULT_MAX; i++)
                if (strcmp(result_table[i], s) == 0)
                        return (MpfResult)i;
        return _MPF_RESULT_MAX;
}

void mpf_blockers_done(struct mpf_blockers *b)
{
        if (!b)
                return;
        b->holders = strv_free(b->holders);
        b->holder_names = strv_free(b->holder_names);
        for (size_t i = 0; i < b->n_mounts; i++) {
                free(b->mounts[i].device);
                free(b->mounts[i].target);
        }
        b->mounts = mfree(b->mounts);
        b->n_mounts = 0;
        b->swaps = strv_free(b->swaps);
        for (size_t i = 0; i < b->n_openers; i++) {
                free(b->openers[i].comm);
                free(b->openers[i].device);
                free(b->openers[i].own);
        }
        b->openers = mfree(b->openers);
        b->n_openers = 0;
        for (size_t i = 0; i < b->n_kernel_users; i++) {
                free(b->kernel_users[i].kind);
                free(b->kernel_users[i].name);
                free(b->kernel_users[i].device);
        }
        b->kernel_users = mfree(b->kernel_users);
        b->n_kernel_users = 0;
        b->unexplained_opens = 0;
        b->mounts_omitted = b->openers_omitted = 0;
        b->last_omitted_pid = 0;
}

bool mpf_blockers_any(const struct mpf_blockers *b)
{
        return strv_length(b->holders) > 0 || b->n_mounts > 0 || strv_length(b->swaps) > 0 ||
               b->n_openers > 0 || b->n_kernel_users > 0;
}

int mpf_blockers_add_mount(struct mpf_blockers *b, const char *device, const char *target, pid_t pid)
{
        struct mpf_mount *m;
        char *d, *t;

        if (b->n_mounts >= MPF_BLOCKERS_LIST_MAX) {
                b->mounts_omitted++;
                return 0;
        }
        d = strdup(device);
        t = strdup(target);
        m = realloc(b->mounts, sizeof(*m) * (b->n_mounts + 1));
        if (!d || !t || !m) {
                free(d);
                free(t);
                if (m)
                        b->mounts = m;
                return -ENOMEM;
        }
        b->mounts = m;
        b->mounts[b->n_mounts++] = (struct mpf_mount){.device = d, .target = t, .pid = pid};
        return 0;
}

int mpf_blockers_add_opener(struct mpf_blockers *b, pid_t pid, const char *comm, const char *device)
{
        struct mpf_opener *o;
        char *c, *d;

        /* one entry per process and device, however many fds it has */
        for (size_t i = 0; i < b->n_openers; i++)
                if (b->openers[i].pid == pid && strcmp(b->openers[i].device, device) == 0)
                        return 0;
        if (b->n_openers >= MPF_BLOCKERS_LIST_MAX) {
                /* a process's fds are scanned together: counted once */
                if (b->openers_omitted == 0 || b->last_omitted_pid != pid)
                        b->openers_omitted++;
                b->last_omitted_pid = pid;
                return 0;
        }
        c = strdup(comm);
        d = strdup(device);
        o = realloc(b->openers, sizeof(*o) * (b->n_openers + 1));
        if (!c || !d || !o) {
                free(c);
                free(d);
                if (o)
                        b->openers = o;
                return -ENOMEM;
        }
        b->openers = o;
        b->openers[b->n_openers++] = (struct mpf_opener){.pid = pid, .comm = c, .device = d};
        return 0;
}

int mpf_blockers_mark_own(struct mpf_blockers *b, pid_t pid, const char *device, const char *role,
                          const char *detail)
{
        for (size_t i = 0; i < b->n_openers; i++) {
                struct mpf_opener *o = &b->openers[i];
                char *s;

                if (o->pid != pid || strcmp(o->device, device) != 0)
                        continue;
                if (o->own && !detail)
                        return 0;
                if (asprintf_safe(&s, "%s%s%s", o->own ? o->own : role, detail ? ", " : "",
                                  strempty(detail)) < 0)
                        return -ENOMEM;
                free(o->own);
                o->own = s;
                return 0;
        }
        return 0; /* not listed (past MPF_BLOCKERS_LIST_MAX): counted only */
}

bool mpf_blockers_any_own(const struct mpf_blockers *b)
{
        for (size_t i = 0; i < b->n_openers; i++)
                if (b->openers[i].own)
                        return true;
        return false;
}

int mpf_blockers_add_kernel_user(struct mpf_blockers *b, const char *kind, const char *name,
                                 const char *device)
{
        struct mpf_kernel_user *u;
        char *k, *n, *d;

        for (size_t i = 0; i < b->n_kernel_users; i++)
                if (strcmp(b->kernel_users[i].kind, kind) == 0 &&
                    strcmp(b->kernel_users[i].name, name) == 0 &&
                    strcmp(b->kernel_users[i].device, device) == 0)
                        return 0;
        k = strdup(kind);
        n = strdup(name);
        d = strdup(device);
        u = realloc(b->kernel_users, sizeof(*u) * (b->n_kernel_users + 1));
        if (!k || !n || !d || !u) {
                free(k);
                free(n);
                free(d);
                if (u)
                        b->kernel_users = u;
                return -ENOMEM;
        }
        b->kernel_users = u;
        b->kernel_users[b->n_kernel_users++] = (struct mpf_kernel_user){.kind = k, .name = n, .device = d};
        return 0;
}

static int append(char **s, size_t *len, const char *fmt, ...) _printf_(3, 4);
static int append(char **s, size_t *len, const char *fmt, ...)
{
        _cleanup_(freep) char *piece = NULL;
        va_list ap;
        size_t l;
        char *n;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&piece, fmt, ap);
        va_end(ap);
        if (r < 0) {
                piece = NULL;
                return -ENOMEM;
        }
        l = strlen(piece);
        n = realloc(*s, *len + l + 3);
        if (!n)
                return -ENOMEM;
        if (*len > 0) {
                memcpy(n + *len, ", ", 2);
                *len += 2;
        }
        memcpy(n + *len, piece, l + 1);
        *len += l;
        *s = n;
        return 0;
}

char *mpf_blockers_describe(const struct mpf_blockers *b)
{
        _cleanup_(freep) char *s = NULL;
        size_t len = 0;

        for (size_t i = 0; i < b->n_mounts; i++) {
                bool seen = false;

                /* Services with private mount namespaces hold propagated copies of the same
                 * mount: name each device and mount point once here; the JSON lists them all. */
                for (size_t j = 0; j < i && !seen; j++)
                        seen = strcmp(b->mounts[j].device, b->mounts[i].device) == 0 &&
                               strcmp(b->mounts[j].target, b->mounts[i].target) == 0;
                if (seen)
                        continue;
                if (append(&s, &len, "%s mounted on %s (pid %d)", b->mounts[i].device, b->mounts[i].target,
                           (int)b->mounts[i].pid) < 0)
                        return NULL;
        }
        if (b->mounts_omitted > 0 && append(&s, &len, "%u more mounts", b->mounts_omitted) < 0)
                return NULL;
        for (size_t i = 0; i < b->n_openers; i++) {
                const struct mpf_opener *o = &b->openers[i];

                /* ours: not a user of the map, and said so */
                if (o->own ? append(&s, &len, "%s opened by our own process pid %d (%s: %s)", o->device,
                                    (int)o->pid, o->comm, o->own) < 0
                           : append(&s, &len, "%s opened by pid %d (%s)", o->device, (int)o->pid, o->comm) <
                                     0)
                        return NULL;
        }
        if (b->openers_omitted > 0 &&
            append(&s, &len, "opened by %u more processes", b->openers_omitted) < 0)
                return NULL;
        for (size_t i = 0; i < strv_length(b->holders); i++) {
                const char *name = i < strv_length(b->holder_names) ? b->holder_names[i] : "";
                if (append(&s, &len, "held by %s%s%s%s", b->holders[i], *name ? " (" : "", name,
                           *name ? ")" : "") < 0)
                        return NULL;
        }
        STRV_FOREACH (w, b->swaps)
                if (append(&s, &len, "swap %s", *w) < 0)
                        return NULL;
        for (size_t i = 0; i < b->n_kernel_users; i++) {
                const struct mpf_kernel_user *u = &b->kernel_users[i];
                int r;

                if (strcmp(u->kind, "loop") == 0)
                        r = append(&s, &len, "%s backs loop device %s", u->device, u->name);
                else if (strcmp(u->kind, "journal") == 0)
                        r = append(&s, &len, "%s is an external journal (jbd2 %s)", u->device, u->name);
                else
                        r = append(&s, &len, "%s is a device of %s file system %s", u->device, u->kind,
                                   u->name);
                if (r < 0)
                        return NULL;
        }
        if (b->unexplained_opens > 0)
                if (append(&s, &len, "%u unexplained open(s)", b->unexplained_opens) < 0)
                        return NULL;
        if (!s)
                return strdup("");
        return TAKE_PTR(s);
}

void mpf_map_result_done(struct mpf_map_result *r)
{
        if (!r)
                return;
        free(r->map);
        free(r->name);
        free(r->uuid);
        free(r->reason);
        mpf_blockers_done(&r->blockers);
        strv_free(r->partitions);
        strv_free(r->plan);
        *r = (struct mpf_map_result){.queueing_before = -1, .queueing_after = -1};
}

int mpf_map_result_exit_code(const struct mpf_map_result *r)
{
        if (r->restore_failed || r->partitions_lost)
                return MPF_EXIT_RESTORE_FAILED;
        switch (r->result) {
        case MPF_RESULT_REMOVED:
                return r->data_lost ? MPF_EXIT_DATA_LOST : MPF_EXIT_OK;
        case MPF_RESULT_ABSENT:
        case MPF_RESULT_DEFERRED:
                return MPF_EXIT_OK;
        case MPF_RESULT_BUSY:
                return MPF_EXIT_BUSY;
        case MPF_RESULT_TIMEOUT:
                return MPF_EXIT_TIMEOUT;
        case MPF_RESULT_REFUSED:
                return MPF_EXIT_REFUSED;
        case MPF_RESULT_FAILED:
        default:
                return MPF_EXIT_FAILED;
        }
}

static int severity(int code)
{
        /* 7 > 8 > 1 > 5 > 4 > 3 > 0; 2 and 6 end the run before maps, rank them highest if they appear */
        switch (code) {
        case MPF_EXIT_OK:
                return 0;
        case MPF_EXIT_REFUSED:
                return 1;
        case MPF_EXIT_BUSY:
                return 2;
        case MPF_EXIT_TIMEOUT:
                return 3;
        case MPF_EXIT_FAILED:
                return 4;
        case MPF_EXIT_DATA_LOST:
                return 5;
        case MPF_EXIT_RESTORE_FAILED:
                return 6;
        case MPF_EXIT_ENVIRONMENT:
                return 7;
        case MPF_EXIT_USAGE:
        default:
                return 8;
        }
}

int mpf_exit_code_merge(int a, int b)
{
        return severity(a) >= severity(b) ? a : b;
}
