#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# meson setup as a packager meets it (TAP):
#  - without systemd's and udev's .pc files, with --prefix=/opt/mpf: it works,
#    and units, preset, tmpfiles.d entry and rule go under the prefix;
#  - with systemd.pc (where the host has it), --prefix=/usr: the unit dir is
#    systemd.pc's answer with ${prefix} set to /usr;
#  - without scdoc: -Dman=enabled (the default) stops with one ERROR line that
#    names -Dman=disabled; -Dman=disabled works and installs no page.
top=${1:?usage: meson-setup.sh TOPDIR}
work=$(mktemp -d "${TMPDIR:-/tmp}/mpf-setup.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fail=1; echo "not ok $n - $*"; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1: got '$2', want '$3'"; fi; }
installed() {  # installed BUILDDIR NAME -> where meson would install the file NAME
        meson introspect "$1" --installed | python3 -c '
import json, os, sys
for src, dst in json.load(sys.stdin).items():
    if os.path.basename(dst) == sys.argv[1]:
        print(os.path.dirname(dst))' "$2"
}

# A pkg-config search path with every .pc file but systemd's and udev's.
pc=$work/pc
mkdir -p "$pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' ') ${PKG_CONFIG_PATH//:/ }; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -name '*.pc' ! -name systemd.pc ! -name udev.pc -exec ln -sf {} "$pc/" \;
done
b=$work/no-pc
if PKG_CONFIG_LIBDIR=$pc PKG_CONFIG_PATH= meson setup "$b" "$top" --prefix=/opt/mpf -Dvm_tests=false > "$work/no-pc.log" 2>&1; then
        ok "meson setup without systemd.pc and udev.pc works"
        is "units go to PREFIX/lib/systemd/system" "$(installed "$b" mpath-flush-shutdown.service)" /opt/mpf/lib/systemd/system
        is "the preset goes to PREFIX/lib/systemd/system-preset" "$(installed "$b" 80-mpath-flush.preset)" /opt/mpf/lib/systemd/system-preset
        is "the tmpfiles.d entry goes to PREFIX/lib/tmpfiles.d" "$(installed "$b" mpath-flush.conf)" /opt/mpf/lib/tmpfiles.d
        is "the rule goes to PREFIX/lib/udev/rules.d" "$(installed "$b" 69-mpath-flush.rules)" /opt/mpf/lib/udev/rules.d
else
        notok "meson setup without systemd.pc and udev.pc works"
        sed 's/^/# /' "$work/no-pc.log" | tail -n 15
fi

if pkg-config --exists systemd; then
        b=$work/pc-usr
        meson setup "$b" "$top" --prefix=/usr -Dvm_tests=false > "$work/pc-usr.log" 2>&1
        is "with systemd.pc, units go where it says for prefix /usr" "$(installed "$b" mpath-flush-shutdown.service)" \
                "$(pkg-config --define-variable=prefix=/usr --variable=systemdsystemunitdir systemd)"
fi

# A PATH with every program but scdoc.
bin=$work/bin
mkdir -p "$bin"
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
        [ -d "$d" ] || continue
        for f in "$d"/*; do
                [ "${f##*/}" = scdoc ] || [ -e "$bin/${f##*/}" ] || ln -s "$f" "$bin/"
        done
done
b=$work/no-scdoc
PATH=$bin meson setup "$b" "$top" -Dvm_tests=false > "$work/no-scdoc.log" 2>&1
rc=$?
err=$(grep 'ERROR' "$work/no-scdoc.log")
if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] && printf '%s' "$err" | grep -q -- '-Dman=disabled'; then
        ok "without scdoc, meson setup fails with one line naming -Dman=disabled: ${err##*ERROR: }"
else
        notok "without scdoc, meson setup fails with one line naming -Dman=disabled (exit $rc: $err)"
fi
b=$work/no-man
if PATH=$bin meson setup "$b" "$top" -Dvm_tests=false -Dman=disabled > "$work/no-man.log" 2>&1; then
        is "without scdoc, -Dman=disabled works and installs no man page" "$(installed "$b" mpath-flush.8)" ""
else
        notok "without scdoc, -Dman=disabled works"
        sed 's/^/# /' "$work/no-man.log" | tail -n 15
fi
echo "1..$n"
exit $fail
