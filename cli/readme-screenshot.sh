#!/usr/bin/env bash
# `make screenshot`: docs/virt-manager.png, the README's picture of virt-manager showing a virtnet VM.
# Brings up a lab of its own (its own directory, names and loopback address, so a running demo or
# test lab is untouched), defines and starts a VGA guest with virtnet, opens virt-manager's list and
# the guest's console on a virtual X server, waits until OCR reads the guest's counter, captures
# both windows, and tears everything down again: the processes it started, by their PIDs.
# Runs as root on Debian 12; `make screenshot` installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

VIRTNET=${VIRTNET:-.venv/bin/virtnet}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-docs/virt-manager.png}
LAB_DIR=/var/tmp/virtnet-screenshot-lab
PREFIX=vnshot
ADDRESS=127.0.0.90
VM=walkthrough-gui
TITLE="Walkthrough GUI VM (made by virtnet)"
WORK=$(mktemp -d /tmp/virtnet-screenshot.XXXXXX)
XVFB_PID= LIST_PID= CONSOLE_PID=
URI="qemu+tls://$ADDRESS/system?pkipath=$LAB_DIR/pki/client"  # the lab talks TLS; its client files

log() { printf '==> %s\n' "$*"; }
virtnet() { "$VIRTNET" -c "$URI" "$@"; }

stop_group() {  # the process group a viewer, its session bus and their helpers run in
    [ -n "$1" ] || return 0
    kill -TERM -- "-$1" 2>/dev/null || return 0
    wait "$1" 2>/dev/null || true
    kill -KILL -- "-$1" 2>/dev/null || true  # what did not go with its leader
}

teardown() {
    log "Tear down: viewers, X server, the VM and the lab"
    stop_group "$CONSOLE_PID"
    stop_group "$LIST_PID"
    if [ -n "$XVFB_PID" ]; then kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null || true; fi
    virtnet stop "$VM" --force >/dev/null 2>&1 || true
    virtnet undefine "$VM" >/dev/null 2>&1 || true
    "$VIRTNET" lab down --dir "$LAB_DIR" || true
    rm -rf "$WORK"
}
trap teardown EXIT

log "Lab $PREFIX on $ADDRESS in $LAB_DIR"
"$VIRTNET" lab up --dir "$LAB_DIR" --prefix "$PREFIX" --address "$ADDRESS" --hugepages-mib 0
LOCAL_URI=qemu:///system?socket=$LAB_DIR/${PREFIX}0/sock/libvirt-sock

log "A VM with VGA and VNC whose guest counts on its screen"
cat >"$WORK/$VM.toml" <<EOF
name = "$VM"
title = "$TITLE"
description = "The lab's test guest: its init prints VIRTNET-TICK n every second on ttyS0 and tty0"
video = "vga"

[cpu]
count = 1

[memory]
size = "256MiB"

[boot]
kernel = "$LAB_DIR/guest/vmlinuz"
initrd = "$LAB_DIR/guest/initrd.gz"
cmdline = "$("$PY" -c 'from virtnet.lab.guest_image import guest_cmdline; print(guest_cmdline(vga=True))')"

[graphics]
type = "vnc"
EOF
virtnet define "$WORK/$VM.toml"
virtnet start "$VM"

log "Xvfb, then virt-manager's list and the VM's console (on $LOCAL_URI)"
# -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
mkfifo "$WORK/display"
exec 3<>"$WORK/display"
Xvfb -displayfd 3 -screen 0 1600x900x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
read -r -t 60 -u 3 number
exec 3>&-
export DISPLAY=:$number NO_AT_BRIDGE=1 GDK_BACKEND=x11 HOME=$WORK XDG_RUNTIME_DIR=$WORK
chmod 700 "$WORK"
setsid dbus-run-session -- virt-manager --connect "$LOCAL_URI" --no-fork >"$WORK/list.log" 2>&1 &
LIST_PID=$!
setsid dbus-run-session -- virt-manager --connect "$LOCAL_URI" --no-fork --show-domain-console "$VM" \
    >"$WORK/console.log" 2>&1 &
CONSOLE_PID=$!

# No window manager: both windows open at +0+0. The list stays there; the console moves beside it.
list_win=$(timeout 120 xdotool search --sync --onlyvisible --name '^Virtual Machine Manager$' | head -1)
console_win=$(timeout 120 xdotool search --sync --onlyvisible --name ' on QEMU/KVM$' | head -1)
xdotool windowsize "$list_win" 560 478
xdotool windowsize "$console_win" 724 478  # the guest's 720x400 VGA text screen, unscaled
xdotool windowmove "$console_win" 566 0

log "Waiting until OCR reads a screenful of the guest's counter in virt-manager's console"
for attempt in $(seq 300); do
    import -window root -crop 724x478+566+0 "$WORK/console.png"
    convert "$WORK/console.png" -resize 200% "$WORK/console-2x.png"
    if tesseract "$WORK/console-2x.png" stdout --psm 6 2>/dev/null |
        grep -Eq 'TICK[[:space:]]+(2[4-9]|[3-9][0-9])'; then
        break
    fi
    [ "$attempt" -lt 300 ] || { echo "no counter on the console after 300 tries" >&2; exit 1; }
    sleep 1
done

mkdir -p "$(dirname "$OUT")"
import -window root -crop 1290x478+0+0 +repage "$WORK/shot.png"
mv "$WORK/shot.png" "$OUT"
log "Wrote $OUT"
