#!/usr/bin/env bash
# `make demo`: the walkthrough (../shared/reference/walkthrough.md) replayed with virtnet commands on
# a throwaway lab: OVS with DPDK and a netdev bridge, two VMs with hugepage-backed shared memory and
# 2-queue vhost-user NICs, ping between them through OVS-DPDK, then everything torn down again.
# Runs as root on Debian 12; `make demo` installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

VIRTNET=${VIRTNET:-.venv/bin/virtnet}
export VIRTNET_LAB_DIR=/var/tmp/virtnet-lab   # the specs in cli/specs name paths in this lab
HOST_DIR=$VIRTNET_LAB_DIR/virtnet-lab0
URI=qemu+tcp://127.0.0.2/system
DB=unix:$HOST_DIR/ovs/db.sock
VMS=(walkthrough-vm1 walkthrough-vm2)
started=$(date +%s)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
vsctl() { ovs-vsctl --db="$DB" --timeout=20 "$@"; }
console_of() { echo "$HOST_DIR/$1.console.log"; }

teardown() {
    step "Tear down: stop and undefine the VMs, bring the lab down (its switch and ports go with it)"
    for vm in "${VMS[@]}"; do
        "$VIRTNET" -c "$URI" stop "$vm" --force >/dev/null 2>&1 || true
        "$VIRTNET" -c "$URI" undefine "$vm" >/dev/null 2>&1 || true
    done
    "$VIRTNET" lab down
}

step "Lab: libvirtd on $URI and OVS with DPDK, in private namespaces (lab only)"
show "$VIRTNET" lab up --hosts 1
trap teardown EXIT

step "OVS-DPDK is initialised, with the netdev bridge br0 (walkthrough: ovs-simple-start.sh)"
printf 'dpdk_initialized=%s  %s\n' "$(vsctl get Open_vSwitch . dpdk_initialized)" "$(vsctl get Open_vSwitch . dpdk_version)"
show ovs-vsctl --db="$DB" show

step "One dpdkvhostuserclient port per VM (walkthrough: ovs-vsctl add-port br0 vhost-user-N ...)"
for i in 0 1; do
    show ovs-vsctl --db="$DB" --timeout=20 add-port br0 "vhost-user-$i" -- set Interface "vhost-user-$i" \
        type=dpdkvhostuserclient "options:vhost-server-path=$HOST_DIR/vhost/vm$((i + 1)).sock"
done

step "Two VMs: 2 vCPUs (1 socket x 2 cores), 256 MiB on shared 2 MiB hugepages, 2-queue vhost-user NIC"
for vm in "${VMS[@]}"; do
    rm -f "$(console_of "$vm")"
    show "$VIRTNET" -c "$URI" define "cli/specs/$vm.toml"
done
for vm in "${VMS[@]}"; do show "$VIRTNET" -c "$URI" start "$vm"; done
show "$VIRTNET" -c "$URI" list
show "$VIRTNET" -c "$URI" show walkthrough-vm1

step "Each guest pings the other over br0 (walkthrough: Network Profiling); reading their consoles"
for vm in "${VMS[@]}"; do
    log=$(console_of "$vm")
    for _ in $(seq 600); do grep -qE 'VIRTNET-PING-(OK|FAIL)' "$log" 2>/dev/null && break; sleep 0.5; done
    grep -E 'VIRTNET-(BOOTED|NET-UP|PING)' "$log" | sed "s/^/[$vm] /" || true
done

step "The switch's view: each port's link state and vrings (2 queue pairs = 4 vrings)"
for i in 0 1; do
    printf 'vhost-user-%s: link_state=%s num_of_vrings=%s\n' "$i" \
        "$(vsctl get Interface "vhost-user-$i" link_state)" \
        "$(vsctl get Interface "vhost-user-$i" status:num_of_vrings)"
done

step "Summary"
printf '%-16s %-8s %-7s %-12s %-22s %s\n' VM state queues address "ping rtt min/avg/max" result
failed=0
for vm in "${VMS[@]}"; do
    log=$(console_of "$vm")
    state=$("$VIRTNET" -c "$URI" list --all --json | python3 -c "import json,sys; print(next(r['state'] for r in json.load(sys.stdin) if r['name']=='$vm'))")
    netup=$(grep -m1 'VIRTNET-NET-UP' "$log" || true)
    queues=$(sed -n 's/.*queues=\([0-9]*\).*/\1/p' <<<"$netup")
    address=$(awk '{print $3}' <<<"$netup")
    rtt=$(sed -n 's#.*min/avg/max = \([0-9./]*\) ms.*#\1 ms#p' "$log" | head -1)
    if grep -q 'VIRTNET-PING-OK' "$log"; then result=ok; else result=FAILED; failed=1; fi
    printf '%-16s %-8s %-7s %-12s %-22s %s\n' "$vm" "$state" "${queues:-?}" "${address:-?}" "${rtt:-?}" "$result"
done
printf '\nwalkthrough replayed in %s s\n' "$(( $(date +%s) - started ))"
exit $failed
