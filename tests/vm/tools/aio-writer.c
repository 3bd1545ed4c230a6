/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio-writer DEVICE: submit one 4 KiB O_DIRECT write with Linux native AIO,
 * close the fd without waiting, and wait for the completion. On a queueing map
 * with no usable path the write stays queued: the map's open count stays raised
 * with no fd open anywhere, and the data reaches no path (the queued-writes case
 * of the 2020 dm-devel flush thread).
 *
 * Prints "submitted" once the write is in flight, then "completed: RES"; exits
 * 0 when the write completed, 1 when it failed, 2 on a setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
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
        void *buf;
        int fd;

        if (argc != 2) {
                fprintf(stderr, "usage: aio-writer DEVICE\n");
                return 2;
        }
        fd = open(argv[1], O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "aio-writer: open %s: %s\n", argv[1], strerror(errno));
                return 2;
        }
        if (posix_memalign(&buf, 4096, 4096) != 0)
                return 2;
        memset(buf, 0x5a, 4096);
        if (syscall(SYS_io_setup, 1, &ctx) < 0) {
                fprintf(stderr, "aio-writer: io_setup: %s\n", strerror(errno));
                return 2;
        }
        cb.aio_fildes = (uint32_t)fd;
        cb.aio_lio_opcode = IOCB_CMD_PWRITE;
        cb.aio_buf = (uint64_t)(uintptr_t)buf;
        cb.aio_nbytes = 4096;
        cb.aio_offset = 1024 * 1024;
        if (syscall(SYS_io_submit, ctx, 1, cbs) != 1) {
                fprintf(stderr, "aio-writer: io_submit: %s\n", strerror(errno));
                return 2;
        }
        close(fd);
        printf("submitted\n");
        fflush(stdout);
        /* Wait for the completion: this is where a queued write keeps us. */
        if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
                return 2;
        printf("completed: %lld\n", (long long)ev.res);
        return ev.res < 0 ? 1 : 0;
}
