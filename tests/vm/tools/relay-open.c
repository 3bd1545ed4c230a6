/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relay-open DEVICE SECONDS [READY-FILE]: keep DEVICE open for SECONDS without a gap, by a
 * relay of short-lived processes, none of which holds it much longer than HOLD_MAX_MS.
 *
 * A block device's last close writes its dirty pages back. A scenario that wants them still
 * dirty when mpath-flush claims the map must keep the map open from the write until the claim,
 * yet with openers that mpath-flush's in-use step takes for passers-by (none stays through its
 * 0.5 s settle time). A chain of shell readers does that only while the guest is idle: each
 * handover costs a fork and an exec or two, and under load one reader outlived the settle time
 * (busy) or the next came too late (a gap, the data written back at a close).
 *
 * Here each holder is a fork without exec: it opens DEVICE, says so on a pipe, and exits when
 * the parent releases it (its next holder has DEVICE open) or once HOLD_MAX_MS have passed,
 * whichever comes first. The parent starts a holder every INTERVAL_MS. A holder lives about
 * one interval; the cap bounds it whatever the parent does (its life is the open, the cap, and
 * the scheduler's delay in waking it); a gap needs a handover slower than the cap less the
 * interval. Each holder is a new pid, as a chain of blkid runs would be.
 *
 * The holders stamp their own open and leaving in a shared table, so what is reported is what
 * happened, not what the parent saw when it next ran: the longest hold (open to leaving), and
 * the gaps (a holder gone before the next one had DEVICE open).
 *
 * READY-FILE is created once the first holder has DEVICE open. Exits 0 when every holder
 * opened DEVICE, there was no gap and no holder held it SETTLE_MS or longer (mpath-flush would
 * have seen a user), 1 otherwise (the reason on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INTERVAL_MS 100
#define HOLD_MAX_MS 300
#define SETTLE_MS 500 /* mpath-flush's IN_USE_SETTLE_USEC: a holder this long is a user */

struct stamp {
        long long opened, left; /* CLOCK_MONOTONIC, us; written by the holder */
};

static long long now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long now_ms(void)
{
        return now_us() / 1000;
}

static void sleep_until_ms(long long t)
{
        struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (t % 1000) * 1000000};

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* The holder: open, stamp, say so (0 or the errno), stay until released (the pipe's write end
 * closed) or HOLD_MAX_MS, stamp again, exit: the fd closes with the process. */
_Noreturn static void hold(const char *dev, struct stamp *s, int ready_w, int release_r)
{
        struct pollfd p = {.fd = release_r, .events = POLLIN};
        int fd, err = 0;

        fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                err = errno;
        s->opened = now_us();
        if (write(ready_w, &err, sizeof(err)) != sizeof(err))
                _exit(1);
        if (fd >= 0)
                (void)poll(&p, 1, HOLD_MAX_MS);
        s->left = now_us();
        _exit(fd >= 0 ? 0 : 1);
}

/* Starts holder s; returns its release pipe's write end, or -1 when it could not open DEVICE.
 * prev is the one before's: the new holder must not keep it open, or releasing it does not. */
static int start_holder(const char *dev, struct stamp *s, int prev)
{
        int ready[2], release[2], err = EIO;
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
                hold(dev, s, ready[1], release[0]);
        }
        close(ready[1]);
        close(release[0]);
        if (read(ready[0], &err, sizeof(err)) != sizeof(err))
                err = EIO;
        close(ready[0]);
        if (err) {
                fprintf(stderr, "relay-open: holder %d could not open %s: %s\n", (int)pid, dev,
                        strerror(err));
                close(release[1]);
                return -1;
        }
        return release[1];
}

int main(int argc, char **argv)
{
        long long end, next, hold_us = 0;
        int prev = -1, cur, gaps = 0;
        size_t n = 0, max;
        struct stamp *st;
        char *e;
        double secs;

        if (argc < 3 || argc > 4 || *(e = argv[2]) == 0 ||
            !((secs = strtod(argv[2], &e)) > 0 && secs <= 3600) || *e) {
                fprintf(stderr, "usage: relay-open DEVICE SECONDS [READY-FILE]\n");
                return 2;
        }
        max = (size_t)(secs * 1000) / INTERVAL_MS + 2;
        st = mmap(NULL, max * sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (st == MAP_FAILED) {
                perror("relay-open: mmap");
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        end = now_ms() + (long long)(secs * 1000);
        for (next = now_ms(); next < end && n < max; next += INTERVAL_MS) {
                cur = start_holder(argv[1], &st[n], prev);
                if (cur < 0)
                        return 1;
                n++;
                if (prev >= 0)
                        close(prev); /* release the one before: cur has DEVICE open */
                else if (argc == 4) {
                        int fd = open(argv[3], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

                        if (fd < 0) {
                                fprintf(stderr, "relay-open: %s: %s\n", argv[3], strerror(errno));
                                return 1;
                        }
                        close(fd);
                }
                prev = cur;
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
        for (size_t i = 0; i < n; i++) {
                if (st[i].left - st[i].opened > hold_us)
                        hold_us = st[i].left - st[i].opened;
                /* equal stamps count: the close comes after the leaving stamp */
                if (i > 0 && st[i - 1].left <= st[i].opened) {
                        fprintf(stderr, "relay-open: gap of %lld us before holder %zu\n",
                                st[i].opened - st[i - 1].left, i);
                        gaps++;
                }
        }
        printf("relay-open: %zu holders, longest hold %lld ms (cap %d ms, settle %d ms), %d gap(s)\n", n,
               hold_us / 1000, HOLD_MAX_MS, SETTLE_MS, gaps);
        if (hold_us >= SETTLE_MS * 1000LL)
                fprintf(stderr, "relay-open: a holder held %s %lld ms, as long as a lasting user\n", argv[1],
                        hold_us / 1000);
        return gaps || hold_us >= SETTLE_MS * 1000LL ? 1 : 0;
}
