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
# unit finds it gone.) Then again without multipathd, both maps unused: our rule
# and unit alone flush both within 10 s of the last logout.
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

# Without multipathd: both maps unused, logout from one portal then the other.
t_check "both maps are there again, two paths each" lab_maps_create 2
t_check "multipathd stops" lab_mpathd_stop
set -- $(lab_maps)
t_check "logout from 127.0.0.1 (no multipathd)" logout 127.0.0.1
lab_settle
t_check "both maps stay after the first logout" sh -c "dmsetup info '$1' > /dev/null && dmsetup info '$2' > /dev/null"
t_check "logout from 127.0.0.2" logout 127.0.0.2
s=$(lab_ms)
lab_wait_gone "$1" 30
lab_wait_gone "$2" 30
e=$(($(lab_ms) - s))
t_check_fails "our unit flushed $1" lab_map_exists "$1"
t_check_fails "our unit flushed $2" lab_map_exists "$2"
t_check "... both within 10 s of the last logout ($e ms)" test "$e" -le 10000
journalctl -b -u 'mpath-flush-lastpath@*' -o cat --no-pager | tail -n 6
# Leave nothing for the poweroff to wait on.
multipath -F > /dev/null 2>&1 || true
iscsiadm -m node --logoutall=all > /dev/null 2>&1 || true
t_done
