#!/bin/busybox sh
# /init of virtnet's lab test guest (busybox initramfs built by virtnet/lab/guest_image.py).
#
# Tests talk to this guest only through its console: every line a test looks for starts with
# VIRTNET- and is written whole, in one write, to the serial port (and to the VGA console when the
# kernel command line has console=tty0). What the guest does is chosen on the kernel command line:
#   virtnet.ip=ADDR/PREFIX[,ADDR/PREFIX...]  one per virtio NIC: eth0, eth1, ... in order
#   virtnet.ping=ADDR                        wait (<= ~120 s) until ADDR answers, then ping -c 5
#   virtnet.pingloop=ADDR                    wait until ADDR answers, then ping it every 0.1 s forever
#   virtnet.dirty=MIB                        rewrite MIB MiB of memory in a loop (migration tests)
#   virtnet.dirtywait=1                      ... only once a console line says VIRTNET-GO
#   virtnet.dirtypace=MIB_PER_S              ... at most this fast (a sleep after each MiB)
#   virtnet.disk=1                           write /dev/vda and read it back, checking checksums
#   virtnet.iperf=server | client:ADDR:SECONDS
# This script is PID 1: it must never exit (the kernel would panic), so nothing here uses set -e.

/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
export PATH=/bin:/usr/bin

