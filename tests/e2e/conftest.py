"""End-to-end fixtures: a private lab (libvirtd + OVS-DPDK in namespaces) and real TCG guests.

Everything is checked with the independent clients (virsh, ovs-vsctl, /proc, the guest's console),
never with virtnet's own view of itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import LabClient

from virtnet.lab.debian_image import DebianImage, build_debian_image
from virtnet.lab.lab import Lab

E2E_HOSTS = 2  # two hosts for migration
# Two test runs at once (say, two worktrees) need distinct labs: names and loopback addresses.
E2E_PREFIX = os.environ.get("VIRTNET_E2E_PREFIX", "vnte2e")
E2E_ADDRESS = os.environ.get("VIRTNET_E2E_ADDRESS", "127.0.0.20")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests start daemons and namespaces: run as root (make test does)")
    lab = Lab(tmp_path_factory.mktemp("lab"), prefix=E2E_PREFIX, first_address=E2E_ADDRESS)
    # postcopy: vhost-user guests may move with post-copy (test_migration_steering.py).
    # tls=False, the lab's explicit plain-TCP opt-in: these modules' migrations (policies, steering,
    # post-copy, multifd, bandwidth caps, copy-storage) were tuned on this 2-core machine without
    # TLS's encryption of every stream (a 256 MiB guest moved at ~140 MiB/s over TLS, ~200 over TCP),
    # and test_fleet's host check needs a TCP host to warn about. TLS is proven by test_fleet.py's
    # three-host lab and by the demo; bringing a lab up costs the same either way (~2.5 s, 2 hosts).
    lab.up(hosts=E2E_HOSTS, hugepages_mib=1536, tls=False, postcopy=True)  # test_perf: two 512 MiB guests
    yield lab
    lab.down()


@pytest.fixture(scope="session")
def debian_image() -> DebianImage:
    """The real Debian 12 guest, built from Debian packages once and cached by its inputs."""
    return build_debian_image()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A key pair the tests generate: (private key file, public key line)."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


@pytest.fixture
def lab0(lab: Lab, tmp_path: Path) -> Iterator[LabClient]:
    yield from _client(lab, 0, tmp_path)


@pytest.fixture
def lab1(lab: Lab, tmp_path: Path) -> Iterator[LabClient]:
    yield from _client(lab, 1, tmp_path)


def _client(lab: Lab, index: int, workdir: Path) -> Iterator[LabClient]:
    """A client for one lab host; domains and ports the test left behind are removed afterwards."""
    state = lab.load()
    assert state is not None
    client = LabClient(lab, state.hosts[index], workdir)
    before = set(client.virsh("list", "--all", "--name").stdout.split())
    # The lab's own ports (lan0, the LAN's wire) stay: deleting them would cut the hosts apart.
    ports_before = set(client.vsctl("list-ports", "br0").split())
    yield client
    for name in client.virsh("list", "--all", "--name").stdout.split():
        if name not in before:
            client.virsh("destroy", name, check=False)
            client.virsh("undefine", name, check=False)
    for port in client.vsctl("list-ports", "br0").split():
        if port not in ports_before:
            client.vsctl("del-port", "br0", port)
