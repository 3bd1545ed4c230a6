/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t)UINT64_MAX)
#define USEC_PER_MSEC ((usec_t)1000ULL)
#define USEC_PER_SEC ((usec_t)1000000ULL)

/* Longest --timeout we accept, and the default. */
#define MPF_TIMEOUT_MAX_USEC (3600 * USEC_PER_SEC)
#define MPF_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)

usec_t now_monotonic(void);

/* Saturating arithmetic on absolute CLOCK_MONOTONIC times. */
usec_t usec_add(usec_t a, usec_t b);
usec_t usec_sub_unsigned(usec_t a, usec_t b);

/* Time left until deadline as seen at "now", 0 if passed. */
usec_t deadline_left(usec_t deadline, usec_t now);
bool deadline_passed(usec_t deadline, usec_t now);
/* poll()-style timeout in ms for the time left, rounded up, capped at INT_MAX; 0 if passed. */
int deadline_poll_ms(usec_t deadline, usec_t now);

/* Bounded exponential backoff: first, then doubling up to max. */
struct backoff {
        usec_t next;
        usec_t max;
};
void backoff_init(struct backoff *b, usec_t first, usec_t max);
/* The delay to wait now, never past the deadline; 0 if the deadline has passed. Advances b. */
usec_t backoff_step(struct backoff *b, usec_t deadline, usec_t now);

/* Parse "30", "0.5", "1.25" as seconds: positive, <= 3600, at most 6 decimals. */
int parse_timeout(const char *s, usec_t *ret);

/* Sleep until the absolute monotonic time t (EINTR-safe). */
void sleep_until(usec_t t);
