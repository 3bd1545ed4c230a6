/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

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

static int send_datagram(const char *address, const void *buf, size_t len)
{
        _cleanup_(closep) int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t salen;
        int r;

        r = socket_address(address, &sa, &salen);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (sendto(fd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
                return negative_errno();
        return 0;
}

int mpf_journal_send_to(const char *path, const struct mpf_journal_field *fields, size_t n)
{
        _cleanup_(freep) char *buf = NULL;
        FILE *f;
        size_t len = 0;
        bool failed;

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
        return send_datagram(path, buf, len);
}

int mpf_notify(const char *state)
{
        const char *e = getenv("NOTIFY_SOCKET");
        int r;

        if (!e || !*e)
                return 0;
        r = send_datagram(e, state, strlen(state));
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
