/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --wait-busy: a map that is busy now is often free a moment later (udev's blkid after an unmount,
 * a late close, a kpartx change event). Instead of answering busy at once, flush the busy maps
 * again from the top whenever something changed, until they are free or the deadline nears.
 *
 * Between attempts no lock is held: mpf_flush_map() has released the map and path locks,
 * restored queueing and made removed partition maps again before it answered busy, so another
 * flusher (or multipathd) can work on the map meanwhile. An attempt that finds the map gone
 * answers absent, which is success.
 *
 * What ends a wait early: a mount table change (POLLPRI on /proc/self/mountinfo) or a block
 * uevent (udev's, once udevd has processed it; the kernel's without udevd). A process closing
 * its fd has no event: a bounded backoff re-checks.
 */
#include <fcntl.h>
#include <libudev.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "wait.h"

static bool busy(const struct mpf_map_result *m)
{
        return m->result == MPF_RESULT_BUSY;
}

int mpf_wait_busy(const struct mpf_ops *ops, const struct mpf_flush_params *p, mpf_flush_fn flush,
                  struct mpf_map_result *maps, size_t n, usec_t started, mpf_map_done_fn done,
                  void *userdata)
{
        usec_t reserve = MIN(WAIT_BUSY_RESERVE_USEC, usec_sub_unsigned(p->deadline, started) / 4);
        usec_t last = usec_sub_unsigned(p->deadline, reserve); /* no attempt starts after this */
        usec_t prev = ops->now(ops->userdata);
        struct backoff b;
        size_t pending = 0;

        for (size_t i = 0; i < n; i++)
                pending += busy(&maps[i]);
        backoff_init(&b, WAIT_BUSY_BACKOFF_FIRST_USEC, WAIT_BUSY_BACKOFF_MAX_USEC);
        while (pending > 0) {
                usec_t t = ops->now(ops->userdata), d, waited;

                d = backoff_step(&b, last, t);
                if (d == 0)
                        break;
                ops->wait_change(ops->userdata, t + d);
                /* an event storm does not turn into back-to-back scans */
                if (ops->now(ops->userdata) < usec_add(prev, WAIT_BUSY_MIN_INTERVAL_USEC))
                        ops->sleep_until(ops->userdata, usec_add(prev, WAIT_BUSY_MIN_INTERVAL_USEC));
                waited = usec_sub_unsigned(ops->now(ops->userdata), t);

                for (size_t i = 0; i < n; i++) {
                        struct mpf_map_result *m = &maps[i], next;
                        int r;

                        if (!busy(m))
                                continue;
                        m->waited_ms += waited / USEC_PER_MSEC;
                        r = mpf_flush_map_again(ops, p, flush, m->map, m->uuid, &next);
                        next.waited_ms = m->waited_ms;
                        next.attempts = m->attempts + 1;
                        next.elapsed_ms += m->elapsed_ms + waited / USEC_PER_MSEC;
                        if (r < 0) {
                                mpf_map_result_done(&next);
                                return r;
                        }
                        log_map(LOG_DEBUG, 0, m->name ? m->name : m->map, strempty(m->uuid), "in-use",
                                "attempt %u after %llu ms of waiting: %s", next.attempts,
                                (unsigned long long)next.waited_ms, mpf_result_to_string(next.result));
                        mpf_map_result_done(m);
                        *m = next;
                        if (!busy(m)) {
                                pending--;
                                if (done)
                                        done(userdata, &maps[i]);
                        }
                }
                prev = ops->now(ops->userdata);
        }
        /* the rest stays busy, with the blockers of their last attempt */
        for (size_t i = 0; i < n && done; i++)
                if (busy(&maps[i]))
                        done(userdata, &maps[i]);
        return 0;
}

struct mpf_change_watch {
        int mountinfo_fd;
        struct udev *udev;
        struct udev_monitor *monitor;
};

int mpf_change_watch_new(bool udev_running, struct mpf_change_watch **ret)
{
        struct mpf_change_watch *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        w->mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (w->mountinfo_fd < 0)
                log_debug_errno(errno, "Cannot watch /proc/self/mountinfo: %m, ignoring");
        w->udev = udev_new();
        if (w->udev)
                w->monitor = udev_monitor_new_from_netlink(w->udev, udev_running ? "udev" : "kernel");
        if (w->monitor && (udev_monitor_filter_add_match_subsystem_devtype(w->monitor, "block", NULL) < 0 ||
                           udev_monitor_enable_receiving(w->monitor) < 0))
                w->monitor = udev_monitor_unref(w->monitor);
        if (!w->monitor)
                log_debug("Cannot watch block uevents, re-checking busy maps by backoff alone");
        *ret = w;
        return 0;
}

struct mpf_change_watch *mpf_change_watch_free(struct mpf_change_watch *w)
{
        if (!w)
                return NULL;
        if (w->mountinfo_fd >= 0)
                (void)close(w->mountinfo_fd);
        udev_monitor_unref(w->monitor);
        udev_unref(w->udev);
        free(w);
        return NULL;
}

int mpf_change_watch_wait(struct mpf_change_watch *w, usec_t t)
{
        struct pollfd pfd[2] = {
                {.fd = w->mountinfo_fd, .events = POLLPRI},
                {.fd = w->monitor ? udev_monitor_get_fd(w->monitor) : -1, .events = POLLIN},
        };
        bool changed = false;

        for (;;) {
                usec_t n = now_monotonic();
                int k;

                if (deadline_passed(t, n))
                        return 0;
                k = poll(pfd, ELEMENTSOF(pfd), deadline_poll_ms(t, n));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return 0;
                /* mountinfo: the kernel re-arms it as it reports the change */
                changed = changed || (pfd[0].revents & (POLLPRI | POLLERR));
                if (pfd[1].revents & POLLIN) {
                        struct udev_device *dev;

                        while ((dev = udev_monitor_receive_device(w->monitor)))
                                udev_device_unref(dev);
                        changed = true;
                }
                if (changed)
                        return 1;
        }
}
