#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every kind of JSON the helper prints validates against doc/mpath-flush.schema.json: the samples
# (every result, step, blocker and optional field, printed by the helper's own output code) and
# the program's answers to usage errors and to a map it cannot flush here.
# And the validator rejects an invalid line (a result the schema does not know).
#   json-schema.sh VALIDATOR SAMPLES MPATH_FLUSH INVALID_JSON
set -uo pipefail
validate=$1 samples=$2 exe=$3 invalid=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$samples" > "$out/samples.json" || { echo "not ok - json-samples failed"; exit 1; }
# usage errors (exit 2), then what this host makes of a map: environment error or absent
"$exe" --json --bogus mpatha > "$out/usage.json"
"$exe" --json-lines --timeout 0 mpatha > "$out/usage-lines.json"
"$exe" --json --wait-busy --deferred mpatha >> "$out/usage.json"
"$exe" --json mpf-schema-no-such-map > "$out/run.json"
"$exe" --json-lines --wait-busy -t 1 mpf-schema-no-such-map > "$out/run-lines.json"
"$validate" --min 22 "$out/samples.json" "$out/usage.json" "$out/run.json" || exit 1
"$validate" --lines --min 2 "$out/usage-lines.json" "$out/run-lines.json" || exit 1
"$validate" --lines "$invalid" > "$out/invalid.tap"
rc=$?
sed 's/^/# /' "$out/invalid.tap"
if [ $rc -eq 1 ]; then
        echo "ok - the validator rejects $invalid"
else
        echo "not ok - the validator exited $rc on $invalid, want 1"
        exit 1
fi
