/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/sockios.h>

#include "journal.h"
#include "macro.h"

/* An AF_UNIX address from "/path" or "@abstract". */
static int socket_address(const char *s, struct sockaddr_un *ret, socklen_t *ret_len)
{
        size_t l = strlen(s);

        *ret = (struct sockaddr_un){.sun_family = AF_UNIX};
        if (l < 2 || (s[0] != '/' && s[0] != '@'))
                return -EAFNOSUPPORT; /* relative paths, vsock:...: not for us */
        if (l >= sizeof(ret->sun_path))
                return -EINVAL;
        memcpy(ret->sun_path, s, l);
        if (s[0] == '@')
                ret->sun_path[0] = 0;
        *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + (s[0] == '/'));
        return 0;
}

/* The socket our journal records leave from, kept for the process (and its forks: each record
 * carries the pid that sent it): mpf_journal_drain() asks it whether journald has read them. Its
 * inode is checked before each use: a process forked with all its fds closed (the write-back
 * worker) may have that number reused by a descriptor that must never receive a record. */
static int journal_fd = -EBADF;
static ino_t journal_ino;
static bool journal_pending; /* a record went since the last drain */

/* journal_fd is still the socket we opened (not a number reused since). */
static bool journal_socket_ours(void)
{
        struct stat st;

        return journal_fd >= 0 && fstat(journal_fd, &st) >= 0 && S_ISSOCK(st.st_mode) &&
               st.st_ino == journal_ino;
}

static int journal_socket(void)
{
        struct stat st;

        if (journal_socket_ours())
                return journal_fd;
        journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (journal_fd < 0)
                return negative_errno();
        if (fstat(journal_fd, &st) < 0) {
                int r = negative_errno();

                journal_fd = safe_close(journal_fd);
                return r;
        }
        journal_ino = st.st_ino;
        /* the run and its pool workers share it: room for their records until journald reads
         * them (as much as net.core.wmem_max allows) */
        (void)setsockopt(journal_fd, SOL_SOCKET, SO_SNDBUF, &(int){8 * 1024 * 1024}, sizeof(int));
        return journal_fd;
}

/* flags: MSG_DONTWAIT for a send that must not wait for a journald that is behind (-EAGAIN). */
static int send_datagram(int fd, const char *address, const void *buf, size_t len, int flags)
{
        struct sockaddr_un sa;
        socklen_t salen;
        int r;

        r = socket_address(address, &sa, &salen);
        if (r < 0)
                return r;
        if (sendto(fd, buf, len, MSG_NOSIGNAL | flags, (struct sockaddr *)&sa, salen) < 0)
                return negative_errno();
        return 0;
}

static int send_once(const char *address, const void *buf, size_t len)
{
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return negative_errno();
        return send_datagram(fd, address, buf, len, 0);
}

int mpf_journal_fd(void)
{
        return journal_fd;
}

int mpf_journal_drain_to(const char *path, usec_t until)
{
        if (!journal_socket_ours())
                return 0; /* nothing sent from here */
        /* A datagram stays charged to its sender's socket until the receiver reads it, so an empty
         * send queue says journald has read our last record, not that it is done with it: it reads
         * the sender's /proc/PID right after. It handles one datagram before it reads the next, so
         * one more goes last, holding only a comment line (which journald drops): once that one is
         * read, the records before it have their unit. */
        while (journal_pending) {
                /* journald's queue may be full: tried again until `until`, never waited for in
                 * sendto() (a datagram socket that is not connected is always "writable") */
                int r = send_datagram(journal_fd, path, "#\n", 2, MSG_DONTWAIT);

                if (r >= 0)
                        journal_pending = false;
                else if (r != -EAGAIN)
                        return r;
                else if (deadline_passed(until, now_monotonic()))
                        return -ETIMEDOUT;
                else
                        (void)poll(NULL, 0, 2);
        }
        for (;;) {
                int queued = 0, ms;

                if (ioctl(journal_fd, SIOCOUTQ, &queued) < 0)
                        return negative_errno();
                if (queued == 0)
                        return 0;
                ms = deadline_poll_ms(until, now_monotonic());
                if (ms == 0)
                        return -ETIMEDOUT;
                (void)poll(NULL, 0, ms < 2 ? ms : 2);
        }
}

int mpf_journal_send_to(const char *path, const struct mpf_journal_field *fields, size_t n)
{
        _cleanup_(freep) char *buf = NULL;
        FILE *f;
        size_t len = 0;
        bool failed;
        int r;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *v = fields[i].value;

                if (!v)
                        continue;
                if (strchr(v, '\n')) {
                        /* NAME\n, the value's length as 64-bit little endian, the value, \n */
                        uint64_t l = strlen(v);
                        unsigned char le[8];

                        for (size_t k = 0; k < 8; k++)
                                le[k] = (unsigned char)(l >> (8 * k));
                        fprintf(f, "%s\n", fields[i].name);
                        fwrite(le, 1, sizeof(le), f);
                        fprintf(f, "%s\n", v);
                } else
                        fprintf(f, "%s=%s\n", fields[i].name, v);
        }
        failed = ferror(f);
        if (fclose(f) != 0 || failed)
                return -ENOMEM;
        r = journal_socket();
        if (r < 0)
                return r;
        /* never wait for journald: a record it has no room for goes to stderr (log.c) */
        r = send_datagram(r, path, buf, len, MSG_DONTWAIT);
        if (r >= 0)
                journal_pending = true;
        return r;
}

int mpf_notify(const char *state)
{
        const char *e = getenv("NOTIFY_SOCKET");
        int r;

        if (!e || !*e)
                return 0;
        r = send_once(e, state, strlen(state));
        return r < 0 ? r : 1;
}

int mpf_notifyf(const char *fmt, ...)
{
        _cleanup_(freep) char *s = NULL;
        va_list ap;
        int r;

        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return mpf_notify(s);
}