set -f                       # the command line is split into words below: never glob them
read -r CMDLINE </proc/cmdline
VGA=
for w in $CMDLINE; do
    case $w in
        console=tty0) VGA=1 ;;
        virtnet.ip=*) IPS=${w#virtnet.ip=} ;;
        virtnet.ping=*) PING=${w#virtnet.ping=} ;;
        virtnet.pingloop=*) PINGLOOP=${w#virtnet.pingloop=} ;;
        virtnet.dirty=*) DIRTY=${w#virtnet.dirty=} ;;
        virtnet.dirtywait=*) DIRTYWAIT=${w#virtnet.dirtywait=} ;;
        virtnet.dirtypace=*) DIRTYPACE=${w#virtnet.dirtypace=} ;;
        virtnet.disk=*) DISK=${w#virtnet.disk=} ;;
        virtnet.iperf=*) IPERF=${w#virtnet.iperf=} ;;
    esac
done
set +f

# fd 3: the serial port; fd 4: the VGA console, only when asked for and present. A test reads the
# serial log, so a guest without ttyS0 still writes its markers somewhere (/dev/console).
if (exec 3>/dev/ttyS0) 2>/dev/null; then exec 3>/dev/ttyS0; else exec 3>/dev/console; fi
if [ -n "$VGA" ] && (exec 4>/dev/tty0) 2>/dev/null; then exec 4>/dev/tty0; else VGA=; fi

say() {
    echo "$*" >&3
    [ -z "$VGA" ] || echo "$*" >&4
}

# Prefix every line read from stdin and say it: command output becomes marker lines.
say_lines() {
    while IFS= read -r line; do say "$1 $line"; done
}

uptime_s() {
    read -r UP _ </proc/uptime
}

uptime_s
say "VIRTNET-BOOTED uptime=$UP"

/bin/busybox --install -s /bin
mkdir -p /tmp /mnt /run
chmod 1777 /tmp

while read -r m; do
    insmod "/lib/modules/$m.ko" || say "VIRTNET-INSMOD-FAIL $m"
done </etc/virtnet/modules

ip link set lo up

# Wait up to 5 s for the NIC the kernel names $1 to appear.
wait_nic() {
    i=0
    while [ ! -e "/sys/class/net/$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "/sys/class/net/$1" ]
}

count_queues() {
    set -- /sys/class/net/$1/queues/rx-*
    [ -e "$1" ] && echo $# || echo 0
}

setup_nics() {
    n=0
    IFS=,
    set -f
    set -- $IPS
    set +f
    unset IFS
    for addr in "$@"; do
        dev=eth$n
        n=$((n + 1))
        if ! wait_nic "$dev"; then
            say "VIRTNET-NET-FAIL $dev missing"
            continue
        fi
        if ip link set "$dev" up && ip addr add "$addr" dev "$dev"; then
            read -r mac <"/sys/class/net/$dev/address"
            say "VIRTNET-NET-UP $dev $addr mac=$mac queues=$(count_queues "$dev")"
        else
            say "VIRTNET-NET-FAIL $dev $addr"
        fi
    done
}

# Until $1 answers one ping, for at most ~120 s of guest uptime.
wait_reachable() {
    uptime_s
    deadline=$((${UP%.*} + 120))
    until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
        uptime_s
        [ "${UP%.*}" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

run_ping() {
    if ! wait_reachable "$PING"; then
        say "VIRTNET-PING-FAIL $PING unreachable for 120 s"
        return
    fi
    if ping -c 5 "$PING" >/tmp/ping.out 2>&1; then ok=OK; else ok=FAIL; fi
    tail -n 2 /tmp/ping.out | say_lines VIRTNET-PING
    say "VIRTNET-PING-$ok $PING"
}

# Every reply is a line with its seq=N: a gap in the numbers is an outage of N x 0.1 s (fault tests).
run_pingloop() {
    if ! wait_reachable "$PINGLOOP"; then
        say "VIRTNET-PINGLOOP-FAIL $PINGLOOP unreachable for 120 s"
        return
    fi
    say "VIRTNET-PINGLOOP-START $PINGLOOP"
    ping -i 0.1 "$PINGLOOP" 2>&1 | say_lines VIRTNET-PINGLOOP
}

# client:ADDR:SECONDS; ADDR may be IPv6 (it contains colons), so SECONDS is cut off the end.
run_iperf_client() {
    rest=${IPERF#client:}
    secs=${rest##*:}
    peer=${rest%:*}
    if ! wait_reachable "$peer"; then
        say "VIRTNET-IPERF-FAIL $peer unreachable for 120 s"
        return
    fi
    # The peer may answer pings before its iperf3 server listens: retry for ~30 s.
    i=0
    # START, then RETRY per failed attempt: one START and no RETRY is one run from START to the end.
    say "VIRTNET-IPERF-START $peer"
    # -R: the server sends and this client's per-second lines count what arrived here. A sender's
    # lines count what its socket took, which a large send buffer keeps steady through an outage.
    until iperf3 -R -c "$peer" -t "$secs" >/tmp/iperf.out 2>&1; do
        i=$((i + 1))
        if [ $i -ge 30 ]; then
            tail -n 1 /tmp/iperf.out | say_lines VIRTNET-IPERF
            say "VIRTNET-IPERF-FAIL $peer"
            return
        fi
        say "VIRTNET-IPERF-RETRY $i"
        sleep 1
    done
    grep -E 'sender|receiver' /tmp/iperf.out | say_lines VIRTNET-IPERF
    # Each second's throughput: a fault test reads the gap a switch restart leaves in it.
    grep -E ' sec ' /tmp/iperf.out | grep -vE 'sender|receiver' | say_lines VIRTNET-IPERF-INTERVAL
    say "VIRTNET-IPERF-OK $peer"
}

# Rewrite $DIRTY MiB of a tmpfs file in a loop with shifting random data: pages really change
# every pass (QEMU would send zero or unchanged pages cheaply). /mnt/passes counts the passes.
prepare_dirtying() {
    mount -t tmpfs -o size=95% tmpfs /mnt
    dd if=/dev/urandom of=/mnt/src bs=1M count=2 2>/dev/null
    echo 0 >/mnt/passes
    say "VIRTNET-DIRTY mib=$DIRTY"
}

dirty_pass() {
    i=0
    off=$((($1 * 4099) % 1048576))
    while [ $i -lt "$DIRTY" ]; do
        dd if=/mnt/src of=/mnt/dirty bs=1M count=1 seek=$i skip=$off iflag=skip_bytes \
            conv=notrunc 2>/dev/null
        [ -z "$DIRTYPACE" ] || usleep $((1000000 / DIRTYPACE))
        i=$((i + 1))
    done
}

dirty_loop() {
    p=$1
    while :; do
        dirty_pass $p
        p=$((p + 1))
        echo $p >/mnt/passes
    done
}

# Until a line read from the serial console contains VIRTNET-GO (a test types it with virsh console).
wait_for_go() {
    while IFS= read -r line; do
        case $line in *VIRTNET-GO*) return ;; esac
    done </dev/ttyS0
}

# Write a 64 KiB chunk of random data to /dev/vda every second, keep its checksum in memory (which
# migrates with the guest), then read every chunk written so far back from the device itself
# (O_DIRECT: not from the page cache) and compare. VIRTNET-DISK-OK n=N: all N chunks read back right.
run_disk_check() {
    i=0
    : >/tmp/disk.sums
    while :; do
        dd if=/dev/urandom of=/tmp/chunk bs=64k count=1 2>/dev/null
        if ! dd if=/tmp/chunk of=/dev/vda bs=64k seek=$i oflag=direct conv=notrunc,fsync 2>/dev/null; then
            say "VIRTNET-DISK-FAIL write chunk=$i"
        fi
        set -- $(md5sum </tmp/chunk)
        echo "$i $1" >>/tmp/disk.sums
        i=$((i + 1))
        bad=
        while read -r n sum; do
            dd if=/dev/vda of=/tmp/back bs=64k skip=$n count=1 iflag=direct 2>/dev/null
            set -- $(md5sum </tmp/back)
            [ "$1" = "$sum" ] || bad="$bad $n"
        done </tmp/disk.sums
        if [ -z "$bad" ]; then say "VIRTNET-DISK-OK n=$i"; else say "VIRTNET-DISK-BAD n=$i chunks=$bad"; fi
        sleep 1
    done
}

setup_nics

case $IPERF in
    server)
        iperf3 -s -D --logfile /tmp/iperf3.log && say "VIRTNET-IPERF-SERVER up" \
            || say "VIRTNET-IPERF-FAIL server did not start"
        ;;
esac

# Ping and the iperf3 client wait for a peer for up to minutes: run them beside the ticks, so the
# ticks prove the guest is alive meanwhile.
(
    [ -z "$PING" ] || run_ping
    case $IPERF in client:*) run_iperf_client ;; esac
) &

[ -z "$PINGLOOP" ] || run_pingloop &

if [ "${DIRTY:-0}" -gt 0 ] 2>/dev/null; then
    prepare_dirtying
    if [ -n "$DIRTYWAIT" ]; then
        # One pass now, so the memory is there to be copied; the loop only once told to.
        dirty_pass 0
        say "VIRTNET-DIRTY-WAITING for VIRTNET-GO on the console"
        (wait_for_go && say "VIRTNET-DIRTY-GO" && dirty_loop 1) &
    else
        dirty_loop 0 &
    fi
fi

[ -n "$DISK" ] && run_disk_check &

n=0
while :; do
    uptime_s
    if [ -f /mnt/passes ]; then
        read -r passes </mnt/passes
        say "VIRTNET-TICK $n up=$UP passes=$passes"
    else
        say "VIRTNET-TICK $n up=$UP"
    fi
    n=$((n + 1))
    sleep 1
done
