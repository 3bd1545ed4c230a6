/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "deadline.h"

usec_t now_monotonic(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000;
}

usec_t usec_add(usec_t a, usec_t b)
{
        if (a > USEC_INFINITY - b)
                return USEC_INFINITY;
        return a + b;
}

usec_t usec_sub_unsigned(usec_t a, usec_t b)
{
        return a > b ? a - b : 0;
}

usec_t deadline_left(usec_t deadline, usec_t now)
{
        return usec_sub_unsigned(deadline, now);
}

bool deadline_passed(usec_t deadline, usec_t now)
{
        return now >= deadline;
}

int deadline_poll_ms(usec_t deadline, usec_t now)
{
        usec_t left = deadline_left(deadline, now);
        usec_t ms;

        if (left == 0)
                return 0;
        ms = left / USEC_PER_MSEC + (left % USEC_PER_MSEC != 0);
        return ms > INT_MAX ? INT_MAX : (int)ms;
}

void backoff_init(struct backoff *b, usec_t first, usec_t max)
{
        b->next = first > 0 ? first : 1;
        b->max = max < b->next ? b->next : max;
}

usec_t backoff_step(struct backoff *b, usec_t deadline, usec_t now)
{
        usec_t left = deadline_left(deadline, now);
        usec_t d = b->next;

        if (left == 0)
                return 0;
        b->next = b->next > b->max / 2 ? b->max : b->next * 2;
        return d < left ? d : left;
}

int parse_timeout(const char *s, usec_t *ret)
{
        usec_t sec = 0, frac = 0, scale = 100000;
        const char *p = s;
        bool digits = false;

        if (!s || !*s)
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                digits = true;
                sec = sec * 10 + (usec_t)(*p - '0');
                if (sec > 3600)
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++) {
                        digits = true;
                        if (scale == 0)
                                return -EINVAL; /* more precision than a microsecond */
                        frac += (usec_t)(*p - '0') * scale;
                        scale /= 10;
                }
        }
        if (*p != 0 || !digits)
                return -EINVAL;
        sec = sec * USEC_PER_SEC + frac;
        if (sec == 0 || sec > MPF_TIMEOUT_MAX_USEC)
                return -ERANGE;
        *ret = sec;
        return 0;
}

void sleep_until(usec_t t)
{
        struct timespec ts = {
                .tv_sec = (time_t)(t / USEC_PER_SEC),
                .tv_nsec = (long)(t % USEC_PER_SEC) * 1000,
        };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}
