"""A real Debian 12 guest in the lab, provisioned from the spec: ssh, the guest agent, addresses.

Checked with independent clients: the system ssh (with its own known_hosts), `virsh
qemu-agent-command`, `virsh domifaddr --source agent`, `virsh vol-list` and `qemu-img info`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from lab_support import LabClient

from virtnet.lab.debian_image import DebianImage

SSH_PORT = 10122  # the walkthrough's "ssh -p 10122 localhost"
READY_S = "900"  # TCG on two shared cores (one busy with OVS's PMD): a first boot takes minutes
WAIT = 960  # seconds the test gives a `virtnet ... --timeout READY_S` command


def plain_ssh(key: Path, known_hosts: Path, *command: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-p", str(SSH_PORT), "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
    argv += ["-o", "ConnectTimeout=20", "tester@127.0.0.1", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_provisioned_debian_guest_ssh_exec_and_reprovisioning(
    lab0: LabClient, debian_image: DebianImage, ssh_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = ssh_key
    spec = lab0.debian_spec("deb-ssh", debian_image, key=public, hostname="cloudy", ssh_port=SSH_PORT)
    defined = lab0.virtnet("define", str(spec))
    assert "instance-id iid-deb-ssh-" in defined.stdout and "(created)" in defined.stdout
    overlay = lab0.workdir / "deb-ssh.qcow2"
    seed = lab0.workdir / "deb-ssh-cidata.iso"
    pool = lab0.virsh("vol-pool", str(seed)).stdout.strip()
    assert seed.name in lab0.virsh("vol-list", pool).stdout

    started = lab0.virtnet("start", "deb-ssh", "--wait", "ssh", "--timeout", READY_S, timeout=WAIT)
    assert "is ready for ssh" in started.stdout and "SSH-2.0-OpenSSH" in started.stdout

    # The system ssh, on its own, logs in with the key the spec gave user 'tester'.
    known = tmp_path / "known_hosts"
    login = plain_ssh(key, known, "hostname")
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "cloudy"
    assert (
        "cloud-init status"
        in lab0.virtnet("wait", "deb-ssh", "--for", "cloud-init", "--timeout", READY_S, timeout=WAIT).stdout
    )
    status = plain_ssh(key, known, "cloud-init", "status", "--long")
    assert status.returncode == 0 and "status: done" in status.stdout, status.stdout + status.stderr

    # virtnet ssh: the same login, with the host key pinned from the guest (equal to what ssh saw).
    via = lab0.virtnet("ssh", "deb-ssh", "-i", str(key), "--", "hostname")
    assert via.stdout.strip() == "cloudy"
    printed = lab0.virtnet("ssh", "deb-ssh", "-i", str(key), "--print").stdout.split()
    pinned = Path(next(a.split("=", 1)[1] for a in printed if a.startswith("UserKnownHostsFile=")))
    seen_by_ssh = {" ".join(line.split()[1:3]) for line in known.read_text().splitlines()}
    pinned_keys = {" ".join(line.split()[1:3]) for line in pinned.read_text().splitlines()}
    assert seen_by_ssh <= pinned_keys

    # exec through the agent: output and exit status are the command's own.
    release = lab0.virtnet("exec", "deb-ssh", "--", "cat", "/etc/os-release")
    assert 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in release.stdout
    assert lab0.virtnet("exec", "deb-ssh", "--", "false", check=False).returncode == 1
    assert lab0.virtnet("exec", "deb-ssh", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    missing = lab0.virtnet("exec", "deb-ssh", "--", "/no/such/program", check=False)
    assert missing.returncode == 127 and "cannot run" in missing.stderr
    assert lab0.agent("deb-ssh", "guest-get-host-name")["host-name"] == "cloudy"
    shown = lab0.virtnet("show", "deb-ssh").stdout
    assert "Debian GNU/Linux 12 (bookworm)" in shown and "Hostname:" in shown

    # New provisioning: a new instance-id, applied by the guest at its next boot.
    old_iid = plain_ssh(key, known, "cat", "/var/lib/cloud/data/instance-id").stdout.strip()
    spec.write_text(spec.read_text().replace('hostname = "cloudy"', 'hostname = "cloudy2"'))
    redefined = lab0.virtnet("define", str(spec))
    assert "(replaced)" in redefined.stdout
    new_iid = redefined.stdout.split("instance-id ")[1].split()[0]
    assert new_iid != old_iid and old_iid.startswith("iid-deb-ssh-")
    lab0.virtnet("stop", "deb-ssh", "--timeout", "170")  # ACPI: systemd powers off cleanly
    lab0.virtnet("start", "deb-ssh", "--wait", "cloud-init", "--timeout", READY_S, timeout=WAIT)
    assert lab0.agent("deb-ssh", "guest-get-host-name")["host-name"] == "cloudy2"
    applied = lab0.agent_exec("deb-ssh", ["cat", "/var/lib/cloud/data/instance-id"])
    assert applied["out-data"].strip() == new_iid

    lab0.virtnet("stop", "deb-ssh", "--force")
    gone = lab0.virtnet("undefine", "deb-ssh")
    assert f"removed cloud-init seed {seed}" in gone.stdout
    volumes = lab0.virsh("vol-list", pool).stdout
    assert seed.name not in volumes and overlay.name in volumes  # the disk stays, as virsh would


def test_two_debian_guests_on_ovs_dpdk_with_static_addresses(
    lab0: LabClient, debian_image: DebianImage, ssh_key: tuple[Path, str]
) -> None:
    _, public = ssh_key
    addresses = {"deb-a": "10.77.9.1/24", "deb-b": "10.77.9.2/24"}
    for name, address in addresses.items():
        spec = lab0.debian_spec(
            name, debian_image, key=public, hostname=name, address=address, memory="512MiB"
        )
        lab0.virtnet("define", str(spec))
        lab0.virtnet("start", name)
    for name in addresses:
        lab0.virtnet("wait", name, "--for", "cloud-init", "--timeout", READY_S, timeout=WAIT)

    # Both overlays sit on the one base image, which stays as it was.
    for name in addresses:
        info = subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", str(lab0.workdir / f"{name}.qcow2")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(info.stdout)["backing-filename"] == str(debian_image.base)

    # They ping each other over vhost-user and OVS-DPDK: one way with virtnet exec, the other
    # through virsh's own agent command.
    ping = lab0.virtnet("exec", "deb-a", "--", "ping", "-c", "3", "-W", "5", "10.77.9.2", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert " 0% packet loss" in ping.stdout
    back = lab0.agent_exec("deb-b", ["ping", "-c", "3", "-W", "5", "10.77.9.1"])
    assert back["exitcode"] == 0, back
    assert lab0.vsctl("get", "Interface", "deb-a-p0", "link_state") == "up"

    # virtnet show lists each NIC's guest address as virsh domifaddr --source agent does.
    for name, address in addresses.items():
        shown = json.loads(lab0.virtnet("show", name, "--json").stdout)
        by_spec = {nic["nic"]: nic for nic in shown["guest"]["nics"]}
        virsh = lab0.virsh("domifaddr", name, "--source", "agent").stdout
        row = next(line.split() for line in virsh.splitlines() if address in line)
        assert address in by_spec[0]["addresses"]
        assert row[0] == by_spec[0]["name"] == "eth0" and row[1] == by_spec[0]["mac"]
        assert re.search(rf"NIC 0 in guest:\s+eth0 {row[1]} {address}", lab0.virtnet("show", name).stdout)
