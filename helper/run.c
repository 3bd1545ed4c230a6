/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "device.h"
#include "log.h"
#include "macro.h"
#include "output.h"
#include "run.h"

int mpf_run_with_ops(const struct mpf_options *o, const struct mpf_ops *ops)
{
        struct mpf_flush_params p = {
                .deferred = o->deferred,
                .dry_run = o->dry_run,
                .deadline = usec_add(ops->now(ops->userdata), o->timeout),
        };
        struct mpf_run run = {};
        int r, status;

        r = mpf_run_all(ops, &p, o->all, o->maps, o->n_maps, &run);
        if (r < 0) {
                log_error_errno(r, "Failed to run: %m");
                return MPF_EXIT_FAILED;
        }
        mpf_log_results(&run);
        if (o->json) {
                r = mpf_print_json(stdout, &run, MPF_VERSION, o->dry_run);
                if (r < 0)
                        log_error_errno(r, "Failed to write the JSON document: %m");
        } else if (o->dry_run)
                mpf_print_plan(stdout, &run);
        status = run.exit_status;
        mpf_run_done(&run);
        return status;
}

int mpf_run(const struct mpf_options *o)
{
        _cleanup_(mpf_device_freep) struct mpf_device *d = NULL;
        struct mpf_ops ops;
        bool udev_sync;
        int r;

        udev_sync = !o->no_udev_sync && mpf_udev_running();
        if (!udev_sync)
                log_debug("Not synchronising with udev (%s)",
                          o->no_udev_sync ? "--no-udev-sync" : "udevd does not answer on " UDEV_CONTROL_PATH);
        r = mpf_device_new(udev_sync, &d);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return MPF_EXIT_FAILED;
        }
        mpf_device_ops(d, &ops);
        return mpf_run_with_ops(o, &ops);
}
