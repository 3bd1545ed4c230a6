/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "deadline.h"

/*
 * Not part of the module's interface (syncer.h): syncer.c and its unit test only. Not static so
 * that the test can be the worker, on the other end of a socket pair.
 */

/* Wait until the deadline for the worker's answer on sock: 0 and *ret_status when it is exactly
 * one int without a descriptor; -EINTR when the worker's end closed or it sent anything else (a
 * descriptor that came with it is closed); -ETIMEDOUT at the deadline; poll()'s error otherwise. */
int mpf_syncer_receive_status(int sock, usec_t deadline, int *ret_status);
