/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "macro.h"
#include "names.h"
#include "options.h"
#include "pool.h"

const char mpf_short_options[] = "adt:njwvqh";

/* clang-format off */
const struct option mpf_long_options[] = {
        { "all",          no_argument,       NULL, 'a'              },
        { "deferred",     no_argument,       NULL, 'd'              },
        { "timeout",      required_argument, NULL, 't'              },
        { "dry-run",      no_argument,       NULL, 'n'              },
        { "json",         no_argument,       NULL, 'j'              },
        { "json-lines",   no_argument,       NULL, ARG_JSON_LINES   },
        { "wait-busy",    no_argument,       NULL, 'w'              },
        { "jobs",         required_argument, NULL, ARG_JOBS         },
        { "no-udev-sync", no_argument,       NULL, ARG_NO_UDEV_SYNC },
        { "verbose",      no_argument,       NULL, 'v'              },
        { "quiet",        no_argument,       NULL, 'q'              },
        { "help",         no_argument,       NULL, 'h'              },
        { "version",      no_argument,       NULL, ARG_VERSION      },
        { "if-pathless",  no_argument,       NULL, ARG_IF_PATHLESS  },
        {}
};
/* clang-format on */

void mpf_help(FILE *f)
{
        fprintf(f, "Usage: mpath-flush [OPTIONS] MAP...\n"
                   "       mpath-flush [OPTIONS] --all\n"
                   "       mpath-flush [--timeout SECONDS] --if-pathless WWID|MAP\n"
                   "\n"
                   "Flush and remove dm-multipath maps safely, one ordered step at a time.\n"
                   "MAP is a map name, /dev/mapper/NAME, /dev/dm-N (any block node), a WWID or mpath-WWID.\n"
                   "\n"
                   "  -a, --all             every multipath map; partition maps go with their map\n"
                   "  -d, --deferred        if the map is in use, schedule a deferred remove\n"
                   "  -t, --timeout SECONDS hard deadline for the whole run (default 30, max 3600)\n"
                   "  -n, --dry-run         print the plan and the blockers; change nothing\n"
                   "  -j, --json            one JSON document on stdout\n"
                   "      --json-lines      one JSON line per map as it finishes, then a summary line\n"
                   "  -w, --wait-busy       wait (unlocked) until a busy map is free, up to the deadline\n"
                   "      --jobs N          flush at most N maps at once (default 4 per CPU, at most 16;\n"
                   "                        1: one after another)\n"
                   "      --no-udev-sync    never wait for udev\n"
                   "      --if-pathless     if the map has no path device left, act by multipath's\n"
                   "                        flush_on_last_del (or $MPATH_FLUSH_ON_LAST_DEL)\n"
                   "  -v, --verbose         more log (repeatable)\n"
                   "  -q, --quiet           only errors\n"
                   "  -h, --help            show this help\n"
                   "      --version         show the version\n"
                   "\n"
                   "See mpath-flush(8).\n");
}

static int parse_jobs(const char *s, unsigned *ret)
{
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != 0 || v < 1 || v > MPF_JOBS_MAX)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* Control characters as \xNN, long arguments cut with "...". */
static void escape_for_display(const char *s, char *buf, size_t size)
{
        size_t k = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (k + 8 >= size) {
                        memcpy(buf + k, "...", 3);
                        k += 3;
                        break;
                }
                if (*p < 0x20 || *p == 0x7f)
                        k += (size_t)snprintf(buf + k, size - k, "\\x%02x", *p);
                else
                        buf[k++] = (char)*p;
        }
        buf[k] = 0;
}

