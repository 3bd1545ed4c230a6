/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sock-fill NAME: connect to the abstract AF_UNIX stream socket NAME again and
 * again, without blocking, until the kernel says its listen backlog is full
 * (EAGAIN), and keep those connections open. For a daemon that does not accept
 * (stopped with SIGSTOP), every further connect() would then block.
 *
 * Prints "full N" once the backlog is full, then waits to be killed.
 * Exit 2 on a setup error, 1 if the backlog never filled (1000 connections).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        socklen_t salen;
        size_t l;

        if (argc != 2 || (l = strlen(argv[1])) + 1 >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: sock-fill ABSTRACT-NAME\n");
                return 2;
        }
        memcpy(sa.sun_path + 1, argv[1], l);
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
        for (int n = 0; n < 1000; n++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

                if (fd < 0) {
                        perror("socket");
                        return 2;
                }
                if (connect(fd, (struct sockaddr *)&sa, salen) < 0) {
                        if (errno != EAGAIN) {
                                perror("connect");
                                return 2;
                        }
                        printf("full %d\n", n);
                        fflush(stdout);
                        for (;;)
                                pause();
                }
        }
        fprintf(stderr, "the backlog never filled\n");
        return 1;
}
