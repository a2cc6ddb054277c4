"""One lab host's Open vSwitch: ovsdb-server and the DPDK ovs-vswitchd, with a netdev bridge.

ovs-vswitchd runs in the host's mount namespace (its hugetlbfs) and in a network namespace of its
own: two netdev datapaths in one network namespace clash on their ovs-netdev/br0 taps. vhost-user
sockets are files, so QEMU reaches them from anywhere. The lab drives OVS with ovs-vsctl, the
independent client; virtnet's own OVS code speaks OVSDB.
"""

from __future__ import annotations

import time
from pathlib import Path

from virtnet.errors import LabError
from virtnet.lab.namespace import nsenter
from virtnet.lab.pki import HostFiles
from virtnet.lab.process import read_pid, run, stop_pid, wait_for_pidfile

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
VSWITCHD = Path("/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk")
BRIDGE = "br0"
POSTCOPY_KEY = "vhost-postcopy-support"


def db_socket(ovs_dir: Path) -> Path:
    return ovs_dir / "db.sock"


def vsctl(ovs_dir: Path, *args: str, wait: bool = False) -> str:
    """ovs-vsctl against this host's database; never blocks forever (host.md)."""
    flags = ["--timeout=20"] + ([] if wait else ["--no-wait"])
    return run(["ovs-vsctl", f"--db=unix:{db_socket(ovs_dir)}", *flags, *args], timeout=30)


OVSDB_TLS_PORT = 6640


def start(
    ovs_dir: Path,
    holder_pid: int,
    netns: str,
    *,
    name: str,
    socket_mem_mib: int,
    tls: tuple[str, HostFiles] | None = None,
    postcopy: bool = False,
) -> tuple[int, int]:
    """Start ovsdb-server and ovs-vswitchd with DPDK, create the netdev bridge; return their PIDs.

    With `tls` (address, files), ovsdb-server also listens on ssl:ADDRESS:6640 for clients with a
    certificate of the lab's CA; the unix socket stays for ovs-vswitchd and the lab's ovs-vsctl.
    `postcopy` sets other_config:vhost-postcopy-support=true before ovs-vswitchd starts: OVS reads
    it once, when it initialises DPDK, and a guest with vhost-user NICs may then move with post-copy.
    """
    ovs_dir.mkdir(parents=True, exist_ok=True)
    db = ovs_dir / "conf.db"
    db.unlink(missing_ok=True)
    run(["ovsdb-tool", "create", str(db), str(SCHEMA)])
    ovsdb = start_ovsdb_server(ovs_dir, tls)
    # As Debian's ovs-ctl does when it starts OVS: the database records its schema and the switch's
    # version, which OVSDB clients (`virtnet hosts`, `switch show`) read. The lab plays that admin.
    vsctl(
        ovs_dir,
        "--",
        "init",
        "--",
        "set",
        "Open_vSwitch",
        ".",
        f"db_version={run(['ovsdb-tool', 'schema-version', str(SCHEMA)]).strip()}",
        f"ovs_version={vswitchd_version()}",
    )
    vsctl(
        ovs_dir,
        "set",
        "Open_vSwitch",
        ".",
        "other_config:dpdk-init=true",
        f"other_config:dpdk-socket-mem={socket_mem_mib}",
        # DPDK grows its memory on demand, and OVS's first mempool asks for ~500 MiB: without a
        # limit the switch would take the guests' hugepages.
        f"other_config:dpdk-socket-limit={socket_mem_mib}",
        f'other_config:dpdk-extra="--no-pci --file-prefix={name}"',
        *([f"other_config:{POSTCOPY_KEY}=true"] if postcopy else []),
    )
    vswitchd = start_vswitchd(ovs_dir, holder_pid, netns)
    vsctl(
        ovs_dir,
        "--may-exist",
        "add-br",
        BRIDGE,
        "--",
        "set",
        "bridge",
        BRIDGE,
        "datapath_type=netdev",
        wait=True,
    )
    return ovsdb, vswitchd


def vswitchd_version() -> str:
    """The lab's ovs-vswitchd's version as ovs-ctl takes it: the last word of its 'Open vSwitch' line."""
    out = run([str(VSWITCHD), "--version"])
    for line in out.splitlines():
        if "Open vSwitch" in line:
            return line.split()[-1]
    raise LabError(f"{VSWITCHD} --version printed no 'Open vSwitch' line: {out.strip()!r}")


def start_ovsdb_server(ovs_dir: Path, tls: tuple[str, HostFiles] | None = None) -> int:
    """ovsdb-server over the database file as it is (a restart keeps its contents); its PID."""
    run(
        [
            "ovsdb-server",
            str(ovs_dir / "conf.db"),
            f"--remote=punix:{db_socket(ovs_dir)}",
            *_tls_options(tls),
            f"--unixctl={ovs_dir / 'ovsdb-server.ctl'}",
            f"--pidfile={ovs_dir / 'ovsdb-server.pid'}",
            f"--log-file={ovs_dir / 'ovsdb-server.log'}",
            "--detach",
        ]
    )
    return wait_for_pidfile(ovs_dir / "ovsdb-server.pid")


def start_vswitchd(ovs_dir: Path, holder_pid: int, netns: str) -> int:
    """ovs-vswitchd with DPDK in the host's namespaces, once DPDK is initialised; its PID."""
    run(
        [
            *nsenter(holder_pid)[:-1],
            f"--net=/run/netns/{netns}",
            "--",
            "env",
            f"OVS_RUNDIR={ovs_dir}",
            str(VSWITCHD),
            f"unix:{db_socket(ovs_dir)}",
            f"--pidfile={ovs_dir / 'ovs-vswitchd.pid'}",
            f"--unixctl={ovs_dir / 'ovs-vswitchd.ctl'}",
            f"--log-file={ovs_dir / 'ovs-vswitchd.log'}",
            "--detach",
        ],
        timeout=60,
    )
    vswitchd = wait_for_pidfile(ovs_dir / "ovs-vswitchd.pid")
    _wait_dpdk_initialized(ovs_dir)
    return vswitchd


def _tls_options(tls: tuple[str, HostFiles] | None) -> list[str]:
    if tls is None:
        return []
    address, files = tls
    return [
        f"--remote=pssl:{OVSDB_TLS_PORT}:{address}",
        f"--private-key={files.key}",
        f"--certificate={files.cert}",
        f"--ca-cert={files.ca}",
    ]


def stop(ovs_dir: Path) -> None:
    stop_pid(read_pid(ovs_dir / "ovs-vswitchd.pid"))
    stop_pid(read_pid(ovs_dir / "ovsdb-server.pid"))


def healthy(ovs_dir: Path) -> bool:
    try:
        return vsctl(ovs_dir, "get", "Open_vSwitch", ".", "dpdk_initialized").strip() == "true"
    except LabError:
        return False


def _wait_dpdk_initialized(ovs_dir: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vsctl(ovs_dir, "get", "Open_vSwitch", ".", "dpdk_initialized").strip() == "true":
            return
        time.sleep(0.1)
    raise LabError(f"DPDK did not initialise within {timeout:g} s; see {ovs_dir / 'ovs-vswitchd.log'}")
