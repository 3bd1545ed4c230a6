/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * What undoes a half-done flush, wherever the flush stops: the undo record.
 *
 * Before each step that changes a map (queueing switched off in multipathd and in the kernel, a
 * partition map removed), the flush writes down what it is about to change in
 * <rundir>/undo/<DM-UUID>, under the map's lock. Three parties put the map back from it, all with
 * the same code (mpf_undo_queueing, mpf_undo_partitions):
 *   - the flush itself, when a later step fails (flush.c);
 *   - the guardian, when the helper dies mid-flush (guardian.c), within seconds;
 *   - the next flusher of the map, which takes the lock and finds the record of one that died
 *     with its guardian (mpf_undo_leftover, from the lock step).
 * A change is written down before it is made, so putting back what was not done yet must be
 * harmless: queueing is switched on again only where the map still exists, a partition map is made
 * again only where none has its name. Once the map is gone nothing is put back.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "deadline.h"
#include "dm.h"
#include "names.h"

struct mpf_ops;

#define MPF_UNDO_MAGIC "mpath-flush-undo 1"
/* Putting a map back is never skipped for lack of time: it gets this long past the deadline (or,
 * for the guardian and the next flusher, from when it starts). */
#define MPF_UNDO_GRACE_USEC (2 * USEC_PER_SEC)
/* Making a partition map again fails with EBUSY while another opener holds the map O_EXCL. */
#define UNDO_CREATE_BACKOFF_FIRST_USEC (10 * USEC_PER_MSEC)
#define UNDO_CREATE_BACKOFF_MAX_USEC (200 * USEC_PER_MSEC)

struct mpf_undo {
        char name[MPF_NAME_MAX];
        char uuid[MPF_UUID_MAX];
        dev_t devt;
        bool kernel_queueing_disabled;
        bool mpathd_queueing_disabled;
        /* Not in the record (only the process that holds the connection can read it): multipathd
         * got our disablequeueing but had not answered when we went on. Its answer, read on that
         * connection, says whether multipathd switched queueing off, and restorequeueing sent
         * after it on the same connection is carried out after it. */
        bool mpathd_reply_pending;
        struct mpf_dm_saved *saved; /* partition maps removed (or about to be), to make again */
        size_t n_saved;
};

void mpf_undo_done(struct mpf_undo *u);
/* Nothing to put back. */
bool mpf_undo_empty(const struct mpf_undo *u);
/* Append a saved partition map; takes its contents (*s is zeroed), also on failure. */
int mpf_undo_add_saved(struct mpf_undo *u, struct mpf_dm_saved *s);
/* Drop the last saved partition map (it was not removed after all). */
void mpf_undo_drop_last(struct mpf_undo *u);

/* The record as text, and back. Parse: -EBADMSG on anything malformed. */
int mpf_undo_format(const struct mpf_undo *u, char **ret);
int mpf_undo_parse(const char *text, struct mpf_undo *ret);

/* <rundir>/undo/<uuid>: written whole (a new file renamed over the old one); an empty record
 * removes the file. Read: -ENOENT when there is none. */
int mpf_undo_write(const char *rundir, const struct mpf_undo *u);
int mpf_undo_read(const char *rundir, const char *uuid, struct mpf_undo *ret);

/* Switch queueing on again where it was switched off (multipathd's restorequeueing, the kernel's
 * queue_if_no_path), bounded by deadline. With multipathd's answer to disablequeueing pending, it
 * is read first (o->mpathd_reply), and restorequeueing is sent only if multipathd switched queueing
 * off; if no answer comes by the deadline, queueing is put back in the kernel and the call fails:
 * multipathd may still switch it off (the record keeps "queueing-off multipathd" for the next
 * flusher). Clears what it put back, or what went with the map.
 * 0: put back; 1: nothing to put back (or the map is gone); negative errno: something failed
 * (logged). */
int mpf_undo_queueing(const struct mpf_ops *o, struct mpf_undo *u, usec_t deadline);
/* Make the saved partition maps again (those whose name is free), waiting for udev until deadline.
 * Keeps only the ones that could not be made in u. *ret_made: how many were made. 0, or a negative
 * errno when one could not be made (logged). Nothing is made once the map is gone or is being
 * removed (a deferred remove). */
int mpf_undo_partitions(const struct mpf_ops *o, struct mpf_undo *u, usec_t deadline, size_t *ret_made);

/* A flusher died and left its record (its guardian died too, or this is the guardian): put the map
 * back as it says, and remove the record if that worked. Call with the map's lock held.
 * 0: there was no record; 1: the map was put back; negative errno: no record could be read, or
 * something could not be put back (the record stays for the next one).
 * ret_left (may be NULL): what could not be put back is moved into it (its marks set, its saved
 * partition maps taken over: it must have none of its own), for a flusher that goes on: the
 * record it writes next replaces this one, and must still say it. */
int mpf_undo_leftover(const struct mpf_ops *o, const char *uuid, usec_t deadline, struct mpf_undo *ret_left);

/* Drop the queueing marks of a record a flusher left (call with the map's lock held), so that
 * nobody switches queueing on again from it: flush_on_last_del always has switched it off for
 * good. The rest of the record (partition maps) stays. 1: marks dropped; 0: none (or no record);
 * negative errno: the record could not be read or written. */
int mpf_undo_forget_queueing(const struct mpf_ops *o, const char *uuid);
