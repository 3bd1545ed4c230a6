#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F4: a real iSCSI SAN in the guest. The kernel's LIO target (configured through
# configfs directly) serves two RAM-backed LUNs through two portals on loopback
# addresses (127.0.0.1 and 127.0.0.2); open-iscsi logs in to both, so each LUN
# is a multipath map with two iSCSI paths. One map is unused, one is mounted and
# queueing. Log out of one portal, then the other (os-brick's order): the unused
# map is flushed within 10 s of the last logout; the mounted map stays and keeps
# queueing (default flush_on_last_del, unused), a write made meanwhile waits, and
# when the sessions log in again the write completes and the data reads back.
# (With multipathd running, multipathd removes the unused map itself and our
# unit finds it gone.) Then the connections are killed (see below): paths fail,
# devices stay, both maps keep queueing; then the sessions are lost and logged out.
# Then again without multipathd, both maps unused, one session logged out and the
# other lost and then logged out: our rule and unit alone flush both within 10 s
# of the last logout.
# mpf-lab: mode=full timeout=300
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
IQN=iqn.2026-11.invalid.mpath-flush:f4
T=/sys/kernel/config/target
target_setup() {
        modprobe -a target_core_mod iscsi_target_mod || return 1  # rd_mcp is part of target_core_mod
        [ -d "$T" ] || mount -t configfs configfs /sys/kernel/config 2> /dev/null
        for k in 0 1; do
                mkdir -p "$T/core/rd_mcp_$k/lun$k" || return 1
                echo "rd_pages=8192" > "$T/core/rd_mcp_$k/lun$k/control" || return 1
                echo "f4-lun$k-0001" > "$T/core/rd_mcp_$k/lun$k/wwn/vpd_unit_serial" || return 1
                echo 1 > "$T/core/rd_mcp_$k/lun$k/enable" || return 1
        done
        tpg=$T/iscsi/$IQN/tpgt_1
        mkdir -p "$tpg" || return 1
        for k in 0 1; do
                mkdir -p "$tpg/lun/lun_$k" || return 1
                ln -s "$T/core/rd_mcp_$k/lun$k" "$tpg/lun/lun_$k/f4-lun$k" || return 1
        done
        mkdir "$tpg/np/127.0.0.1:3260" "$tpg/np/127.0.0.2:3260" || return 1
        echo 0 > "$tpg/attrib/authentication"
        echo 1 > "$tpg/attrib/generate_node_acls"
        echo 0 > "$tpg/attrib/demo_mode_write_protect"
        echo 1 > "$tpg/attrib/cache_dynamic_acls"
        echo 1 > "$tpg/enable"
}
t_check "the LIO target serves two LUNs on 127.0.0.1 and 127.0.0.2" target_setup
# multipath-tools' built-in hardware table gives LIO-ORG no_path_retry 12 (queueing stops
# 12 checker intervals after the last path failed), which wins over the defaults section:
# the admin's policy here is to queue, so say it for this vendor too.
mkdir -p /etc/multipath/conf.d
printf 'devices {\n\tdevice {\n\t\tvendor "LIO-ORG"\n\t\tproduct ".*"\n\t\tno_path_retry queue\n\t}\n}\n' \
        > /etc/multipath/conf.d/f4-lio.conf
t_check "multipathd runs" lab_mpathd_start
modprobe -a dm-multipath dm-round-robin iscsi_tcp
login() { iscsiadm -m node -T "$IQN" -p "$1:3260" --login > /dev/null; }
logout() { iscsiadm -m node -T "$IQN" -p "$1:3260" --logout > /dev/null; }
t_check "discovery finds both portals" sh -c \
        "iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 | grep -c '$IQN' | grep -qx 2"
t_check "login through 127.0.0.1" login 127.0.0.1
t_check "login through 127.0.0.2" login 127.0.0.2
lab_settle
t_check "two maps with two iSCSI paths each" lab_maps_create 2
[ "$(lab_maps | wc -l)" -ge 2 ] || t_done
iscsiadm -m session
multipath -ll
map_of() {  # LUN -> its map (the LUN number of its first path, H:C:T:L)
        for _m in $(lab_maps); do
                _p=$(lab_map_paths "$_m" | head -n 1)
                [ "$(basename "$(readlink -f "/sys/block/$_p/device")" | cut -d: -f4)" = "$1" ] && echo "$_m"
        done
}
u=$(map_of 0) m=$(map_of 1)
t_diag "unused map $u (LUN 0, paths $(echo $(lab_map_paths "$u"))), mounted map $m (LUN 1, paths $(echo $(lab_map_paths "$m")))"
t_is "each map has two paths" "$(lab_map_paths "$u" | wc -l) $(lab_map_paths "$m" | wc -l)" "2 2"
munit=$(systemd-escape --template=mpath-flush-lastpath@.service -- "$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')")

