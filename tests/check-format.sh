#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The C sources follow the .clang-format at the top of the tree.
top=${1:?usage: check-format.sh TOPDIR}
cf=$(command -v clang-format) || { echo "1..0 # SKIP clang-format is not installed"; exit 0; }
cd "$top" || exit 1
out=$("$cf" --dry-run helper/*.[ch] tests/unit/*.[ch] tests/vm/tools/*.c 2>&1)
if [ -n "$out" ]; then
        echo "not ok 1 - C sources are clang-formatted (run: clang-format -i FILE)"
        printf '%s\n' "$out" | sed 's/^/# /'
        echo "1..1"
        exit 1
fi
echo "ok 1 - C sources are clang-formatted"
echo "1..1"
