/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relay-open DEVICE SECONDS [READY-FILE]: keep DEVICE open for SECONDS without a gap, by a
 * relay of short-lived processes, none of which holds it longer than HOLD_MAX_MS.
 *
 * A block device's last close writes its dirty pages back. A scenario that wants them still
 * dirty when mpath-flush claims the map must keep the map open from the write until the claim,
 * yet with openers that mpath-flush's in-use step takes for passers-by (none stays through its
 * 0.5 s settle time). A chain of shell readers does that only while the guest is idle: each
 * handover costs a fork and an exec or two, and under load one reader outlived the settle time
 * (busy) or the next came too late (a gap, the data written back at a close).
 *
 * Here each holder is a fork without exec: it opens DEVICE, says so on a pipe, and exits when
 * the parent releases it (its next holder has DEVICE open) or after HOLD_MAX_MS, whichever comes
 * first. The parent starts a holder every INTERVAL_MS. A holder lives about one interval; the
 * cap bounds it whatever the parent does; a gap needs a handover slower than the cap less the
 * interval. Each holder is a new pid, as a chain of blkid runs would be.
 *
 * READY-FILE is created once the first holder has DEVICE open. Exits 0 when every holder
 * opened DEVICE and the relay never broke (each one open before the one before it was
 * released), 1 otherwise (the reason on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INTERVAL_MS 100
#define HOLD_MAX_MS 300

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until_ms(long long t)
{
        struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000};

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* The holder: open, say so, stay until released (the pipe's write end closed) or HOLD_MAX_MS. */
_Noreturn static void hold(const char *dev, int ready_w, int release_r)
{
        struct pollfd p = {.fd = release_r, .events = POLLIN};
        char ok = 1;
        int fd;

        fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                ok = 0;
        if (write(ready_w, &ok, 1) != 1)
                _exit(1);
        if (fd >= 0)
                (void)poll(&p, 1, HOLD_MAX_MS);
        _exit(fd >= 0 ? 0 : 1);
}

/* Starts a holder; returns its release pipe's write end, or -1 when it could not open DEVICE.
 * prev is the one before's: the new holder must not keep it open, or releasing it does not. */
static int start_holder(const char *dev, int prev, long long *ret_opened)
{
        int ready[2], release[2];
        char ok = 0;
        pid_t pid;

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(release, O_CLOEXEC) < 0) {
                perror("relay-open: pipe");
                exit(1);
        }
        pid = fork();
        if (pid < 0) {
                perror("relay-open: fork");
                exit(1);
        }
        if (pid == 0) {
                if (prev >= 0)
                        close(prev);
                close(ready[0]);
                close(release[1]);
                hold(dev, ready[1], release[0]);
        }
        close(ready[1]);
        close(release[0]);
        if (read(ready[0], &ok, 1) != 1)
                ok = 0;
        close(ready[0]);
        *ret_opened = now_ms();
        if (!ok) {
                fprintf(stderr, "relay-open: holder %d could not open %s\n", (int)pid, dev);
                close(release[1]);
                return -1;
        }
        return release[1];
}

int main(int argc, char **argv)
{
        long long end, next, prev_opened = 0, opened, worst = 0;
        int prev = -1, cur, broken = 0;
        unsigned holders = 0;
        char *e;
        double secs;

        if (argc < 3 || argc > 4 || (secs = strtod(argv[2], &e)) <= 0 || *e) {
                fprintf(stderr, "usage: relay-open DEVICE SECONDS [READY-FILE]\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        end = now_ms() + (long long)(secs * 1000);
        for (next = now_ms(); next < end; next += INTERVAL_MS) {
                cur = start_holder(argv[1], prev, &opened);
                if (cur < 0)
                        return 1;
                holders++;
                if (prev >= 0) {
                        /* the one before must still have been there: its cap had not run out */
                        if (opened - prev_opened >= HOLD_MAX_MS)
                                broken++;
                        if (opened - prev_opened > worst)
                                worst = opened - prev_opened;
                        close(prev); /* release it: cur has DEVICE open */
                } else if (argc == 4) {
                        int fd = open(argv[3], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

                        if (fd < 0) {
                                fprintf(stderr, "relay-open: %s: %s\n", argv[3], strerror(errno));
                                return 1;
                        }
                        close(fd);
                }
                prev = cur;
                prev_opened = opened;
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                if (now_ms() < next + INTERVAL_MS)
                        sleep_until_ms(next + INTERVAL_MS);
                else
                        next = now_ms() - INTERVAL_MS; /* late: no burst to catch up */
        }
        close(prev);
        while (wait(NULL) > 0)
                ;
        printf("relay-open: %u holders, longest handover %lld ms, %d over the %d ms cap\n", holders, worst,
               broken, HOLD_MAX_MS);
        return broken ? 1 : 0;
}