mkfs.ext4 -q "/dev/mapper/$m"
mkdir -p /mnt/f4 && mount "/dev/mapper/$m" /mnt/f4
head -c 1048576 /dev/urandom > /tmp/f4.data
want=$(md5sum < /tmp/f4.data)
t_check "$m queues" lab_map_queueing "$m"
t_is "multipathd queues for both LIO maps without limit (no_path_retry queue)" \
        "$(multipathd show maps raw format '%n %Q' | sort | tr '\n' ' ')" "$(printf '%s on\n' $u $m | sort | tr '\n' ' ')"

t_check "logout from 127.0.0.1" logout 127.0.0.1
lab_settle
sleep 2
t_check "both maps stay after the first logout" sh -c "dmsetup info '$u' > /dev/null && dmsetup info '$m' > /dev/null"
t_check "logout from 127.0.0.2" logout 127.0.0.2
s=$(lab_ms)
lab_wait_gone "$u" 30
e=$(($(lab_ms) - s))
t_check_fails "the unused map $u is flushed" lab_map_exists "$u"
t_check "... within 10 s of the last logout ($e ms)" test "$e" -le 10000
t_check "the lastpath unit kept the mounted map, queueing as configured" lab_wait_journal "$munit" \
        "$m: .*flush_on_last_del is unused .*in use, kept, queueing left as configured"
t_check "the mounted map $m stays" lab_map_exists "$m"
t_check "it still queues" lab_map_queueing "$m"
rm -f /tmp/f4.rc
(dd if=/tmp/f4.data of=/mnt/f4/during bs=64k conv=fsync 2> /tmp/f4.err; echo $? > /tmp/f4.rc) &
sleep 3
t_check_fails "a write waits (not finished after 3 s)" test -e /tmp/f4.rc

