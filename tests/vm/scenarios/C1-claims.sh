#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# C1: documented claims of mpath-flush(8), each on maps of its own in one boot:
#   lock     another tool holding /run/mpath-flush/lock/UUID with flock(1): mpath-flush
#            waits for it, and at the deadline ends "timeout", exit 5, map as found;
#            --dry-run takes no lock (answers at once while the lock is held); a
#            path device held with LOCK_SH (as multipathd does while it creates a
#            map) makes it wait too
#   signals  SIGINT, SIGTERM, SIGHUP sent while the run waits for a lock: held back
#            until the run is over (the map is removed, the JSON answer complete)
#   names    MAP given as /dev/mapper/NAME, /dev/dm-N and a bare WWID
#   swap     swap on a map: busy (exit 4) at the in-use step, the swap area named
#   --all    takes the maps in the order of their names (not of their creation or
#            device numbers): with the lock of a middle map held, the maps named
#            before it are gone and those after it still there
#   ipcs     no SysV semaphore (udev cookie) is left behind by any of these runs,
#            the timeouts included
#   rss      peak RSS of the --all run under 8 MiB (wait4's ru_maxrss)
# C1_ONLY=lock (a variant: tests/mutants' C1 mutants run it) makes the lock claims alone, on
# one map, in about a third of the guest time.
# mpf-lab: mode=fast timeout=240
. /usr/lib/mpf-lab/lib.sh
C1_ONLY=${C1_ONLY:-}
case $C1_ONLY in
'' | lock) ;;
*) t_fail "C1_ONLY is empty or lock" "it is '$C1_ONLY'"; t_done ;;
esac

lab_udev_light
if [ "$C1_ONLY" = lock ]; then lab_setup 1; else lab_setup 9; fi
sems() { ipcs -s 2>/dev/null | grep -c '^0x'; }
sem0=$(sems)
uuid() { dmsetup info -c --noheadings -o uuid "$1"; }
lockfile() { echo "/run/mpath-flush/lock/$(uuid "$1")"; }
mkdir -p /run/mpath-flush/lock && chmod 0700 /run/mpath-flush/lock
json() { printf '%s' "$1" | jq -r "$2"; }

# -- lock: another tool holds the map lock ($mid); then a path of it held with LOCK_SH
lock_claims() {
        # flock -o: the lock is flock(1)'s own, released after 10 s or when it is killed below
        flock -o "$(lockfile "$mid")" sleep 10 &
        holder=$!
        sleep 0.5
        lab_run r mpath-flush --json --timeout 3 "$mid"
        t_is "lock held by flock(1): exit 5" "$r_rc" 5
        t_is "lock held by flock(1): result timeout" "$(json "$r_out" '.maps[0].result')" timeout
        t_is "lock held by flock(1): at the lock step" "$(json "$r_out" '.maps[0].step')" lock
        t_check "lock held by flock(1): it waited the whole deadline (${r_ms} ms)" test "$r_ms" -ge 2900
        t_check "lock held by flock(1): the map is left" lab_map_exists "$mid"
        t_is "no semaphore left after the timeout" "$(sems)" "$sem0"
        lab_run r mpath-flush --dry-run --json --timeout 10 "$mid"
        t_is "--dry-run while the lock is held: exit 0" "$r_rc" 0
        t_check "--dry-run while the lock is held: answers at once (${r_ms} ms)" test "$r_ms" -lt 3000
        t_check "the lock holder was still there" kill -0 "$holder"
        kill "$holder"
        wait "$holder"
        # A path device held with LOCK_SH, as multipathd does while it creates a map: the
        # path lock is not taken, the run waits until its deadline.
        p=$(lab_map_paths "$mid" | head -n 1)
        flock -s "/dev/$p" sleep 5 &
        holder=$!
        sleep 0.5
        lab_run r mpath-flush --json --timeout 2 "$mid"
        t_is "path $p held with LOCK_SH: exit 5" "$r_rc" 5
        t_is "path $p held with LOCK_SH: timeout at the lock step" \
                "$(json "$r_out" '.maps[0].result') $(json "$r_out" '.maps[0].step')" "timeout lock"
        t_check "path $p held with LOCK_SH: the map is left" lab_map_exists "$mid"
        wait "$holder"
}
if [ "$C1_ONLY" = lock ]; then
        mid=$(lab_map_first)
        lock_claims
        t_done
fi

# Maps by device number: the first made is renamed to sort last, the last made
# to sort first, so that name order differs from creation and dev_t order.
set -- $(dmsetup ls --target multipath | awk '{ print $1 }' | while read -r m; do
        echo "$(dmsetup info -c --noheadings -o minor "$m") $m"; done | sort -n | awk '{ print $2 }')
t_is "nine maps" "$#" 9
dmsetup rename "$1" zz-first-made && dmsetup rename "$9" aa-last-made
lab_settle
first=zz-first-made last=aa-last-made
mid=$2 sig1=$3 sig2=$4 sig3=$5 bywwid=$6 byname=$7 bydm=$8
t_check "the renamed maps exist" sh -c "dmsetup info $first > /dev/null && dmsetup info $last > /dev/null"

lock_claims

# -- swap on a map (the lock holder is still there: another map)
mkswap -q "/dev/mapper/$byname" && swapon "/dev/mapper/$byname"
t_check "swap is on $byname" grep -q "^$(readlink -f "/dev/mapper/$byname") " /proc/swaps
lab_run r mpath-flush --json "$byname"
t_is "swap: exit 4" "$r_rc" 4
t_is "swap: result busy" "$(json "$r_out" '.maps[0].result')" busy
t_is "swap: refused at the in-use step" "$(json "$r_out" '.maps[0].step')" in-use
t_like "swap: the swap area is named" "$(json "$r_out" '.maps[0].blockers.swaps | join(" ")')" "dm-|$byname"
t_check "swap: the map stays" lab_map_exists "$byname"
swapoff "/dev/mapper/$byname"

