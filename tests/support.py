"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import libvirt

from virtnet.spec import VMSpec, spec_from_dict
from virtnet.virt import lockrecords
from virtnet.virt.host import Host

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
TEST_URI = "test:///default"


def add_volume(conn: libvirt.virConnect, pool_name: str, name: str, fmt: str = "raw") -> str:
    """Put an image into a test-driver pool (the test driver has no real files)."""
    pool = conn.storagePoolLookupByName(pool_name)
    xml = (
        f"<volume><name>{name}</name><capacity unit='MiB'>1</capacity>"
        f"<target><format type='{fmt}'/></target></volume>"
    )
    return str(pool.createXML(xml, 0).path())


class OvsdbServer:
    """A throwaway ovsdb-server on a unix socket (no ovs-vswitchd): the real database, nothing else."""

    SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "conf.db"
        self.sock = workdir / "db.sock"
        self.remote = f"unix:{self.sock}"
        self.pid: int | None = None

    def start(self, *, create: bool = True) -> None:
        if create:
            self.db.unlink(missing_ok=True)
            subprocess.run(["ovsdb-tool", "create", str(self.db), self.SCHEMA], check=True)
        pidfile = self.workdir / "ovsdb-server.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(
            [
                "ovsdb-server",
                str(self.db),
                f"--remote=punix:{self.sock}",
                f"--unixctl={self.workdir / 'ovsdb-server.ctl'}",
                f"--pidfile={pidfile}",
                f"--log-file={self.workdir / 'ovsdb-server.log'}",
                "--detach",
            ],
            check=True,
        )
        self.pid = int(pidfile.read_text())
        if create:
            self.vsctl("init")

    def stop(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _alive(self.pid):
                time.sleep(0.02)
            self.pid = None

    def vsctl(self, *args: str) -> str:
        """ovs-vsctl, the independent client that checks what virtnet did."""
        done = subprocess.run(
            ["ovs-vsctl", f"--db={self.remote}", "--no-wait", "--timeout=10", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def vhost_vm_spec(**changes: object) -> VMSpec:
    """A 2-vCPU VM on shared 2 MiB hugepages with one 2-queue vhost-user NIC (port vm1-p0)."""
    spec: dict[str, object] = {
        "name": "vm1",
        "cpu": {"count": 2},
        "memory": {"size": "1GiB", "access": "shared", "hugepages": {"page_size": "2MiB"}},
        "nics": [{"type": "vhostuser", "socket": "/run/vhost/vm1.sock", "queues": 2, "port": "vm1-p0"}],
    }
    spec.update(changes)
    return spec_from_dict(spec)


class Records:
    """lockrecords' contract over a dict: create is create-if-absent."""

    def __init__(self) -> None:
        self.by_key: dict[str, lockrecords.LockRecord] = {}
        self.lock = threading.Lock()
        self.n = 0

    def create(self, _host: Host, key: str, description: str) -> str | None:
        with self.lock:
            if key in self.by_key:
                return None
            self.n += 1
            self.by_key[key] = lockrecords.LockRecord(key, f"uuid-{self.n}", description)
            return f"uuid-{self.n}"

    def find(self, _host: Host, key: str) -> lockrecords.LockRecord | None:
        return self.by_key.get(key)

    def remove(self, _host: Host, uuid: str) -> bool:
        with self.lock:
            for key, record in list(self.by_key.items()):
                if record.uuid == uuid:
                    del self.by_key[key]
                    return True
            return False
