#!/usr/bin/env bash
# `make demo`: the walkthrough (../shared/reference/walkthrough.md) replayed with virtnet commands on
# a throwaway lab: OVS with DPDK and a netdev bridge, two VMs with hugepage-backed shared memory and
# 2-queue vhost-user NICs, ping between them through OVS-DPDK, a live migration of one of them to a
# second host with its port; then the walkthrough's profiling table (iperf3 and ping per NIC kind and
# path) measured on two real Debian guests, and the network outage a peer sees while one of them
# moves; then everything torn down again.
# Runs as root on Debian 12; `make demo` installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

VIRTNET=${VIRTNET:-.venv/bin/virtnet}
export VIRTNET_LAB_DIR=/var/tmp/virtnet-lab   # the specs in cli/specs name paths in this lab
# The lab talks TLS with a throwaway CA. `lab up` writes a hosts file naming each host's qemu+tls://
# URI, OVSDB ssl: remote and the client certificate, so `virtnet --hosts FILE -H HOST` reaches it;
# virsh and ovs-vsctl use the same client files (the URIs' ?pkipath=, -p/-c/-C).
HOSTS=$VIRTNET_LAB_DIR/hosts.toml
PKI=$VIRTNET_LAB_DIR/pki/client
A=virtnet-lab0
B=virtnet-lab1
HOST_DIR=$VIRTNET_LAB_DIR/$A
URI= URI_B= DB= DB_B=   # from `virtnet lab status --json` once the lab is up
VMS=(walkthrough-vm1 walkthrough-vm2)
DEBS=(walkthrough-deb1 walkthrough-deb2)
started=$(date +%s)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
vsctl_at() { local db=$1; shift; ovs-vsctl --db="$db" -p "$PKI/clientkey.pem" -c "$PKI/clientcert.pem" -C "$PKI/cacert.pem" --timeout=20 "$@"; }
vsctl() { vsctl_at "$DB" "$@"; }
# The VMs' ports on a host's br0: all but lan0, the lab's wire to the other host.
vm_ports() { vsctl_at "$1" list-ports br0 2>/dev/null | { grep -vx lan0 || true; } | tr '\n' ' '; }
lab_field() { "$VIRTNET" lab status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['hosts'][$1]['$2'])"; }
console_of() { echo "$HOST_DIR/$1.console.log"; }

virtnet() { "$VIRTNET" --hosts "$HOSTS" -H "$A" "$@"; }
virtnet_b() { "$VIRTNET" --hosts "$HOSTS" -H "$B" "$@"; }
ticks() { grep -c 'VIRTNET-TICK' "$(console_of "$1")" || true; }

teardown() {
    step "Tear down: stop and undefine the VMs (their OVS ports go with them), bring the lab down"
    for vm in "${VMS[@]}" "${DEBS[@]}"; do
        for host in virtnet virtnet_b; do
            "$host" stop "$vm" --force >/dev/null 2>&1 || true
            "$host" undefine "$vm" 2>/dev/null || true
        done
    done
    printf 'VM ports left on br0: [%s]\n' "$(vm_ports "$DB")"
    "$VIRTNET" lab down
}

step "Lab: two libvirt hosts with OVS-DPDK in private namespaces, over TLS with a throwaway CA (lab only)"
# --debian: the profiling guests at the end are real Debian guests (a progress line while the image
# is built the first time). Hugepages: two 256 MiB test guests and two 512 MiB Debian guests, one
# of which moves while the other stays.
debian=--debian
[ "${VIRTNET_DEMO_PROFILING:-yes}" = no ] && debian=
show "$VIRTNET" lab up --hosts 2 --hugepages-mib 2560 $debian
trap teardown EXIT
URI=$(lab_field 0 uri) URI_B=$(lab_field 1 uri) DB=$(lab_field 0 ovsdb_tls) DB_B=$(lab_field 1 ovsdb_tls)
printf 'host A %s: %s, OVSDB %s\nhost B %s: %s, OVSDB %s\n' "$A" "$URI" "$DB" "$B" "$URI_B" "$DB_B"
echo "(vsctl below: ovs-vsctl --db=$DB -p/-c/-C with the lab's client files in $PKI)"

step "Switch set-up through OVSDB: DPDK on, netdev bridge br0 (walkthrough: ovs-simple-start.sh)"
echo "(lab up already did this on each host, as the hosts' admin would; setup is idempotent: it checks"
echo " DPDK and br0, says nothing changed, and would set what differs)"
show virtnet switch setup --bridge br0
virtnet_b switch setup --bridge br0 >/dev/null  # the second host, for the migration at the end
printf '(ovs-vsctl) dpdk_initialized=%s %s\n' "$(vsctl get Open_vSwitch . dpdk_initialized)" \
    "$(vsctl get Open_vSwitch . dpdk_version)"

step "Two VMs: 2 vCPUs (1 socket x 2 cores), 256 MiB on shared 2 MiB hugepages, 2-queue vhost-user NIC"
echo "(define also creates each VM's dpdkvhostuserclient port: the walkthrough's ovs-vsctl add-port)"
for vm in "${VMS[@]}"; do
    rm -f "$(console_of "$vm")"
    show virtnet define "cli/specs/$vm.toml"
