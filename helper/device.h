/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "flush.h"

/* While waiting for udev, re-check the cookie at least this often even without a uevent. */
#define UDEV_WAIT_RECHECK_USEC (50 * USEC_PER_MSEC)
/* The udev monitor's receive buffer: the remove events of a whole run wait in it until the run's
 * one udev wait reads them (a few hundred bytes each). */
#define UDEV_MONITOR_BUFFER (16 * 1024 * 1024)
/* udevd runs when its control socket exists */
#define UDEV_CONTROL_PATH "/run/udev/control"
/* udev's runtime directory: data/b<M>:<m> (its database), queue */
#define UDEV_RUN_DIR "/run/udev"

/* The real world: libdevmapper, sysfs, /proc, multipathd, udev. */
struct mpf_device;

int mpf_device_new(bool udev_sync, struct mpf_device **ret);
struct mpf_device *mpf_device_free(struct mpf_device *d);
/* This process exits now: as mpf_device_free(), but its write-back worker, idle, is not waited for
 * (mpf_syncer_leave()). NULL is fine. */
struct mpf_device *mpf_device_leave(struct mpf_device *d);
static inline void mpf_device_freep(struct mpf_device **d)
{
        *d = mpf_device_free(*d);
}
/* The guardian (guardian.h) to hand each map's lock to; not owned. */
struct mpf_guardian;
void mpf_device_set_guardian(struct mpf_device *d, struct mpf_guardian *g);
/* In a pool worker (worker.c), right after fork(): drop what is the parent's (udev monitor,
 * write-back worker, the locks it adopted from other workers: our copies of their fds close, the
 * flocks stay the parent's), scan /proc as ourselves, and listen to udev's events on a monitor of
 * our own. */
void mpf_device_forked(struct mpf_device *d);
/* A lock from ops->lock as fds (the map lock first), to hand to another process; and such fds
 * taken back as a lock that ops->unlock releases (and forgets at the guardian). */
int mpf_device_lock_fds(void *lock, int *ret_fds, size_t max, size_t *ret_n);
/* In the process that handed the fds on: close ours, without unlocking (the flock stays with the
 * other copies) or telling the guardian. */
void mpf_device_lock_drop(void *lock);
int mpf_device_lock_adopt(struct mpf_device *d, const char *uuid, const int *fds, size_t n, void **ret_lock);
/* Fill ops with the real implementation, userdata d. */
void mpf_device_ops(struct mpf_device *d, struct mpf_ops *ret);
/* Does udevd answer on its control socket? */
bool mpf_udev_running(void);
/* The kernel's last uevent sequence number, <sysfs>/kernel/uevent_seqnum. */
int mpf_uevent_seqnum(const char *sysfs, uint64_t *ret);
/* Is this "remove" uevent (devnum, SEQNUM seqnum) the one of the map m removed? */
bool mpf_removed_matches(const struct mpf_removed *m, dev_t devnum, uint64_t seqnum);
/* Mark the first map of maps not yet seen that the event is the one of: 1, or 0 if none. */
size_t mpf_removed_mark(const struct mpf_removed *maps, bool *seen, size_t n, dev_t devnum, uint64_t seqnum);
/* When remove events were lost: udev is done with the removal of devt once its database entry
 * (<udev_run>/data/b<M>:<m>) is gone and no event is queued or running (<udev_run>/queue absent). */
bool mpf_udev_removal_settled(const char *udev_run, dev_t devt);
/* Does something accept connections on this AF_UNIX SOCK_SEQPACKET socket path? */
bool mpf_socket_listening(const char *path);
