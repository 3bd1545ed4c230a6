/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <json-c/json.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "deadline.h"
#include "device.h"
#include "dm.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "undo.h"
#include "worker.h"

/* how long a killed worker may take to die before it is left behind (uninterruptible sleep) */
#define WORKER_REAP_USEC (500 * USEC_PER_MSEC)
/* beyond the deadline and the put-back grace: several workers putting their maps back at once
 * on a slow host (E6, 8 at once) take longer than the grace alone */
#define WORKER_SLACK_USEC (3 * USEC_PER_SEC)

#define MSG_LOCK 'L'    /* one of the map's lock fds (the map lock first), with SCM_RIGHTS */
#define MSG_RESULT 'R'  /* the encoded result; the last message of a map */
#define MSG_MAP 'M'     /* to the worker: flush this map */
#define MSG_MAP_OWN 'W' /* to the worker: flush this map, wait for udev and release its locks yourself */
/* a map has one map lock and one lock per path device */
#define LOCK_FDS_MAX 1024

/* ---- the wire format: a JSON object, field for field ---- */

static void json_object_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

static int add(json_object *o, const char *key, json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_str(json_object *o, const char *key, const char *s)
{
        return s ? add(o, key, json_object_new_string(s)) : 0;
}

static int add_strv(json_object *o, const char *key, char *const *l)
{
        json_object *a;
        int r;

        if (!l)
                return 0;
        a = json_object_new_array();
        r = add(o, key, a);
        if (r < 0)
                return r;
        for (char *const *s = l; *s; s++) {
                r = json_object_array_add(a, json_object_new_string(*s));
                if (r < 0)
                        return -ENOMEM;
        }
        return 0;
}

static json_object *triple(int64_t n, const char *a, const char *b)
{
        json_object *t = json_object_new_array();

        if (!t)
                return NULL;
        if (json_object_array_add(t, json_object_new_int64(n)) < 0 ||
            json_object_array_add(t, json_object_new_string(strempty(a))) < 0 ||
            json_object_array_add(t, json_object_new_string(strempty(b))) < 0) {
                json_object_put(t);
                return NULL;
        }
        return t;
}

static int encode_blockers(json_object *o, const struct mpf_blockers *b)
{
        json_object *a;
        int r;

        r = add_strv(o, "holders", b->holders);
        if (r >= 0)
                r = add_strv(o, "holder_names", b->holder_names);
        if (r >= 0)
                r = add_strv(o, "swaps", b->swaps);
        if (r >= 0)
                r = add(o, "unexplained_opens", json_object_new_int64(b->unexplained_opens));
        if (r >= 0)
                r = add(o, "mounts_omitted", json_object_new_int64(b->mounts_omitted));
        if (r >= 0)
                r = add(o, "openers_omitted", json_object_new_int64(b->openers_omitted));
        if (r < 0)
                return r;
        /* [pid, target, device], [pid, comm, device(, own)], [0, kind, device, name] */
        r = add(o, "mounts", a = json_object_new_array());
        for (size_t i = 0; r >= 0 && i < b->n_mounts; i++)
                r = json_object_array_add(
                        a, triple(b->mounts[i].pid, b->mounts[i].target, b->mounts[i].device));
        if (r >= 0)
                r = add(o, "openers", a = json_object_new_array());
        for (size_t i = 0; r >= 0 && i < b->n_openers; i++) {
                json_object *t = triple(b->openers[i].pid, b->openers[i].comm, b->openers[i].device);

                if (t && b->openers[i].own &&
                    json_object_array_add(t, json_object_new_string(b->openers[i].own)) < 0)
                        t = (json_object_put(t), NULL);
                r = json_object_array_add(a, t);
        }
        if (r >= 0)
                r = add(o, "kernel_users", a = json_object_new_array());
        for (size_t i = 0; r >= 0 && i < b->n_kernel_users; i++) {
                json_object *t = triple(0, b->kernel_users[i].kind, b->kernel_users[i].device);

                if (t &&
                    json_object_array_add(t, json_object_new_string(strempty(b->kernel_users[i].name))) < 0)
                        t = (json_object_put(t), NULL);
                r = json_object_array_add(a, t);
        }
        return r < 0 ? -ENOMEM : 0;
}

int mpf_result_encode(const struct mpf_map_result *m, char **ret)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *s;
        int r;

        if (!o)
                return -ENOMEM;
        r = add_str(o, "map", m->map);
        if (r >= 0)
                r = add_str(o, "name", m->name);
        if (r >= 0)
                r = add_str(o, "uuid", m->uuid);
        if (r >= 0 && m->have_devt)
                r = add(o, "devt", json_object_new_int64((int64_t)m->devt));
        /* internal (the main process waits for the map's remove uevent); not in the JSON output */
        if (r >= 0 && m->remove_seqnum > 0)
                r = add(o, "remove_seqnum", json_object_new_int64((int64_t)m->remove_seqnum));
        if (r >= 0)
                r = add(o, "result", json_object_new_int(m->result));
        if (r >= 0)
                r = add(o, "step", json_object_new_int(m->step));
        if (r >= 0)
                r = add_str(o, "reason", m->reason);
        if (r >= 0)
                r = encode_blockers(o, &m->blockers);
        if (r >= 0)
                r = add(o, "queueing_before", json_object_new_int(m->queueing_before));
        if (r >= 0)
                r = add(o, "queueing_after", json_object_new_int(m->queueing_after));
        if (r >= 0)
                r = add_strv(o, "partitions", m->partitions);
        if (r >= 0)
                r = add(o, "elapsed_ms", json_object_new_int64((int64_t)m->elapsed_ms));
        if (r >= 0)
                r = add(o, "waited_ms", json_object_new_int64((int64_t)m->waited_ms));
        if (r >= 0)
                r = add(o, "attempts", json_object_new_int64(m->attempts));
        if (r >= 0)
                r = add(o, "flags",
                        json_object_new_int(m->restore_failed | m->partitions_lost << 1 | m->data_lost << 2 |
                                            m->lock_contended << 3));
        if (r >= 0)
                r = add(o, "failed_write_bytes", json_object_new_int64((int64_t)m->failed_write_bytes));
        if (r >= 0)
                r = add(o, "stuck_worker", json_object_new_int64(m->stuck_worker));
        if (r >= 0)
                r = add_strv(o, "plan", m->plan);
        if (r < 0)
                return r;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (!s)
                return -ENOMEM;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key, int64_t def)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return def;
        return json_object_get_int64(v);
}

