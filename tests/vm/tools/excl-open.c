/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * excl-open DEVICE: open DEVICE read-only with O_EXCL, as mount and mkfs claim a
 * block device, and close it. No I/O. Exits 0 when the claim succeeded, 1 with
 * the error (EBUSY: someone else holds the claim), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        int fd;

        if (argc != 2) {
                fprintf(stderr, "usage: excl-open DEVICE\n");
                return 2;
        }
        fd = open(argv[1], O_RDONLY | O_EXCL | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "excl-open: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        close(fd);
        return 0;
}
