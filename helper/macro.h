/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sys/resource.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "deadline.h"

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)

/* Turn a libc -1/errno failure into a negative errno, never 0. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        *fd = safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
        if (*f)
                (void)fclose(*f);
        *f = NULL;
}

static inline void closedirp(DIR **d)
{
        if (*d)
                (void)closedir(*d);
        *d = NULL;
}

static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

#define TAKE_PTR(p)                                                                                         \
        ({                                                                                                  \
                __typeof__(p) _p_ = (p);                                                                    \
                (p) = NULL;                                                                                 \
                _p_;                                                                                        \
        })

#define TAKE_FD(fd)                                                                                         \
        ({                                                                                                  \
                int _fd_ = (fd);                                                                            \
                (fd) = -EBADF;                                                                              \
                _fd_;                                                                                       \
        })

/* NULL-terminated string vectors. */
char **strv_free(char **l);
static inline void strv_freep(char ***l)
{
        *l = strv_free(*l);
}
size_t strv_length(char *const *l);
int strv_push(char ***l, char *value); /* takes ownership of value, also on failure */
int strv_extend(char ***l, const char *value);
int strv_contains(char *const *l, const char *value);

/* Small string helpers. */
static inline const char *strempty(const char *s)
{
        return s ? s : "";
}
const char *startswith(const char *s, const char *prefix) _pure_;
int read_one_line(const char *path, char **ret);
int asprintf_safe(char **ret, const char *fmt, ...) _printf_(2, 3);
/* One message on a socket with an fd attached (SCM_RIGHTS) when fd >= 0: 0 or a negative errno. */
int fd_send(int sock, const void *buf, size_t len, int fd);
/* One message into buf: its length (> 0), 0 at EOF, or a negative errno. *ret_fd is the fd that
 * came with it (O_CLOEXEC), -EBADF if none, or -EMFILE if one was sent but could not be received
 * (MSG_CTRUNC: no fd left below RLIMIT_NOFILE). */
ssize_t fd_receive(int sock, void *buf, size_t size, int *ret_fd);
/* Raise the soft RLIMIT_NOFILE to the hard one, at most to cap (as systemd does for itself): 0 or
 * a negative errno. */
int rlimit_nofile_raise(rlim_t cap);
/* Put /dev/null on whichever of stdin, stdout and stderr the caller left closed, so that no
 * descriptor we open lands there (a lock fd on 1 would receive our --json output). 0 or a negative
 * errno. */
int stdio_fill_null(void);

/* Reap the child pid, waiting at most until `until` (CLOCK_MONOTONIC): 0 (*ret_status set if not
 * NULL), -ETIMEDOUT if it has not exited (a process in uninterruptible sleep may never), or a
 * negative errno (-ECHILD). */
int waitpid_until(pid_t pid, int *ret_status, usec_t until);

/* Close every fd >= 3 except keep (for a forked child that must hold nothing else). */
void close_all_but(int keep);

/* What a child forked by fork_with_socket() lets go of before it returns. */
enum {
        FORK_NULL_STDIO = 1 << 0,    /* stdin, stdout, stderr on /dev/null: a child that may be left
                                      * behind must not hold the caller's output open */
        FORK_CLOSE_FDS = 1 << 1,     /* every other fd >= 3 closed: no copy of a lock or a claim */
        FORK_RESET_SIGNALS = 1 << 2, /* default dispositions; blocked: only the signals the run holds
                                      * back (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN,
                                      * SIGTTOU, SIGPIPE), which a process group or cgroup gets */
};
/* A SOCK_SEQPACKET socket pair and a fork (stdout and stderr flushed first). In the parent: the
 * child's pid (> 0), *ret_sock our end. In the child: 0, *ret_sock its end (the parent's end is
 * closed), after what flags ask. Both ends are >= 3, whatever of stdio the caller has closed. A
 * negative errno when either fails. */
pid_t fork_with_socket(unsigned flags, int *ret_sock);