done
for vm in "${VMS[@]}"; do show virtnet start "$vm"; done
show virtnet list
show virtnet show walkthrough-vm1
show vsctl show

step "Each guest pings the other over br0 (walkthrough: Network Profiling); reading their consoles"
for vm in "${VMS[@]}"; do
    log=$(console_of "$vm")
    for _ in $(seq 600); do grep -qE 'VIRTNET-PING-(OK|FAIL)' "$log" 2>/dev/null && break; sleep 0.5; done
    grep -E 'VIRTNET-(BOOTED|NET-UP|PING)' "$log" | sed "s/^/[$vm] /" || true
done

step "The switch's view: each port with its VM, link state and queues (2 queue pairs = 4 vrings)"
show virtnet switch show

step "Summary"
printf '%-16s %-8s %-7s %-12s %-13s %-22s %s\n' VM state queues address "OVS link" "ping rtt min/avg/max" result
failed=0
for vm in "${VMS[@]}"; do
    log=$(console_of "$vm")
    state=$(virtnet list --all --json | python3 -c "import json,sys; print(next(r['state'] for r in json.load(sys.stdin) if r['name']=='$vm'))")
    netup=$(grep -m1 'VIRTNET-NET-UP' "$log" || true)
    queues=$(sed -n 's/.*queues=\([0-9]*\).*/\1/p' <<<"$netup")
    address=$(awk '{print $3}' <<<"$netup")
    rtt=$(sed -n 's#.*min/avg/max = \([0-9./]*\) ms.*#\1 ms#p' "$log" | head -1)
    port="vhost-user-$(( ${vm##*vm} - 1 ))"
    link=$(vsctl get Interface "$port" link_state 2>/dev/null || echo '?')
    if grep -q 'VIRTNET-PING-OK' "$log"; then result=ok; else result=FAILED; failed=1; fi
    printf '%-16s %-8s %-7s %-12s %-13s %-22s %s\n' "$vm" "$state" "${queues:-?}" "${address:-?}" \
        "$port $link" "${rtt:-?}" "$result"
done
step "Live migration of walkthrough-vm2 to the second host, its OVS port first (walkthrough: migrate, info migrate)"
before=$(ticks walkthrough-vm2)
show virtnet migrate walkthrough-vm2 --to "$B" || failed=1  # B's URI, OVSDB and socket dir from the hosts file
show virsh -q -c "$URI_B" list --all
printf '(ovs-vsctl) ports on host A: [%s], on host B: [%s], B link %s\n' \
    "$(vm_ports "$DB")" \
    "$(vm_ports "$DB_B")" \
    "$(vsctl_at "$DB_B" get Interface vhost-user-1 link_state 2>/dev/null || echo '?')"
for _ in $(seq 40); do [ "$(ticks walkthrough-vm2)" -gt $((before + 2)) ] && break; sleep 0.5; done
after=$(ticks walkthrough-vm2)
boots=$(grep -c 'VIRTNET-BOOTED' "$(console_of walkthrough-vm2)" || true)
if [ "$after" -gt $((before + 2)) ] && [ "$boots" -eq 1 ]; then migrated=ok; else migrated=FAILED; failed=1; fi
printf 'console ticks of walkthrough-vm2: %s before, %s after the move, in one boot: %s\n' "$before" "$after" "$migrated"

if [ "${VIRTNET_DEMO_PROFILING:-yes}" = no ]; then
    printf '\nwalkthrough replayed in %s s (profiling on Debian guests left out: VIRTNET_DEMO_PROFILING=no)\n' \
        "$(( $(date +%s) - started ))"
    exit $failed
fi

step "The walkthrough's profiling table, on two Debian guests (walkthrough: Network Profiling, Multi-Queue)"
echo "(each guest: a user NIC, a Linux bridge NIC and a 4-queue vhost-user NIC, each on its own subnet;"
echo " cloud-init gives the addresses and enables the 4 queues; under TCG a first boot takes minutes)"
for vm in "${DEBS[@]}"; do show virtnet define "cli/specs/$vm.toml"; done
for vm in "${DEBS[@]}"; do show virtnet start "$vm"; done
for vm in "${DEBS[@]}"; do show virtnet wait "$vm" --for cloud-init --timeout 1200 || failed=1; done
show virtnet show walkthrough-deb1
show virtnet exec walkthrough-deb1 -- ethtool -l eth2 || failed=1
show virtnet perf --matrix "${DEBS[@]}" --host-netns "$A" --lan-netns "$B" || failed=1

step "A move of walkthrough-deb2 to the second host while walkthrough-deb1 pings it every 10 ms over the LAN"
show virtnet migrate walkthrough-deb2 --to "$B" \
    --probe walkthrough-deb1 --probe-nic 2 --unsafe || failed=1
show virtnet perf walkthrough-deb1 walkthrough-deb2 --nic 2 --dst-connect "$URI_B" --seconds 5 || failed=1

printf '\nwalkthrough replayed in %s s\n' "$(( $(date +%s) - started ))"
exit $failed
