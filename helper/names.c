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