# -- MAP as /dev/mapper/NAME, /dev/dm-N, a bare WWID
lab_run r mpath-flush --json "/dev/mapper/$byname"
t_is "/dev/mapper/$byname: removed" "$r_rc $(json "$r_out" '.maps[0].result')" "0 removed"
t_check_fails "/dev/mapper/$byname: gone" lab_map_exists "$byname"
dm=$(lab_map_dev "$bydm")
lab_run r mpath-flush --json "/dev/$dm"
t_is "/dev/$dm: removed" "$r_rc $(json "$r_out" '.maps[0].result')" "0 removed"
t_check_fails "/dev/$dm: $bydm is gone" lab_map_exists "$bydm"
wwid=$(uuid "$bywwid" | sed 's/^mpath-//')
t_like "$bywwid's WWID" "$wwid" '^[0-9A-Za-z_.:-]+$'
lab_run r mpath-flush --json "$wwid"
t_is "WWID $wwid: removed" "$r_rc $(json "$r_out" '.maps[0].result')" "0 removed"
t_check_fails "WWID $wwid: $bywwid is gone" lab_map_exists "$bywwid"

# -- signals: held back while the run waits for a lock held 4 s
signal_run() {  # signal_run MAP SIG: signal it after 1 s; "rc result alive-0.5s-later SigIgn SigBlk"
        flock "$(lockfile "$1")" sleep 4 &
        _h=$!
        sleep 0.3
        env --default-signal=INT,TERM,HUP mpath-flush --json --timeout 20 "$1" > "/tmp/sig-$2.json" 2> "/tmp/sig-$2.err" &
        _p=$!
        sleep 1
        # the signal must not be ignored from the start, or the check would prove nothing
        _ign=$(awk '/^SigIgn:/ { print $2 }' "/proc/$_p/status")
        _blk=$(awk '/^SigBlk:/ { print $2 }' "/proc/$_p/status")
        kill "-$2" "$_p"
        sleep 0.5
        _alive=no
        kill -0 "$_p" 2> /dev/null && _alive=yes
        wait "$_p"
        _rc=$?
        wait "$_h"
        _res=$(jq -r '.maps[0].result' "/tmp/sig-$2.json" 2>/dev/null)
        echo "$_rc ${_res:-none} $_alive ${_ign:-none} ${_blk:-none}"
}
mask_has() {  # mask_has HEXMASK BIT yes|no: the bit is set (yes) or clear (no); no mask fails
        [ "$1" != none ] || return 1
        if [ $((0x$1 & $2)) -ne 0 ]; then [ "$3" = yes ]; else [ "$3" = no ]; fi
}
for s in INT TERM HUP; do
        case $s in INT) m=$sig1 n=2 ;; TERM) m=$sig2 n=15 ;; HUP) m=$sig3 n=1 ;; esac
        set -- $(signal_run "$m" "$s")
        bit=$((1 << (n - 1)))
        t_check "SIG$s was not ignored by the run (SigIgn $4)" mask_has "$4" "$bit" no
        t_check "SIG$s is blocked during the run (SigBlk $5)" mask_has "$5" "$bit" yes
        t_is "SIG$s mid-run: the run is still there 0.5 s later" "$3" yes
        t_is "SIG$s mid-run: the map is still removed" "$2" removed
        t_like "SIG$s mid-run: exit status the run's, or the signal's after the run (rc $1)" "$1" "^(0|$((128 + n)))\$"
        t_check_fails "SIG$s mid-run: $m is gone" lab_map_exists "$m"
done
t_is "no semaphore left after the single-map runs" "$(sems)" "$sem0"

# -- --all --jobs 1 in name order: aa-last-made, the middle map, zz-first-made. The
# middle one's lock is held: the first is removed, the last waits. (With the pool, the
# default, a map whose lock is held is set aside and the others go on: A13 shows it.)
lab_maps > /tmp/all-maps
t_is "three maps left for --all" "$(tr '\n' ' ' < /tmp/all-maps)" "$last $mid $first "
flock "$(lockfile "$mid")" sleep 5 &
holder=$!
sleep 0.3
dm-bench time /tmp/rss -- mpath-flush --all --jobs 1 --json --timeout 30 > /tmp/all.json 2> /tmp/all.err &
runner=$!
i=0
while lab_map_exists "$last" && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
t_check_fails "--all: $last, named before $mid, is gone first" lab_map_exists "$last"
t_check "--all: $first, named after $mid, waits (though made first, lowest dev_t)" lab_map_exists "$first"
t_check "--all: still running while $mid is locked" kill -0 "$runner"
wait "$holder"
wait "$runner"
t_is "--all: every map removed" "$(jq -r '[.maps[].result] | unique | join(" ")' /tmp/all.json)" removed
t_is "--all: the answer lists them in name order" "$(jq -r '[.maps[].name] | join(" ")' /tmp/all.json)" "$last $mid $first"
t_is "--all: exit 0" "$(jq -r '.exit_status' /tmp/all.json)" 0
t_is "--all: no map left" "$(lab_maps | wc -l)" 0
t_is "no semaphore left after --all" "$(sems)" "$sem0"
rss=$(sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' /tmp/rss)
t_diag "$(cat /tmp/rss)"
t_check "peak RSS of mpath-flush --all under 8 MiB (${rss} kB)" test "${rss:-99999}" -lt 8192
t_done