/* Keeps the first usage error in o->error. */
_printf_(2, 3) static int usage_error(struct mpf_options *o, const char *fmt, ...)
{
        va_list ap;

        if (o->error[0])
                return -EINVAL;
        va_start(ap, fmt);
        (void)vsnprintf(o->error, sizeof(o->error), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int parse_failed(const struct mpf_options *o, struct mpf_options *ret, FILE *err)
{
        if (err)
                fprintf(err, "mpath-flush: %s (see --help)\n", o->error);
        *ret = (struct mpf_options){.json = o->json, .json_lines = o->json_lines};
        memcpy(ret->error, o->error, sizeof(ret->error));
        return -EINVAL;
}

int mpf_parse_options(int argc, char *argv[], struct mpf_options *ret, FILE *err)
{
        struct mpf_options o = {
                .action = MPF_ACTION_FLUSH,
                .timeout = MPF_TIMEOUT_DEFAULT_USEC,
        };
        bool if_pathless = false;
        int c, r;

        optind = 0; /* full re-initialisation, so tests can call us repeatedly */
        opterr = 0;
        while ((c = getopt_long(argc, argv, mpf_short_options, mpf_long_options, NULL)) >= 0) {
                switch (c) {
                case 'a':
                        o.all = true;
                        break;
                case 'd':
                        o.deferred = true;
                        break;
                case 't':
                        r = parse_timeout(optarg, &o.timeout);
                        if (r < 0)
                                (void)usage_error(&o,
                                                  "invalid --timeout '%s': expected seconds, 0 < N <= 3600",
                                                  optarg);
                        break;
                case 'n':
                        o.dry_run = true;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case ARG_JSON_LINES:
                        o.json = o.json_lines = true;
                        break;
                case 'w':
                        o.wait_busy = true;
                        break;
                case ARG_JOBS:
                        r = parse_jobs(optarg, &o.jobs);
                        if (r < 0)
                                (void)usage_error(&o, "invalid --jobs '%s': expected 1 <= N <= %u", optarg,
                                                  MPF_JOBS_MAX);
                        break;
                case ARG_NO_UDEV_SYNC:
                        o.no_udev_sync = true;
                        break;
                case 'v':
                        if (o.verbose < 2)
                                o.verbose++;
                        break;
                case 'q':
                        o.verbose = -1;
                        break;
                case 'h':
                        o.action = MPF_ACTION_HELP;
                        break;
                case ARG_VERSION:
                        o.action = MPF_ACTION_VERSION;
                        break;
                case ARG_IF_PATHLESS:
                        if_pathless = true;
                        break;
                case '?':
                default:
                        if (optopt > 0 && optopt < 0x100) {
                                char s[2] = {(char)optopt, 0};
                                bool needs_arg = strchr(mpf_short_options, optopt) != NULL;
                                (void)usage_error(&o,
                                                  needs_arg ? "option -%s requires an argument"
                                                            : "unknown option -%s",
                                                  s);
                        } else
                                (void)usage_error(&o, "unknown or incomplete option '%s'", argv[optind - 1]);
                        break;
                }
        }
        if (o.error[0])
                return parse_failed(&o, ret, err);

        if (o.action != MPF_ACTION_FLUSH) {
                *ret = o;
                return 0;
        }

        o.maps = argv + optind;
        o.n_maps = (size_t)(argc - optind);
        if (if_pathless) {
                if (o.all || o.deferred || o.dry_run || o.json || o.wait_busy || o.jobs > 0)
                        (void)usage_error(&o,
                                          "%s: --if-pathless takes no --all, --deferred, --dry-run, --json, "
                                          "--jobs or --wait-busy",
                                          "usage");
                else if (o.n_maps != 1)
                        (void)usage_error(&o, "%s: --if-pathless takes one WWID or MAP", "usage");
                if (o.error[0])
                        return parse_failed(&o, ret, err);
                o.action = MPF_ACTION_IF_PATHLESS;
        }
        if (o.all && o.n_maps > 0)
                (void)usage_error(&o, "%s: --all takes no MAP arguments", "usage");
        else if (!o.all && o.n_maps == 0)
                (void)usage_error(&o, "%s: no MAP given (or use --all)", "usage");
        else if (o.wait_busy && o.deferred)
                (void)usage_error(&o, "%s: --wait-busy and --deferred exclude each other", "usage");
        if (o.error[0])
                return parse_failed(&o, ret, err);
        for (size_t i = 0; i < o.n_maps; i++)
                if (mpf_arg_classify(o.maps[i]) < 0) {
                        char shown[64];

                        /* one line, whatever the argument contains */
                        escape_for_display(o.maps[i], shown, sizeof(shown));
                        (void)usage_error(&o,
                                          "invalid MAP '%s': not a map name, /dev path, WWID or mpath- UUID",
                                          shown);
                        return parse_failed(&o, ret, err);
                }
        *ret = o;
        return 0;
}
