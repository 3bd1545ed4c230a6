/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio-io read|write DEVICE: submit one 4 KiB O_DIRECT read or write with Linux
 * native AIO, close the fd without waiting, and wait for the completion. On a
 * queueing map with no usable path the I/O stays queued: the map's open count
 * stays raised with no fd open anywhere (the case from the 2020 dm-devel flush
 * thread that an in-use check built on /proc alone cannot see), and a write's
 * data reaches no path.
 *
 * Prints "submitted" once the I/O is in flight, then "completed: RES"; exits 0
 * when the I/O completed, 1 when it failed, 2 on a setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        aio_context_t ctx = 0;
        struct iocb cb = {0};
        struct iocb *cbs[1] = {&cb};
        struct io_event ev = {0};
        bool write;
        void *buf;
        int fd;

        if (argc != 3 || (strcmp(argv[1], "read") != 0 && strcmp(argv[1], "write") != 0)) {
                fprintf(stderr, "usage: aio-io read|write DEVICE\n");
                return 2;
        }
        write = strcmp(argv[1], "write") == 0;
        fd = open(argv[2], (write ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "aio-io: open %s: %s\n", argv[2], strerror(errno));
                return 2;
        }
        if (posix_memalign(&buf, 4096, 4096) != 0)
                return 2;
        memset(buf, 0x5a, 4096);
        if (syscall(SYS_io_setup, 1, &ctx) < 0) {
                fprintf(stderr, "aio-io: io_setup: %s\n", strerror(errno));
                return 2;
        }
        cb.aio_fildes = (uint32_t)fd;
        cb.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
        cb.aio_buf = (uint64_t)(uintptr_t)buf;
        cb.aio_nbytes = 4096;
        cb.aio_offset = write ? 1024 * 1024 : 0;
        if (syscall(SYS_io_submit, ctx, 1, cbs) != 1) {
                fprintf(stderr, "aio-io: io_submit: %s\n", strerror(errno));
                return 2;
        }
        close(fd);
        printf("submitted\n");
        fflush(stdout);
        /* Wait for the completion: this is where queued I/O keeps us. */
        if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
                return 2;
        printf("completed: %lld\n", (long long)ev.res);
        return ev.res < 0 ? 1 : 0;
}
