/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "flush.h"
#include "log.h"
#include "macro.h"
#include "undo.h"

void mpf_undo_done(struct mpf_undo *u)
{
        if (!u)
                return;
        for (size_t i = 0; i < u->n_saved; i++)
                mpf_dm_saved_done(&u->saved[i]);
        free(u->saved);
        *u = (struct mpf_undo){};
}

bool mpf_undo_empty(const struct mpf_undo *u)
{
        return !u->kernel_queueing_disabled && !u->mpathd_queueing_disabled && u->n_saved == 0;
}

int mpf_undo_add_saved(struct mpf_undo *u, struct mpf_dm_saved *s)
{
        struct mpf_dm_saved *a = reallocarray(u->saved, u->n_saved + 1, sizeof(*a));

        if (!a) {
                mpf_dm_saved_done(s);
                return -ENOMEM;
        }
        u->saved = a;
        a[u->n_saved++] = *s;
        *s = (struct mpf_dm_saved){};
        return 0;
}

void mpf_undo_drop_last(struct mpf_undo *u)
{
        if (u->n_saved > 0)
                mpf_dm_saved_done(&u->saved[--u->n_saved]);
}

/* ---- the record as text ---- */

/* A value runs to the end of its line: it must not hold a control character. */
static bool value_ok(const char *s)
{
        for (; s && *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return s != NULL;
}

int mpf_undo_format(const struct mpf_undo *u, char **ret)
{
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0;
        _cleanup_(fclosep) FILE *f = NULL;

        if (!value_ok(u->name) || !value_ok(u->uuid))
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%s\nname %s\nuuid %s\ndev %u:%u\n", MPF_UNDO_MAGIC, u->name, u->uuid, major(u->devt),
                minor(u->devt));
        if (u->kernel_queueing_disabled)
                fputs("queueing-off kernel\n", f);
        if (u->mpathd_queueing_disabled)
                fputs("queueing-off multipathd\n", f);
        for (size_t i = 0; i < u->n_saved; i++) {
                const struct mpf_dm_saved *s = &u->saved[i];

                if (!value_ok(s->name) || !value_ok(s->uuid))
                        return -EINVAL;
                fprintf(f, "part %s\npart-uuid %s\npart-read-only %d\n", s->name, s->uuid, s->read_only);
                for (size_t j = 0; j < s->n_targets; j++) {
                        const struct mpf_dm_target *t = &s->targets[j];

                        if (!t->type || !*t->type || strchr(t->type, ' ') || !value_ok(t->type) ||
                            !value_ok(t->params))
                                return -EINVAL;
                        fprintf(f, "part-target %" PRIu64 " %" PRIu64 " %s %s\n", t->start, t->length,
                                t->type, t->params);
                }
        }
        if (ferror(f) || fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int copy_value(char *dst, size_t size, const char *v)
{
        if (!value_ok(v) || !*v || strlen(v) >= size)
                return -EBADMSG;
        memcpy(dst, v, strlen(v) + 1);
        return 0;
}

static int parse_target(const char *v, struct mpf_dm_saved *s)
{
        struct mpf_dm_target t = {}, *a;
        uint64_t start, length;
        int type_at = 0, params_at = 0;

        if (sscanf(v, "%" SCNu64 " %" SCNu64 " %n%*s %n", &start, &length, &type_at, &params_at) < 2 ||
            type_at == 0 || params_at == 0)
                return -EBADMSG;
        t.start = start;
        t.length = length;
        t.type = strndup(v + type_at, strcspn(v + type_at, " "));
        t.params = strdup(v + params_at);
        a = t.type && t.params ? reallocarray(s->targets, s->n_targets + 1, sizeof(*a)) : NULL;
        if (!a) {
                free(t.type);
                free(t.params);
                return -ENOMEM;
        }
        s->targets = a;
        a[s->n_targets++] = t;
        return 0;
}

static int parse_line(struct mpf_undo *u, const char *key, const char *v)
{
        struct mpf_dm_saved *s = u->n_saved > 0 ? &u->saved[u->n_saved - 1] : NULL;
        unsigned ma, mi;
        char tail;

        if (strcmp(key, "name") == 0)
                return copy_value(u->name, sizeof(u->name), v);
        if (strcmp(key, "uuid") == 0)
                return copy_value(u->uuid, sizeof(u->uuid), v);
        if (strcmp(key, "dev") == 0) {
                if (sscanf(v, "%u:%u%c", &ma, &mi, &tail) != 2)
                        return -EBADMSG;
                u->devt = makedev(ma, mi);
                return 0;
        }
        if (strcmp(key, "queueing-off") == 0) {
                if (strcmp(v, "kernel") == 0)
                        u->kernel_queueing_disabled = true;
                else if (strcmp(v, "multipathd") == 0)
                        u->mpathd_queueing_disabled = true;
                else
                        return -EBADMSG;
                return 0;
        }
        if (strcmp(key, "part") == 0) {
                struct mpf_dm_saved n = {};
                int r = copy_value(n.name, sizeof(n.name), v);

                if (r < 0)
                        return r;
                return mpf_undo_add_saved(u, &n);
        }
        if (!s)
                return -EBADMSG;
        if (strcmp(key, "part-uuid") == 0)
                return copy_value(s->uuid, sizeof(s->uuid), v);
        if (strcmp(key, "part-read-only") == 0) {
                if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
                        return -EBADMSG;
                s->read_only = v[0] == '1';
                return 0;
        }
        if (strcmp(key, "part-target") == 0)
                return parse_target(v, s);
        return -EBADMSG;
}

int mpf_undo_parse(const char *text, struct mpf_undo *ret)
{
        struct mpf_undo u = {};
        const char *p = text;
        bool first = true;
        int r = 0;

        while (*p && r >= 0) {
                size_t n = strcspn(p, "\n");
                _cleanup_(freep) char *line = strndup(p, n);
                char *v;

                if (!line) {
                        r = -ENOMEM;
                        break;
                }
                p += n + (p[n] == '\n');
                if (first) {
                        r = strcmp(line, MPF_UNDO_MAGIC) == 0 ? 0 : -EBADMSG;
                        first = false;
                        continue;
                }
                v = strchr(line, ' ');
                if (!v) {
                        r = -EBADMSG;
                        break;
                }
                *v++ = 0;
                r = parse_line(&u, line, v);
        }
        if (r >= 0 && (first || !*u.name || !*u.uuid || u.devt == 0))
                r = -EBADMSG;
        for (size_t i = 0; r >= 0 && i < u.n_saved; i++)
                if (!*u.saved[i].uuid || u.saved[i].n_targets == 0)
                        r = -EBADMSG;
        if (r < 0) {
                mpf_undo_done(&u);
                return r;
        }
        *ret = u;
        return 0;
}

/* ---- the record file ---- */

static int undo_path(const char *rundir, const char *uuid, bool make_dir, char **ret)
{
        _cleanup_(freep) char *dir = NULL;

        if (!uuid || !*uuid || strchr(uuid, '/') || uuid[0] == '.')
                return -EINVAL;
        if (asprintf_safe(&dir, "%s/undo", rundir) < 0)
                return -ENOMEM;
        if (make_dir) {
                if (mkdir(rundir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
        }
        return asprintf_safe(ret, "%s/%s", dir, uuid);
}

int mpf_undo_write(const char *rundir, const struct mpf_undo *u)
{
        _cleanup_(freep) char *path = NULL, *tmp = NULL, *text = NULL;
        _cleanup_(closep) int fd = -EBADF;
        size_t n;
        int r;

        r = undo_path(rundir, u->uuid, !mpf_undo_empty(u), &path);
        if (r < 0)
                return r;
        if (asprintf_safe(&tmp, "%s.new", path) < 0)
                return -ENOMEM;
        if (mpf_undo_empty(u)) {
                (void)unlink(tmp); /* left by a writer that was killed */
                return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
        }

        r = mpf_undo_format(u, &text);
        if (r < 0)
                return r;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        n = strlen(text);
        if (write(fd, text, n) != (ssize_t)n) {
                r = errno > 0 ? -errno : -EIO;
                (void)unlink(tmp);
                return r;
        }
        fd = safe_close(fd);
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                (void)unlink(tmp);
                return r;
        }
        return 0;
}

int mpf_undo_read(const char *rundir, const char *uuid, struct mpf_undo *ret)
{
        _cleanup_(freep) char *path = NULL, *text = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t size = 0;
        ssize_t n;

        int r = undo_path(rundir, uuid, false, &path);
        if (r < 0)
                return r;
        f = fopen(path, "re");
        if (!f && errno == ENOENT) {
                /* a writer killed before its first record was in place leaves only this (we hold
                 * the map lock: nobody is writing it now) */
                _cleanup_(freep) char *tmp = NULL;

                if (asprintf_safe(&tmp, "%s.new", path) >= 0)
                        (void)unlink(tmp);
                return -ENOENT;
        }
        if (!f)
                return negative_errno();
        n = getdelim(&text, &size, 0, f);
        if (n < 0)
                return ferror(f) ? -EIO : -EBADMSG;
        if (strlen(text) != (size_t)n)
                return -EBADMSG;
        r = mpf_undo_parse(text, ret);
        if (r >= 0 && strcmp(ret->uuid, uuid) != 0) {
                mpf_undo_done(ret);
                return -EBADMSG;
        }
        return r;
}

/* ---- putting the map back ---- */

/* Has the map gone meanwhile (removed by us, or by someone else)? Errors count as "no". */
static bool map_gone(const struct mpf_ops *o, const struct mpf_undo *u, struct mpf_dm_info *ret)
{
        struct mpf_dm_info info = {};
        int r;

        r = mpf_map_still(o, u->uuid, u->devt, &info);
        if (r < 0)
                return false;
        if (ret)
                *ret = info;
        return r == 0;
}

int mpf_undo_queueing(const struct mpf_ops *o, struct mpf_undo *u, usec_t deadline)
{
        struct mpf_dm_info info = {};
        const char *name;
        bool late = false;
        int r, ret = 0;

        if (!u->kernel_queueing_disabled && !u->mpathd_queueing_disabled)
                return 1;
        if (map_gone(o, u, &info)) {
                /* its queueing went with it */
                u->kernel_queueing_disabled = u->mpathd_queueing_disabled = u->mpathd_reply_pending = false;
                return 1;
        }
        /* The map is found by its UUID and dev_t: renamed since (an alias multipathd changed), it is
         * told by the name it has now, and the one that took the old name is left alone. */
        name = info.exists && info.name[0] ? info.name : u->name;

        if (u->mpathd_queueing_disabled && u->mpathd_reply_pending) {
                /* on the connection it is pending on: what we send after it comes after it */
                r = o->mpathd_reply ? o->mpathd_reply(o->userdata, deadline) : -ENOMSG;
                if (r == -ETIMEDOUT) {
                        ret = log_map(LOG_ERR, r, name, u->uuid, "queueing",
                                      "multipathd has not answered disablequeueing yet: it may still switch "
                                      "queueing off; 'multipathd restorequeueing map %s' puts it back",
                                      name);
                        late = true;
                } else {
                        u->mpathd_reply_pending = false;
                        if (r == -EBADMSG) /* "fail": it did not switch queueing off */
                                u->mpathd_queueing_disabled = false;
                        /* else restorequeueing: after "ok", or to a multipathd that went away and
                         * came back (a new connection then), or with an answer we cannot read */
                }
        }
        if (u->mpathd_queueing_disabled && !u->mpathd_reply_pending) {
                _cleanup_(freep) char *cmd = NULL;

                if (asprintf_safe(&cmd, "restorequeueing map %s", name) < 0)
                        r = -ENOMEM;
                else
                        r = o->mpathd(o->userdata, cmd, deadline);
                if (r == -ENOENT || r == -ECONNREFUSED)
                        r = 0; /* multipathd does not run (any more): it keeps no queueing state */
                else if (r == -EBADMSG) {
                        /* "fail": multipathd knows no map of that name (any more), so it keeps no
                         * queueing state for it, and a disablequeueing for that name fails too */
                        log_map(LOG_DEBUG, 0, name, u->uuid, "queueing",
                                "multipathd answered restorequeueing with fail: it does not know the map");
                        r = 0;
                }
                if (r < 0) {
                        /* Until it restores it, multipathd may switch the kernel's queueing off
                         * again: a disablequeueing it has not carried out yet (sent by a flusher
                         * that died, whose answer nobody can read any more), or a table it loads
                         * with its queueing off. So the kernel's mark stays too. */
                        ret = log_map(LOG_ERR, r, name, u->uuid, "queueing",
                                      "Failed to restore queueing in multipathd: %s; until it is, "
                                      "multipathd may switch queueing off again; 'multipathd "
                                      "restorequeueing map %s' and 'dmsetup message %s 0 "
                                      "queue_if_no_path' put it back",
                                      /* sent, its answer not there by the deadline */
                                      r == -EINPROGRESS ? "no answer in time" : strerror(-r), name, name);
                        late = true;
                } else
                        u->mpathd_queueing_disabled = false;
        }
        if (u->kernel_queueing_disabled) {
                r = o->message(o->userdata, name, u->uuid, "queue_if_no_path");
                if (r == -ENXIO)
                        r = 0; /* the map is gone: nothing left to restore */
                if (r < 0)
                        ret = log_map(LOG_ERR, r, name, u->uuid, "queueing",
                                      "Failed to restore queue_if_no_path: %m");
                else
                        u->kernel_queueing_disabled = false;
        }
        if (late)
                /* when multipathd carries the command out, it switches queueing off in the kernel too:
                 * the next flusher puts both back (restorequeueing, then queue_if_no_path) */
                u->kernel_queueing_disabled = true;
        return ret;
}

/* A partition map's table opens the map exclusively: while someone else still has it open O_EXCL
 * (our write-back worker of a helper that was killed, finishing its fsync) that fails with EBUSY.
 * Try again until the deadline. */
static int create_retrying(const struct mpf_ops *o, const struct mpf_dm_saved *s, usec_t deadline,
                           uint32_t *cookie)
{
        struct backoff b;

        backoff_init(&b, UNDO_CREATE_BACKOFF_FIRST_USEC, UNDO_CREATE_BACKOFF_MAX_USEC);
        for (;;) {
                usec_t t, d;
                int r = o->create(o->userdata, s, cookie);

                if (r != -EBUSY)
                        return r;
                t = o->now(o->userdata);
                d = backoff_step(&b, deadline, t);
                if (d == 0)
                        return r;
                o->sleep_until(o->userdata, t + d);
        }
}

int mpf_undo_partitions(const struct mpf_ops *o, struct mpf_undo *u, usec_t deadline, size_t *ret_made)
{
        struct mpf_dm_info map = {}, info;
        uint32_t cookie = 0;
        size_t made = 0, k = 0;
        bool failed = false;
        int r;

        *ret_made = 0;
        if (u->n_saved == 0)
                return 0;
        if (map_gone(o, u, &map) || map.deferred_remove) {
                /* they went with it (or go with it: a partition map would hold it open) */
                for (size_t i = 0; i < u->n_saved; i++)
                        mpf_dm_saved_done(&u->saved[i]);
                u->n_saved = 0;
                return 0;
        }
        for (size_t i = 0; i < u->n_saved; i++) {
                struct mpf_dm_saved *s = &u->saved[i];

                /* never removed, or made again meanwhile (kpartx run by a udev change event) */
                if (mpf_info_by_ref(o, s->name, s->uuid, &info) >= 0 && info.exists) {
                        mpf_dm_saved_done(s);
                        continue;
                }
                r = create_retrying(o, s, deadline, &cookie);
                if (r < 0) {
                        log_map(LOG_ERR, r, u->name, u->uuid, "partitions",
                                "Failed to re-create partition map %s: %m", s->name);
                        failed = true;
                        u->saved[k++] = *s; /* kept for the next attempt */
                        continue;
                }
                mpf_dm_saved_done(s);
                made++;
        }
        u->n_saved = k;
        if (made > 0 || failed) {
                r = o->udev_wait(o->userdata, &map, cookie, deadline);
                if (r < 0 && r != -ETIMEDOUT)
                        log_map(LOG_WARNING, r, u->name, u->uuid, "partitions",
                                "Waiting for udev failed: %m, ignoring");
        }
        if (made > 0)
                log_map(LOG_INFO, 0, u->name, u->uuid, "partitions", "re-created %zu partition map(s)",
                        made);
        *ret_made = made;
        return failed ? -EIO : 0;
}

int mpf_undo_forget_queueing(const struct mpf_ops *o, const char *uuid)
{
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};
        int r;

        r = o->record_read(o->userdata, uuid, &u);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (!u.kernel_queueing_disabled && !u.mpathd_queueing_disabled)
                return 0;
        u.kernel_queueing_disabled = u.mpathd_queueing_disabled = false;
        r = o->record_write(o->userdata, &u); /* removed when nothing else is left */
        if (r < 0)
                return r;
        log_map(LOG_NOTICE, 0, u.name, u.uuid, "last-path",
                "an undo record was left (its flusher died mid-flush) that would switch queueing on "
                "again: queueing stays off (flush_on_last_del always), that part of it is dropped");
        return 1;
}

int mpf_undo_leftover(const struct mpf_ops *o, const char *uuid, usec_t deadline, struct mpf_undo *ret_left)
{
        _cleanup_(mpf_undo_done) struct mpf_undo u = {};
        size_t made;
        int r, q, p;

        r = o->record_read(o->userdata, uuid, &u);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_map(LOG_ERR, r, NULL, uuid, "lock",
                               "Failed to read the undo record a flusher left: %m");
        log_map(LOG_WARNING, 0, u.name, u.uuid, "lock",
                "an undo record was left (its flusher died mid-flush, or could not put all back): "
                "putting the map back as it says");
        q = mpf_undo_queueing(o, &u, deadline);
        p = mpf_undo_partitions(o, &u, deadline, &made);
        r = o->record_write(o->userdata, &u); /* removed when nothing is left to put back */
        if (r < 0)
                log_map(LOG_WARNING, r, u.name, u.uuid, "lock",
                        "Failed to update the undo record: %m, ignoring");
        if (ret_left) {
                ret_left->kernel_queueing_disabled |= u.kernel_queueing_disabled;
                ret_left->mpathd_queueing_disabled |= u.mpathd_queueing_disabled;
                /* taken whole: no allocation that could fail halfway */
                assert(ret_left->n_saved == 0);
                free(ret_left->saved);
                ret_left->saved = TAKE_PTR(u.saved);
                ret_left->n_saved = u.n_saved;
                u.n_saved = 0;
        }
        if (q < 0)
                return q;
        if (p < 0)
                return p;
        return 1;
}