static int dup_str(json_object *o, const char *key, char **ret)
{
        const char *s = get_str(o, key);

        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_strv(json_object *o, const char *key, char ***ret)
{
        json_object *a;
        char **l;
        size_t n;

        if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
                return 0;
        n = json_object_array_length(a);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        *ret = l;
        for (size_t i = 0; i < n; i++) {
                l[i] = strdup(strempty(json_object_get_string(json_object_array_get_idx(a, i))));
                if (!l[i])
                        return -ENOMEM;
        }
        return 0;
}

/* each [n, a, b(, c)] of the array key */
static int get_triples(json_object *o, const char *key,
                       int (*fn)(struct mpf_blockers *b, json_object *t, int64_t n, const char *a,
                                 const char *c),
                       struct mpf_blockers *b)
{
        json_object *arr;

        if (!json_object_object_get_ex(o, key, &arr) || !json_object_is_type(arr, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *t = json_object_array_get_idx(arr, i);
                int r;

                if (!json_object_is_type(t, json_type_array) || json_object_array_length(t) < 3)
                        return -EBADMSG;
                r = fn(b, t, json_object_get_int64(json_object_array_get_idx(t, 0)),
                       strempty(json_object_get_string(json_object_array_get_idx(t, 1))),
                       strempty(json_object_get_string(json_object_array_get_idx(t, 2))));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_mount(struct mpf_blockers *b, json_object *t, int64_t pid, const char *target,
                     const char *dev)
{
        return mpf_blockers_add_mount(b, dev, target, (pid_t)pid);
}

static int put_opener(struct mpf_blockers *b, json_object *t, int64_t pid, const char *comm, const char *dev)
{
        const char *own = json_object_get_string(json_object_array_get_idx(t, 3));
        int r;

        r = mpf_blockers_add_opener(b, (pid_t)pid, comm, dev);
        if (r >= 0 && own)
                r = mpf_blockers_mark_own(b, (pid_t)pid, dev, own, NULL);
        return r;
}

static int put_kernel_user(struct mpf_blockers *b, json_object *t, int64_t n, const char *kind,
                           const char *dev)
{
        return mpf_blockers_add_kernel_user(
                b, kind, strempty(json_object_get_string(json_object_array_get_idx(t, 3))), dev);
}

static int decode(json_object *o, struct mpf_map_result *m)
{
        struct mpf_blockers *b = &m->blockers;
        int64_t flags;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if ((r = dup_str(o, "map", &m->map)) < 0 || (r = dup_str(o, "name", &m->name)) < 0 ||
            (r = dup_str(o, "uuid", &m->uuid)) < 0 || (r = dup_str(o, "reason", &m->reason)) < 0 ||
            (r = get_strv(o, "holders", &b->holders)) < 0 ||
            (r = get_strv(o, "holder_names", &b->holder_names)) < 0 ||
            (r = get_strv(o, "swaps", &b->swaps)) < 0 ||
            (r = get_strv(o, "partitions", &m->partitions)) < 0 || (r = get_strv(o, "plan", &m->plan)) < 0 ||
            (r = get_triples(o, "mounts", put_mount, b)) < 0 ||
            (r = get_triples(o, "openers", put_opener, b)) < 0 ||
            (r = get_triples(o, "kernel_users", put_kernel_user, b)) < 0)
                return r;
        m->have_devt = get_int(o, "devt", -1) >= 0;
        m->devt = m->have_devt ? (dev_t)get_int(o, "devt", 0) : 0;
        m->remove_seqnum = (uint64_t)MAX(get_int(o, "remove_seqnum", 0), 0);
        m->result = (MpfResult)get_int(o, "result", MPF_RESULT_FAILED);
        m->step = (MpfStep)get_int(o, "step", MPF_STEP_RESOLVE);
        if ((unsigned)m->result >= _MPF_RESULT_MAX || (unsigned)m->step >= _MPF_STEP_MAX)
                return -EBADMSG;
        b->unexplained_opens = (unsigned)get_int(o, "unexplained_opens", 0);
        b->mounts_omitted += (unsigned)get_int(o, "mounts_omitted", 0);
        b->openers_omitted += (unsigned)get_int(o, "openers_omitted", 0);
        m->queueing_before = (int)get_int(o, "queueing_before", -1);
        m->queueing_after = (int)get_int(o, "queueing_after", -1);
        m->elapsed_ms = (uint64_t)get_int(o, "elapsed_ms", 0);
        m->waited_ms = (uint64_t)get_int(o, "waited_ms", 0);
        m->attempts = (unsigned)get_int(o, "attempts", 1);
        flags = get_int(o, "flags", 0);
        m->restore_failed = flags & 1;
        m->partitions_lost = flags & 2;
        m->data_lost = flags & 4;
        m->lock_contended = flags & 8;
        m->failed_write_bytes = (uint64_t)get_int(o, "failed_write_bytes", 0);
        m->stuck_worker = (pid_t)get_int(o, "stuck_worker", 0);
        return 0;
}

int mpf_result_decode(const char *s, struct mpf_map_result *ret)
{
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(s);
        struct mpf_map_result m = {};
        int r;

        if (!o)
                return -EBADMSG;
        r = decode(o, &m);
        if (r < 0) {
                mpf_map_result_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

/* ---- the executor ---- */

struct worker {
        pid_t pid;
        bool killed; /* missed the deadline and its grace: SIGKILLed */
        int sock;    /* our end: maps to flush go out, their lock fds and results come back */
        bool busy;
        size_t index; /* the map it flushes */
        const char *arg;
};

struct mpf_workers {
        struct mpf_device *d;
        const struct mpf_ops *ops;
        pid_t parent;
        const struct mpf_flush_params *p; /* as the workers were forked with */
        struct worker *w;
        size_t n, size;
        size_t kept_fds;   /* lock fds of removed maps we hold until the run's udev wait */
        uint64_t fd_limit; /* our RLIMIT_NOFILE */
        /* The workers' stderr: a pipe we copy to ours. A worker stuck in uninterruptible sleep
         * and left behind then holds this pipe, not the caller's stderr: a caller that reads our
         * output to its end ($(...), subprocess.run) gets it when we exit. */
        int log_fd[2];
        pid_t *leaving; /* told to exit at the end of a pool run, not reaped yet */
        size_t n_leaving;
};

int mpf_workers_new(struct mpf_device *d, const struct mpf_ops *ops, struct mpf_workers **ret)
{
        struct mpf_workers *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        x->d = d;
        x->ops = ops;
        x->parent = getpid();
        x->log_fd[0] = x->log_fd[1] = -EBADF;
        {
                struct rlimit rl;

                x->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) >= 0 ? (uint64_t)rl.rlim_cur : 1024;
        }
        *ret = x;
        return 0;
}

/* Copy what the workers logged to our stderr, as much as is there now (lines of at most
 * PIPE_BUF bytes arrive whole: each worker writes a line at once). */
static void relay_log(struct mpf_workers *x)
{
        char buf[PIPE_BUF];

        if (!x || x->log_fd[0] < 0)
                return;
        for (;;) {
                ssize_t n = read(x->log_fd[0], buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                for (ssize_t k = 0, w; k < n; k += w) {
                        w = write(STDERR_FILENO, buf + k, (size_t)(n - k));
                        if (w < 0 && errno == EINTR)
                                w = 0;
                        else if (w <= 0)
                                break; /* our stderr is gone: nothing to tell it */
                }
        }
}

static int log_pipe_open(struct mpf_workers *x)
{
        if (x->log_fd[0] >= 0)
                return 0;
        if (pipe2(x->log_fd, O_CLOEXEC) < 0)
                return negative_errno();
        /* we read when poll() says so and never wait on it; the workers' writes block */
        if (fcntl(x->log_fd[0], F_SETFL, O_NONBLOCK) < 0)
                return negative_errno();
        /* room for a busy log while we are at something else; the default size if refused */
        (void)fcntl(x->log_fd[1], F_SETPIPE_SZ, 1024 * 1024);
        return 0;
}

/* Wait at most max for a worker to exit: 0 (*status set), or -ETIMEDOUT if it is still there
 * (in uninterruptible sleep, it dies when its I/O ends, if ever: it is left behind). What the
 * workers log meanwhile is passed on, so that none waits on a full log pipe. */
static int reap(struct mpf_workers *x, pid_t pid, int *status, usec_t max)
{
        usec_t until = usec_add(now_monotonic(), max);
        int st = 0;

        for (;;) {
                pid_t k = waitpid(pid, &st, WNOHANG);

                if (k == pid || (k < 0 && errno == ECHILD))
                        break;
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (now_monotonic() >= until)
                        return -ETIMEDOUT;
                relay_log(x);
                (void)usleep(10 * 1000);
        }
        if (status)
                *status = st;
        return 0;
}

static void reap_bounded(struct mpf_workers *x, pid_t pid)
{
        if (reap(x, pid, NULL, WORKER_REAP_USEC) >= 0)
                return;
        (void)kill(pid, SIGKILL);
        if (reap(x, pid, NULL, WORKER_REAP_USEC) < 0)
                log_warning("Worker process %d does not exit (uninterruptible sleep?), leaving it behind",
                            (int)pid);
}

/* Idle workers exit when their socket closes; a busy one (only after an internal error) is
 * killed, and the guardian puts its map back. None is waited for without bound. */
static void workers_stop(struct mpf_workers *x)
{
        for (size_t i = 0; i < x->n; i++) {
                x->w[i].sock = safe_close(x->w[i].sock);
                if (x->w[i].busy)
                        (void)kill(x->w[i].pid, SIGKILL);
        }
        for (size_t i = 0; i < x->n; i++)
                reap_bounded(x, x->w[i].pid);
        x->n = 0;
        for (size_t i = 0; i < x->n_leaving; i++)
                reap_bounded(x, x->leaving[i]);
        x->n_leaving = 0;
        relay_log(x);
}

/* The end of a pool run: every worker is told to exit as workers_stop() does, but not waited for
 * here: their exits (and their write-back workers') overlap the run's udev wait, and they are
 * reaped by workers_stop() at the end of the run. */
static void workers_release(struct mpf_workers *x)
{
        pid_t *l = reallocarray(x->leaving, x->n_leaving + x->n + 1, sizeof(pid_t));

        if (!l) {
                workers_stop(x);
                return;
        }
        x->leaving = l;
        for (size_t i = 0; i < x->n; i++) {
                x->w[i].sock = safe_close(x->w[i].sock);
                if (x->w[i].busy)
                        (void)kill(x->w[i].pid, SIGKILL);
                x->leaving[x->n_leaving++] = x->w[i].pid;
        }
        x->n = 0;
        relay_log(x);
}

struct mpf_workers *mpf_workers_free(struct mpf_workers *x)
{
        if (!x)
                return NULL;
        workers_stop(x);
        for (size_t i = 0; i < 2; i++)
                x->log_fd[i] = safe_close(x->log_fd[i]);
        free(x->w);
        free(x->leaving);
        free(x);
        return NULL;
}

/* The next message, of any size (0 at EOF). */
static ssize_t receive(int sock, char **ret, int *ret_fd)
{
        _cleanup_(freep) char *buf = NULL;
        ssize_t n;

        *ret_fd = -EBADF;
        do
                n = recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? negative_errno() : 0;
        buf = malloc((size_t)n + 1);
        if (!buf)
                return -ENOMEM;
        n = fd_receive(sock, buf, (size_t)n, ret_fd);
        if (n <= 0)
                return n;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return n;
}

/* In the worker: flush one map, send the lock fds it keeps, then the result. */
static int flush_one(struct mpf_workers *x, int sock, const char *arg, bool own_wait)
{
        _cleanup_(freep) char *msg = NULL, *enc = NULL;
        struct mpf_flush_params p = *x->p;
        struct mpf_map_result m;
        int fds[LOCK_FDS_MAX];
        size_t n_fds = 0;
        int r;

        /* the run cannot keep more fds: this map waits for its own udev cookie, as a single map
         * does, and its locks go when udev is done with it */
        if (own_wait)
                p.shared_cookie = NULL;
        log_debug("%s: worker: flushing it", arg);
        r = mpf_flush_map(x->ops, &p, arg, &m);
        if (r < 0)
                return r;
        /* without udev, libdevmapper makes and removes the nodes itself, in dm_udev_wait() */
        if (x->d && !mpf_dm_udev_sync())
                (void)mpf_dm_cookie_ready(0);
        if (m.held_lock && !x->d)
                m.held_lock = NULL; /* ops that are not a device's (tests): nothing to hand on */
        if (m.held_lock) {
                r = mpf_device_lock_fds(m.held_lock, fds, ELEMENTSOF(fds), &n_fds);
                for (size_t i = 0; r >= 0 && i < n_fds; i++)
                        r = fd_send(sock, (char[]){MSG_LOCK}, 1, fds[i]);
                if (r < 0)
                        log_warning_errno(r, "%s: Failed to hand the map's locks to the run: %m, ignoring",
                                          arg);
                /* the run holds them now (or they go, at worst a little early): our copies go, the
                 * guardian's stays until the run releases the lock */
                mpf_device_lock_drop(m.held_lock);
                m.held_lock = NULL;
        }
        r = mpf_result_encode(&m, &enc);
        mpf_map_result_done(&m);
        if (r >= 0 && asprintf_safe(&msg, "%c%s", MSG_RESULT, enc) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = fd_send(sock, msg, strlen(msg), -EBADF);
        if (r < 0)
                return log_error_errno(r, "%s: Failed to send the result: %m", arg);
        log_debug("%s: worker: result sent", arg);
        return 0;
}

/* The worker: maps to flush, one at a time, until the run closes the socket. */
_Noreturn static void worker_main(struct mpf_workers *x, int sock)
{
        /* the run is killed (SIGKILL): so are we, and the guardian puts the map back */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != x->parent)
                _exit(EXIT_FAILURE);
        (void)prctl(PR_SET_NAME, "mpath-flush-w");
        /* nothing of the caller's stdio is ours to hold: nothing to read or print, and our log
         * goes through the run (the journal, if the caller's stderr is its stream: decided before
         * the fork) */
        {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);

                for (int i = 0; i < 2; i++)
                        if (null < 0 || dup2(null, i) < 0)
                                (void)close(i);
                if (null > 2)
                        (void)close(null);
                if (dup2(x->log_fd[1], STDERR_FILENO) < 0)
                        (void)close(STDERR_FILENO);
                x->log_fd[0] = safe_close(x->log_fd[0]);
                x->log_fd[1] = safe_close(x->log_fd[1]);
        }
        for (size_t i = 0; i < x->n; i++) /* the other workers' sockets */
                x->w[i].sock = safe_close(x->w[i].sock);
        x->n = 0;
        mpf_device_forked(x->d);

        for (;;) {
                _cleanup_(freep) char *msg = NULL;
                int fd;
                ssize_t n = receive(sock, &msg, &fd);

                safe_close(fd);
                if (n <= 0)
                        break;
                if ((msg[0] != MSG_MAP && msg[0] != MSG_MAP_OWN) ||
                    flush_one(x, sock, msg + 1, msg[0] == MSG_MAP_OWN) < 0) {
                        log_close();
                        _exit(EXIT_FAILURE);
                }
        }
        x->d = mpf_device_free(x->d); /* our write-back worker exits and is reaped */
        log_close();
        _exit(EXIT_SUCCESS);
}

static int fork_worker(struct mpf_workers *x, struct worker **ret)
{
        int sock, r;
        pid_t pid;

        if (x->n >= x->size) {
                size_t size = MAX(x->size * 2, (size_t)8);
                struct worker *w = reallocarray(x->w, size, sizeof(*w));

                if (!w)
                        return -ENOMEM;
                x->w = w;
                x->size = size;
        }
        r = log_pipe_open(x);
        if (r < 0)
                return r;
        (void)log_to_journal(); /* decided on the caller's stderr, not on the pipe */
        /* no flags: worker_main() sets up its stdio and fds itself, and it keeps our dispositions
         * and blocked signals (the run's held-back ones) */
        pid = fork_with_socket(0, &sock);
        if (pid < 0)
                return (int)pid;
        if (pid == 0)
                worker_main(x, sock);
        x->w[x->n] = (struct worker){.pid = pid, .sock = sock};
        *ret = &x->w[x->n++];
        return 0;
}

static int workers_start(void *u, size_t i, const char *arg, const struct mpf_flush_params *p)
{
        struct mpf_workers *x = u;
        _cleanup_(freep) char *msg = NULL;
        struct worker *w = NULL;
        int r;

        /* the workers flush with the parameters they were forked with: the pool's, one set a run */
        if (x->p && x->p != p)
                workers_stop(x);
        x->p = p;
        {
                size_t in_flight = 0;
                bool keep;

                for (size_t k = 0; k < x->n; k++)
                        in_flight += x->w[k].busy;
                keep = mpf_pool_may_keep_locks(x->kept_fds, in_flight, x->fd_limit);
                if (!keep && p->shared_cookie)
                        log_debug("%s: %zu lock fds kept already, its worker waits for udev itself", arg,
                                  x->kept_fds);
                if (asprintf_safe(&msg, "%c%s", keep ? MSG_MAP : MSG_MAP_OWN, arg) < 0)
                        return -ENOMEM;
        }
        for (size_t k = 0; k < x->n && !w; k++)
                if (!x->w[k].busy)
                        w = &x->w[k];
        if (w) {
                r = fd_send(w->sock, msg, strlen(msg), -EBADF);
                if (r >= 0)
                        goto sent;
                /* an idle worker that died (killed from outside), or cannot be told: a new one
                 * takes the map */
                (void)kill(w->pid, SIGKILL);
                (void)reap(x, w->pid, NULL, WORKER_REAP_USEC);
                safe_close(w->sock);
                *w = x->w[--x->n];
        }
        r = fork_worker(x, &w);
        if (r < 0)
                return r;
        r = fd_send(w->sock, msg, strlen(msg), -EBADF);
        if (r < 0)
                return r;
sent:
        w->busy = true;
        w->index = i;
        w->arg = arg;
        return 0;
}

static int died(const struct worker *w, int status, bool reaped, struct mpf_map_result *ret)
{
        *ret = (struct mpf_map_result){
                .queueing_before = -1,
                .queueing_after = -1,
                .result = w->killed ? MPF_RESULT_TIMEOUT : MPF_RESULT_FAILED,
                .step = MPF_STEP_RESOLVE,
                .attempts = 1,
                .stuck_worker = reaped ? 0 : w->pid,
        };
        ret->map = strdup(w->arg);
        if (!ret->map)
                return -ENOMEM;
        if (w->killed || !reaped)
                return asprintf_safe(
                               &ret->reason,
                               "its worker process %s%s; the guardian puts the map back once it is gone",
                               w->killed ? "did not finish by the deadline and was killed" : "was killed",
                               reaped ? "" : ", and is stuck (left behind)") < 0
                               ? -ENOMEM
                               : 0;
        if (asprintf_safe(&ret->reason, "its worker process %s %d; the guardian puts the map back",
                          WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
                          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)) < 0)
                return -ENOMEM;
        return 0;
}

/* The map's locks went before udev finished with it: said in its result, not only in the log. */
static int locks_lost(const struct worker *w, struct mpf_map_result *ret)
{
        char *reason = NULL;

        log_warning("%s: Its locks could not be kept until udev finished with it (too many open files)",
                    w->arg);
        if (asprintf_safe(&reason, "%s; its locks could not be kept until udev finished with it",
                          ret->reason ? ret->reason : mpf_result_to_string(ret->result)) < 0)
                return -ENOMEM;
        free(ret->reason);
        ret->reason = reason;
        return 0;
}

/* Read one map's messages from its worker: the lock fds and the result. 1: the worker is gone
 * (*ret says so). */
static int collect(struct mpf_workers *x, struct worker *w, struct mpf_map_result *ret)
{
        int fds[LOCK_FDS_MAX];
        size_t n_fds = 0;
        int status = 0, r = -ECONNRESET;
        bool lost = false; /* a lock fd the worker sent did not reach us */

        for (;;) {
                _cleanup_(freep) char *msg = NULL;
                int fd;
                ssize_t n = receive(w->sock, &msg, &fd);

                if (n <= 0) {
                        r = n < 0 ? (int)n : -ECONNRESET;
                        break;
                }
                if (msg[0] == MSG_LOCK && fd >= 0 && n_fds < ELEMENTSOF(fds)) {
                        fds[n_fds++] = fd;
                        continue;
                }
                if (msg[0] == MSG_LOCK)
                        lost = true; /* -EMFILE, or more than we take */
                safe_close(fd);
                if (msg[0] == MSG_RESULT) {
                        r = mpf_result_decode(msg + 1, ret);
                        break;
                }
        }
        if (r < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                if (r == -ENOMEM)
                        return r;
                /* no result: the worker died (or cannot be understood: it goes) */
                (void)kill(w->pid, SIGKILL);
                r = died(w, status, reap(x, w->pid, &status, WORKER_REAP_USEC) >= 0, ret);
                return r < 0 ? r : 1;
        }
        if (n_fds > 0) {
                r = mpf_device_lock_adopt(x->d, ret->uuid, fds, n_fds, &ret->held_lock);
                if (r < 0) {
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        lost = true;
                } else
                        x->kept_fds += n_fds;
        }
        if (lost)
                return locks_lost(w, ret);
        return 0;
}

/* The workers' flushes end by the deadline; a worker still busy after it and the guardian's
 * put-back grace is stuck. -1: no deadline. */
static int poll_timeout_ms(const struct mpf_workers *x)
{
        usec_t now, until;

        if (!x->p || x->p->deadline == 0 || x->p->deadline == USEC_INFINITY)
                return -1;
        until = usec_add(usec_add(x->p->deadline, MPF_UNDO_GRACE_USEC), WORKER_SLACK_USEC);
        now = x->ops->now(x->ops->userdata);
        if (now >= until)
                return 0;
        return (until - now) / USEC_PER_MSEC > INT_MAX
                       ? INT_MAX
                       : (int)((until - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static int workers_wait(void *u, size_t *ret_i, struct mpf_map_result *ret)
{
        struct mpf_workers *x = u;
        _cleanup_(freep) struct pollfd *p = NULL;
        struct worker *w = NULL;
        size_t n_busy = 0;
        int r;

        /* the workers' sockets, then their log */
        p = calloc(x->n + 1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < x->n; i++) {
                p[i] = (struct pollfd){.fd = x->w[i].busy ? x->w[i].sock : -1, .events = POLLIN};
                n_busy += x->w[i].busy;
        }
        if (n_busy == 0)
                return -ECHILD;
        p[x->n] = (struct pollfd){.fd = x->log_fd[0], .events = POLLIN};
        for (;;) {
                r = poll(p, x->n + 1, poll_timeout_ms(x));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return negative_errno();
                if (p[x->n].revents == 0)
                        break;
                relay_log(x);
                p[x->n].revents = 0;
                if (r == 1)
                        continue; /* only the log had something */
                r--;
                break;
        }
        if (r == 0) {
                /* past the deadline and the put-back grace: a worker that still runs is stuck;
                 * each is killed, and its map reported timeout (one per call) */
                for (size_t i = 0; i < x->n; i++)
                        if (x->w[i].busy && !x->w[i].killed) {
                                log_warning("%s: its worker process %d missed the deadline, killing it",
                                            x->w[i].arg, (int)x->w[i].pid);
                                (void)kill(x->w[i].pid, SIGKILL);
                                x->w[i].killed = true;
                        }
                for (size_t i = 0; i < x->n && !w; i++)
                        if (x->w[i].busy)
                                w = &x->w[i];
                if (!w)
                        return -EIO;
                {
                        int status = 0;
                        bool reaped = reap(x, w->pid, &status, WORKER_REAP_USEC) >= 0;

                        r = died(w, status, reaped, ret);
                }
                if (r < 0)
                        return r;
                r = 1;
        } else {
                for (size_t i = 0; i < x->n && !w; i++)
                        if (p[i].revents)
                                w = &x->w[i];
                if (!w)
                        return -EIO;
                r = collect(x, w, ret);
                log_debug("%s: pool: result received", w->arg);
        }
        if (r < 0)
                return r;
        *ret_i = w->index;
        w->busy = false;
        if (r > 0) { /* gone: its slot goes to the next fork */
                safe_close(w->sock);
                *w = x->w[--x->n];
        }
        return 0;
}

static void workers_finish(void *u)
{
        workers_release(u);
}

void mpf_workers_exec(struct mpf_workers *x, struct mpf_pool_exec *ret)
{
        *ret = (struct mpf_pool_exec){
                .userdata = x,
                .start = workers_start,
                .wait = workers_wait,
                .finish = workers_finish,
        };
}
