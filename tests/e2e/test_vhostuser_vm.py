"""The walkthrough's vhost-user VM on a real libvirtd + OVS-DPDK, checked with virsh, /proc and OVS."""

from __future__ import annotations

import json
from pathlib import Path

from lab_support import LabClient, hugepages_free
from lxml import etree


def qemu_args(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def thread_cpus(pid: int) -> dict[str, str]:
    """Each QEMU thread's allowed CPUs, as taskset would show them."""
    cpus = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        comm = (task / "comm").read_text().strip()
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                cpus[comm] = line.split(":", 1)[1].strip()
    return cpus


def test_vhostuser_vm_runs_with_the_walkthrough_settings(lab0: LabClient) -> None:
    spec = lab0.spec("vhu", ips=("10.77.0.1/24",), pin={"0": "1"}, emulator="0")
    defined = lab0.virtnet("define", str(spec))
    assert "type qemu" in defined.stdout  # the KVM probe found that KVM guests hang here
    assert lab0.vm_ports() == ["vhu-p0"]  # define made the VM's port
    lab0.virtnet("start", "vhu")
    console = lab0.wait_console("vhu", "VIRTNET-NET-UP eth0 10.77.0.1/24")
    assert "VIRTNET-BOOTED" in console

    info = dict(line.split(":", 1) for line in lab0.virsh("dominfo", "vhu").stdout.splitlines())
    info = {key.strip(): value.strip() for key, value in info.items()}
    assert info["State"] == "running" and info["CPU(s)"] == "1" and info["Max memory"] == "262144 KiB"

    xml = etree.fromstring(lab0.virsh("dumpxml", "vhu").stdout.encode())
    assert xml.get("type") == "qemu"
    assert xml.find("memoryBacking/hugepages/page").get("size") == "2048"
    assert xml.find("cpu/numa/cell").get("memAccess") == "shared"
    assert xml.find("cputune/vcpupin").get("cpuset") == "1"
    assert xml.find("devices/interface").get("type") == "vhostuser"

    # What libvirt made of it in QEMU: the walkthrough's -object memory-backend-file,share=on,
    # -mem-prealloc, -numa node,memdev and vhost-user netdev, and taskset's pinning.
    pid = lab0.qemu_pid("vhu")
    args = qemu_args(pid)
    backend = json.loads(next(a for a in args if '"memory-backend-file"' in a))
    assert backend["mem-path"].startswith("/dev/hugepages/")
    assert backend["share"] is True and backend["prealloc"] is True
    assert backend["size"] == 256 * 1024 * 1024
    assert any(a.startswith("node,nodeid=0,cpus=0,memdev=ram-node0") for a in args)
    assert any('"type":"vhost-user"' in a for a in args)
    cpus = thread_cpus(pid)
    assert cpus["CPU 0/TCG"] == "1" and cpus["qemu-system-x86"] == "0"
    guest_ram = Path(f"/proc/{lab0.host.holder_pid}/root{backend['mem-path']}")
    assert guest_ram.parent.is_dir()  # libvirt's per-domain directory in the host's own hugetlbfs
    running_free = hugepages_free()

    # The port, as ovs-vsctl sees it: the VM's identity (os-vif's external_ids), a datapath port
    # number, the link up, and the queue count.
    uuid = lab0.virsh("domuuid", "vhu").stdout.strip()
    mac = xml.find("devices/interface/mac").get("address")
    ids = lab0.vsctl("get", "Interface", "vhu-p0", "external_ids")
    assert f'vm-uuid="{uuid}"' in ids and "vm-name=vhu" in ids and f'attached-mac="{mac}"' in ids
    assert "iface-id=" in ids
    assert int(lab0.vsctl("get", "Interface", "vhu-p0", "ofport")) > 0
    assert lab0.vsctl("get", "Interface", "vhu-p0", "link_state") == "up"
    assert lab0.vsctl("get", "Interface", "vhu-p0", "options:n_rxq") == '"1"'
    assert lab0.vsctl("get", "Interface", "vhu-p0", "options:vhost-server-path") == f'"{lab0.socket("vhu")}"'
    assert lab0.socket("vhu").is_socket()

    lab0.virtnet("stop", "vhu", "--force")
    lab0.virtnet("undefine", "vhu")
    assert "vhu" not in lab0.virsh("list", "--all", "--name").stdout.split()
    assert lab0.vm_ports() == []  # the port went with its VM
    assert hugepages_free() >= running_free + 128  # the 256 MiB of guest RAM came back
    assert not guest_ram.parent.exists() or not any(guest_ram.parent.iterdir())
    assert not lab0.socket("vhu").exists()


def test_two_multiqueue_vms_ping_each_other_over_ovs_dpdk(lab0: LabClient) -> None:
    for name, ip, peer in (("mq0", "10.77.1.1/24", "10.77.1.2"), ("mq1", "10.77.1.2/24", "10.77.1.1")):
        lab0.virtnet("define", str(lab0.spec(name, ips=(ip,), ping=peer, vcpus=2, queues=2)))
        lab0.virtnet("start", name)
    for name in ("mq0", "mq1"):
        console = lab0.wait_console(name, "VIRTNET-PING-", timeout=240)
        assert "queues=2" in console  # the guest itself sees two queue pairs
        assert "VIRTNET-PING-OK" in console, console[-1500:]
    assert lab0.vm_ports() == ["mq0-p0", "mq1-p0"]
    for name in ("mq0", "mq1"):
        port = f"{name}-p0"
        assert lab0.vsctl("get", "Interface", port, "link_state") == "up"
        assert lab0.vsctl("get", "Interface", port, "options:n_rxq") == '"2"'
        # OVS negotiates vhost-user queues with the guest's driver: 2 queue pairs = 4 vrings.
        assert lab0.vsctl("get", "Interface", port, "status:num_of_vrings") == '"4"'
        assert lab0.vsctl("get", "Interface", port, "external_ids:vm-name") == name