t_check "login again through both portals" sh -c "iscsiadm -m node -T '$IQN' -p 127.0.0.1:3260 --login && iscsiadm -m node -T '$IQN' -p 127.0.0.2:3260 --login" 
i=0
while [ ! -e /tmp/f4.rc ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
t_diag "paths of $m now: $(echo $(lab_map_paths "$m"))"
t_is "the write completes once the paths are back" "$(cat /tmp/f4.rc 2>/dev/null)" 0
cat /tmp/f4.err
umount /mnt/f4
echo 3 > /proc/sys/vm/drop_caches
mount "/dev/mapper/$m" /mnt/f4
t_is "the data reads back after a remount" "$(md5sum < /mnt/f4/during 2>&1)" "$want"
umount /mnt/f4
errs=$(dmesg | grep -E 'EXT4-fs (error|warning)|Buffer I/O error|JBD2: .*(error|abort)|Aborting journal' || true)
t_is "no file system or buffer I/O error in the kernel log" "$errs" ""

# Connection loss (a cable pull, a target that goes away), with multipathd: kill one
# session's TCP connection, then the other's, and keep each portal unreachable (a prohibit
# route rule, so iscsid's reconnects fail at once). The sessions go into recovery; when
# recovery_tmo runs out their SCSI devices go transport-offline but stay (open-iscsi
# retries a lost session for ever; only a logout deletes its devices). So the paths fail,
# no path device is removed, no last-path event comes: both maps stay queueing as the
# admin configured them, the used one and the unused one alike, and a write waits.
paths_failed() { dmsetup status "$1" | grep -o '[0-9]*:[0-9]* F' | wc -l; }
wait_failed() {  # MAP COUNT: until COUNT of its paths are failed (20 s at most)
        _i=0
        while [ "$(paths_failed "$1")" -ne "$2" ] && [ $_i -lt 200 ]; do sleep 0.1; _i=$((_i + 1)); done
        [ "$(paths_failed "$1")" -eq "$2" ]
}
offline_devs() { cat /sys/block/sd*/device/state 2>/dev/null | grep -c '^transport-offline$' || true; }
wait_offline() {  # COUNT: until COUNT SCSI devices are transport-offline (20 s at most)
        _i=0
        while [ "$(offline_devs)" -ne "$1" ] && [ $_i -lt 200 ]; do sleep 0.1; _i=$((_i + 1)); done
        [ "$(offline_devs)" -eq "$1" ]
}
cut_portal() {  # ADDR: its established connection dies and no new one gets through
        ss -K dst "$1" dport = 3260 > /dev/null && ip rule add pref 10 to "$1/32" ipproto 6 dport 3260 prohibit
}
mend_portal() { ip rule del pref 10 to "$1/32" ipproto 6 dport 3260 prohibit; }
cut_both() { cut_portal 127.0.0.1 && cut_portal 127.0.0.2; }
mend_both() { mend_portal 127.0.0.1 && mend_portal 127.0.0.2; }
both_exist() { lab_map_exists "$u" && lab_map_exists "$m"; }
lastpath_runs() {
        journalctl -b -o cat --no-pager -u 'mpath-flush-lastpath@*' | grep -c '^Starting mpath-flush-lastpath@' || true
}
wait_write() {  # until the background write is done (60 s at most)
        _i=0
        while [ ! -e /tmp/f4.rc ] && [ $_i -lt 600 ]; do sleep 0.1; _i=$((_i + 1)); done
}
no_fs_error() {
        errs=$(dmesg | grep -E 'EXT4-fs (error|warning)|Buffer I/O error|JBD2: .*(error|abort)|Aborting journal' || true)
        t_is "no file system or buffer I/O error in the kernel log" "$errs" ""
}
kept_lines() {  # how many times the lastpath unit kept the mounted map so far
        journalctl -b -o cat --no-pager -u "$munit" | grep -c "$m: .*flush_on_last_del is unused .*in use, kept" || true
}
# The local table's rule (pref 0) would route 127.0.0.0/8 before any prohibit rule. (The
# rules match the target's port only: the initiator's source address is 127.0.0.1 for both
# portals, and the replies to it must still get through.)
ip rule add pref 100 lookup local && ip rule del pref 0 lookup local
runs=$(lastpath_runs)
t_check "$m is mounted again" mount "/dev/mapper/$m" /mnt/f4
lab_settle
for s in /sys/class/iscsi_session/session*; do echo 2 > "$s/recovery_tmo"; done
t_check "connection through 127.0.0.1 killed, the portal unreachable" cut_portal 127.0.0.1
t_check "one path of $u failed" wait_failed "$u" 1
t_check "one path of $m failed" wait_failed "$m" 1
rm -f /tmp/f4.rc
(dd if=/tmp/f4.data of=/mnt/f4/during2 bs=64k conv=fsync 2> /tmp/f4.err; echo $? > /tmp/f4.rc) &
wait_write
t_is "a write goes through the other path" "$(cat /tmp/f4.rc 2>/dev/null)" 0
t_check "connection through 127.0.0.2 killed, the portal unreachable" cut_portal 127.0.0.2
t_check "both paths of $u failed" wait_failed "$u" 2
t_check "both paths of $m failed" wait_failed "$m" 2
t_diag "$m after the kills: $(dmsetup status "$m")"
t_check "recovery_tmo ran out: the four path devices are transport-offline" wait_offline 4
t_is "the path devices stay" "$(lab_map_paths "$u" | wc -l) $(lab_map_paths "$m" | wc -l)" "2 2"
t_check "the unused map $u stays" lab_map_exists "$u"
t_check "the mounted map $m stays" lab_map_exists "$m"
t_check "$u still queues" lab_map_queueing "$u"
t_check "$m still queues" lab_map_queueing "$m"
rm -f /tmp/f4.rc
(dd if=/tmp/f4.data of=/mnt/f4/during3 bs=64k conv=fsync 2> /tmp/f4.err; echo $? > /tmp/f4.rc) &
sleep 3
t_check_fails "a write waits (not finished after 3 s)" test -e /tmp/f4.rc
t_is "no lastpath instance ran for the connection kills" "$(lastpath_runs)" "$runs"
t_check "both portals are reachable again" mend_both
s=$(lab_ms)
wait_write
e=$(($(lab_ms) - s))
t_is "the write completes once the sessions are back ($e ms)" "$(cat /tmp/f4.rc 2>/dev/null)" 0
cat /tmp/f4.err
t_check "both paths of $m are active again" wait_failed "$m" 0
t_check "both paths of $u are active again" wait_failed "$u" 0
# udev probes the maps when their paths come back; a probe still reading when the paths
# fail again would wait in the queue and hold the unused map open (it would be in use).
lab_settle

# The sessions are lost for good: both connections killed again, and once recovery_tmo
# has run out the dead sessions are logged out (what os-brick or an admin does), one
# portal then the other; that deletes their SCSI devices, and the last removal is the
# last-path event. The policy holds as for a logout: the unused map is flushed within
# 10 s, the mounted one is kept and keeps queueing, and its write completes after a new
# login.
kept=$(kept_lines)
t_check "both connections killed again, the portals unreachable" cut_both
t_check "both paths of $m failed" wait_failed "$m" 2
rm -f /tmp/f4.rc
(dd if=/tmp/f4.data of=/mnt/f4/during4 bs=64k conv=fsync 2> /tmp/f4.err; echo $? > /tmp/f4.rc) &
s=$(lab_ms)
t_check "the dead session through 127.0.0.1 is logged out" logout 127.0.0.1
t_diag "logout took $(($(lab_ms) - s)) ms"
lab_settle
t_check "both maps stay after the first logout" both_exist
s=$(lab_ms)
t_check "the dead session through 127.0.0.2 is logged out" logout 127.0.0.2
t_diag "logout took $(($(lab_ms) - s)) ms"
s=$(lab_ms)
lab_wait_gone "$u" 30
e=$(($(lab_ms) - s))
t_check_fails "the unused map $u is flushed" lab_map_exists "$u"
t_check "... within 10 s of the last logout ($e ms)" test "$e" -le 10000
_i=0
while [ "$(kept_lines)" -le "$kept" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
t_is "the lastpath unit kept the mounted map, queueing as configured" "$(kept_lines)" $((kept + 1))
t_check "the mounted map $m stays" lab_map_exists "$m"
t_check "it still queues" lab_map_queueing "$m"
t_check_fails "its write waits" test -e /tmp/f4.rc
t_check "the portals are reachable again" mend_both
t_check "login again through 127.0.0.1" login 127.0.0.1
t_check "login again through 127.0.0.2" login 127.0.0.2
s=$(lab_ms)
wait_write
e=$(($(lab_ms) - s))
t_is "the write completes once the paths are back ($e ms)" "$(cat /tmp/f4.rc 2>/dev/null)" 0
cat /tmp/f4.err
umount /mnt/f4
echo 3 > /proc/sys/vm/drop_caches
mount "/dev/mapper/$m" /mnt/f4
t_is "the data written while one path was cut reads back" "$(md5sum < /mnt/f4/during2 2>&1)" "$want"
t_is "the data written while both were cut reads back" "$(md5sum < /mnt/f4/during3 2>&1)" "$want"
t_is "the data written while the sessions were lost reads back" "$(md5sum < /mnt/f4/during4 2>&1)" "$want"
umount /mnt/f4
no_fs_error

# Without multipathd: both maps unused, logout from one portal; then the session through
# the other is lost (connection killed, portal unreachable, recovery_tmo runs out) and the
# dead session is logged out, which deletes its devices: our rule and unit alone flush both
# maps within 10 s of that last logout.
t_check "both maps are there again, two paths each" lab_maps_create 2
t_check "multipathd stops" lab_mpathd_stop
set -- $(lab_maps)
for s in /sys/class/iscsi_session/session*; do echo 2 > "$s/recovery_tmo"; done
t_check "logout from 127.0.0.1 (no multipathd)" logout 127.0.0.1
lab_settle
t_check "both maps stay after the first logout" sh -c "dmsetup info '$1' > /dev/null && dmsetup info '$2' > /dev/null"
t_check "connection through 127.0.0.2 killed, the portal unreachable" cut_portal 127.0.0.2
t_check "recovery_tmo ran out: its two devices are transport-offline" wait_offline 2
t_check "both maps stay while the session is dead" sh -c "dmsetup info '$1' > /dev/null && dmsetup info '$2' > /dev/null"
t_check "the dead session through 127.0.0.2 is logged out" logout 127.0.0.2
s=$(lab_ms)
lab_wait_gone "$1" 30
lab_wait_gone "$2" 30
e=$(($(lab_ms) - s))
t_check_fails "our unit flushed $1" lab_map_exists "$1"
t_check_fails "our unit flushed $2" lab_map_exists "$2"
t_check "... both within 10 s of the last logout ($e ms)" test "$e" -le 10000
journalctl -b -u 'mpath-flush-lastpath@*' -o cat --no-pager | tail -n 6
mend_portal 127.0.0.2
# Leave nothing for the poweroff to wait on.
multipath -F > /dev/null 2>&1 || true
iscsiadm -m node --logoutall=all > /dev/null 2>&1 || true
t_done
