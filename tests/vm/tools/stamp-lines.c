/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stamp-lines: copy standard input to standard output, each line prefixed with
 * the wall-clock time it was read, in milliseconds since the epoch (as
 * `date +%s%N` / 1000000, the lab's lab_ms). Unbuffered in, flushed per line.
 */
#include <stdio.h>
#include <time.h>

int main(void)
{
        char buf[4096];
        int at_start = 1;

        setvbuf(stdin, NULL, _IONBF, 0);
        while (fgets(buf, sizeof(buf), stdin)) {
                if (at_start) {
                        struct timespec ts;

                        clock_gettime(CLOCK_REALTIME, &ts);
                        printf("%lld ", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
                }
                fputs(buf, stdout);
                fflush(stdout);
                for (char *p = buf; *p; p++)
                        at_start = *p == '\n';
        }
        return 0;
}
