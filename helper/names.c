/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "names.h"

static bool has_control_chars(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

bool mpf_name_valid(const char *s)
{
        size_t l;

        if (!s)
                return false;
        l = strlen(s);
        if (l == 0 || l >= MPF_NAME_MAX)
                return false;
        if (strchr(s, '/'))
                return false;
        return !has_control_chars(s);
}

int mpf_arg_classify(const char *arg)
{
        if (!arg || !*arg)
                return -EINVAL;
        if (arg[0] == '/') {
                if (strlen(arg) >= PATH_MAX || has_control_chars(arg))
                        return -EINVAL;
                return MPF_ARG_PATH;
        }
        if (startswith(arg, MPF_MPATH_UUID_PREFIX)) {
                /* Could still be a map called "mpath-foo": the UUID form must fit a UUID. */
                if (strlen(arg) >= MPF_UUID_MAX || strchr(arg, '/') || has_control_chars(arg) ||
                    !mpf_uuid_is_mpath(arg))
                        return -EINVAL;
                return MPF_ARG_UUID;
        }
        if (!mpf_name_valid(arg))
                return -EINVAL;
        return MPF_ARG_NAME;
}

bool mpf_uuid_is_mpath(const char *uuid)
{
        const char *w;

        if (!uuid)
                return false;
        w = startswith(uuid, MPF_MPATH_UUID_PREFIX);
        return w && *w;
}

bool mpf_uuid_is_partition_of(const char *part_uuid, const char *map_uuid)
{
        const char *p;

        if (!part_uuid || !mpf_uuid_is_mpath(map_uuid))
                return false;
        p = startswith(part_uuid, "part");
        if (!p || !(*p >= '0' && *p <= '9'))
                return false;
        while (*p >= '0' && *p <= '9')
                p++;
        if (*p != '-')
                return false;
        return strcmp(p + 1, map_uuid) == 0;
}

int mpf_features_queue_if_no_path(const char *params)
{
        const char *p = params;
        char *end;
        unsigned long n;
        bool found = false;

        if (!params)
                return -EBADMSG;
        while (*p == ' ')
                p++;
        if (!(*p >= '0' && *p <= '9'))
                return -EBADMSG;
        errno = 0;
        n = strtoul(p, &end, 10);
        if (errno != 0 || end == p || (*end != ' ' && *end != 0) || n > 64)
                return -EBADMSG;
        p = end;
        for (unsigned long i = 0; i < n; i++) {
                size_t l;

                while (*p == ' ')
                        p++;
                l = strcspn(p, " ");
                if (l == 0)
                        return -EBADMSG;
                if (l == strlen("queue_if_no_path") && strncmp(p, "queue_if_no_path", l) == 0)
                        found = true;
                p += l;
        }
        return found;
}

/* Next space-separated token of *p: its start and length (0 at the end). */
static size_t next_token(const char **p, const char **ret)
{
        size_t l;

        while (**p == ' ')
                (*p)++;
        l = strcspn(*p, " ");
        *ret = *p;
        *p += l;
        return l;
}

static int next_count(const char **p, unsigned long max, unsigned long *ret)
{
        const char *t;
        char *end;
        size_t l = next_token(p, &t);

        if (l == 0 || !(*t >= '0' && *t <= '9'))
                return -EBADMSG;
        errno = 0;
        *ret = strtoul(t, &end, 10);
        if (errno != 0 || end != t + l || *ret > max)
                return -EBADMSG;
        return 0;
}

static int skip_tokens(const char **p, unsigned long n)
{
        const char *t;

        for (unsigned long i = 0; i < n; i++)
                if (next_token(p, &t) == 0)
                        return -EBADMSG;
        return 0;
}

/* A count, then that many tokens. */
static int skip_counted(const char **p)
{
        unsigned long n;

        if (next_count(p, 1024, &n) < 0)
                return -EBADMSG;
        return skip_tokens(p, n);
}

int mpf_multipath_status_active_paths(const char *status)
{
        const char *p = status, *t;
        unsigned long n_groups, n_paths, n_path_args;
        int active = 0;

        if (!status)
                return -EBADMSG;
        if (skip_counted(&p) < 0 || skip_counted(&p) < 0) /* features, hardware handler */
                return -EBADMSG;
        if (next_count(&p, 1024, &n_groups) < 0 || skip_tokens(&p, 1) < 0) /* next group */
                return -EBADMSG;
        for (unsigned long g = 0; g < n_groups; g++) {
                if (skip_tokens(&p, 1) < 0 || skip_counted(&p) < 0) /* state, selector status */
                        return -EBADMSG;
                if (next_count(&p, 4096, &n_paths) < 0 || next_count(&p, 1024, &n_path_args) < 0)
                        return -EBADMSG;
                for (unsigned long i = 0; i < n_paths; i++) {
                        size_t l;

                        if (skip_tokens(&p, 1) < 0) /* device */
                                return -EBADMSG;
                        l = next_token(&p, &t);
                        if (l != 1 || (*t != 'A' && *t != 'F'))
                                return -EBADMSG;
                        if (*t == 'A')
                                active++;
                        if (skip_tokens(&p, 1 + n_path_args) < 0) /* fail count, selector args */
                                return -EBADMSG;
                }
        }
        if (next_token(&p, &t) != 0)
                return -EBADMSG; /* trailing tokens: not the format we know */
        return active;
}
