"""The lab: N throwaway libvirt hosts with OVS-DPDK on one machine, and its state file.

`up` records every PID and name it creates in <base>/lab.json before relying on it, so `down` can
stop exactly those, even after a crash. Nothing the system runs itself is touched.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtnet.errors import InputError, LabError, raise_all
from virtnet.lab import hugepages, lan, libvirtd, namespace, pki, switch
from virtnet.lab.guest_image import build_guest_image
from virtnet.lab.hostsfile import write_hosts_file
from virtnet.lab.pki import HostFiles
from virtnet.lab.process import alive, read_pid, run, stop_pid
from virtnet.virt import kvm_probe

if TYPE_CHECKING:
    from virtnet.lab.debian_image import DebianImage

DEFAULT_BASE = Path("/var/tmp/virtnet-lab")
DPDK_SOCKET_MEM_MIB = 256  # tested in host.md: enough for vhost-user ports without a NIC


@dataclass
class LabHost:
    index: int
    name: str
    address: str
    dir: str
    netns: str
    holder_pid: int | None = None
    # br0's addresses on the lab's LAN (lan.py), in the host's namespace: ['10.78.2.1/24', '10.79.2.1/24']
    lan_addresses: list[str] = field(default_factory=list)
    # With TLS: the lab's PKI directory (pki.py); empty for the plain-TCP lab.
    pki: str = ""

    @property
    def uri(self) -> str:
        if self.pki:
            return f"qemu+tls://{self.address}/system?pkipath={self.client_pki}"
        return f"qemu+tcp://{self.address}/system"

    @property
    def client_pki(self) -> Path:
        """The user's certificate, key and the lab's CA, as libvirt's ?pkipath= wants them."""
        return Path(self.pki) / "client"

    @property
    def tls_files(self) -> HostFiles | None:
        return HostFiles(Path(self.pki) / self.name) if self.pki else None

    @property
    def ovsdb_tls_remote(self) -> str | None:
        """ovsdb-server's ssl: remote, for clients on other hosts (the lab's own tools use the socket)."""
        return f"ssl:{self.address}:{switch.OVSDB_TLS_PORT}" if self.pki else None

    @property
    def local_uri(self) -> str:
        """The same libvirtd through its unix socket, for local clients."""
        # virt-manager shows a console listening on loopback only over a URI without transport.
        return f"qemu:///system?socket={libvirtd.socket_dir(Path(self.dir)) / 'libvirt-sock'}"

    @property
    def ovs_dir(self) -> Path:
        return Path(self.dir) / "ovs"

    @property
    def ovsdb(self) -> str:
        return f"unix:{switch.db_socket(self.ovs_dir)}"

    @property
    def vhost_dir(self) -> Path:
        """Where this host's vhost-user sockets live (a plain directory QEMU and OVS both see)."""
        return Path(self.dir) / "vhost"


@dataclass
class LabState:
    prefix: str
    hosts: list[LabHost] = field(default_factory=list)
    hugepages_added: int = 0
    virt_type: str = "qemu"  # what the KVM probe found guests can use here
    virt_type_reason: str = ""
    # The Linux bridge on this machine that wires the hosts' br0 together (lan.py), and its address.
    lan_bridge: str = ""
    lan_addresses: list[str] = field(default_factory=list)
    postcopy: bool = False  # the switches started with other_config:vhost-postcopy-support=true


@dataclass(frozen=True)
class HostHealth:
    host: LabHost
    libvirtd: bool
    ovs: bool


class Lab:
    def __init__(
        self, base: Path = DEFAULT_BASE, *, prefix: str = "virtnet-lab", first_address: str = "127.0.0.2"
    ) -> None:
        self.base = base
        self.prefix = _check_prefix(prefix)
        self.first_address = _check_address(first_address)

    @property
    def state_file(self) -> Path:
        return self.base / "lab.json"

    @property
    def guest_dir(self) -> Path:
        """The test guest at stable paths (vmlinuz, initrd.gz), so specs can name them."""
        return self.base / "guest"

    @property
    def capcache(self) -> Path:
        """QEMU capabilities kept between labs: a fresh libvirtd probes QEMU for ~4 s."""
        return self.base / "qemu-capabilities"

    def load(self) -> LabState | None:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        # Keys this version does not know (a lab started by another virtnet version) are dropped, so
        # `down` can still stop what that lab recorded.
        hosts = [LabHost(**_known(LabHost, host)) for host in data.pop("hosts")]
        return LabState(hosts=hosts, **_known(LabState, data))

    @property
    def pki_dir(self) -> Path:
        return self.base / "pki"

    def client_pki(self, state: LabState) -> Path | None:
        """The user's TLS files (libvirt's ?pkipath=, ovs-vsctl's -p/-c/-C); None for a --tcp lab."""
        return state.hosts[0].client_pki if state.hosts and state.hosts[0].pki else None

    @property
    def hosts_file(self) -> Path:
        """A hosts file naming the lab's hosts (fleet/hostsfile.py), written by `up`."""
        return self.base / "hosts.toml"

    def up(
        self, *, hosts: int = 1, hugepages_mib: int = 1024, tls: bool = True, postcopy: bool = False
    ) -> LabState:
        """Start `hosts` lab hosts and reserve hugepages for their switches and guests.

        With `tls` (the default), a throwaway CA certifies every host, libvirtd listens for TLS only,
        migration streams and OVSDB's ssl: remotes use the same certificates; `tls=False` is plain
        TCP with no authentication, an explicit opt-in (`lab up --tcp`). `postcopy`: their switches
        start with vhost-user post-copy support (see switch.start).
        """
        problems = []
        if not 1 <= hosts <= 8:
            problems.append(InputError(f"--hosts {hosts}: use 1 to 8 hosts"))
        if hugepages_mib < 0:
            problems.append(InputError(f"--hugepages-mib {hugepages_mib}: give 0 or more MiB for the guests"))
        raise_all(problems)
        existing = self.load()
        if existing is not None:
            if all(h.libvirtd and h.ovs for h in self.health(existing)):
                raise LabError(f"the lab in {self.base} is already up; `virtnet lab down` first")
            self.down()  # a crashed lab: clear what is left before starting again
        self.base.mkdir(parents=True, exist_ok=True)
        state = LabState(prefix=self.prefix, postcopy=postcopy)
        self._save(state)
        try:
            pages = (hosts * DPDK_SOCKET_MEM_MIB + hugepages_mib) // hugepages.PAGE_MIB
            state.hugepages_added = hugepages.reserve(pages)
            self._save(state)
            authority = self._create_pki() if tls else None
            for index in range(hosts):
                self._start_host(state, index, authority)
            self._wire_lan(state)
            self._provide_guest(state)
            write_hosts_file(self.hosts_file, state.hosts)
        except BaseException:
            self.down()
            raise
        return state

    def down(self) -> None:
        """Stop everything `up` recorded, by PID, and give the hugepages back."""
        state = self.load()
        if state is None:
            return
        for host in reversed(state.hosts):
            self._stop_host(host)  # the host's end of its LAN wire goes with its namespace
        if state.lan_bridge:
            lan.delete_bridge(state.lan_bridge)
        hugepages.release(state.hugepages_added)
        shutil.rmtree(self.pki_dir, ignore_errors=True)
        self.hosts_file.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)

    def health(self, state: LabState) -> list[HostHealth]:
        return [
            HostHealth(
                host=host,
                libvirtd=alive(read_pid(Path(host.dir) / "libvirtd.pid")),
                ovs=alive(read_pid(host.ovs_dir / "ovs-vswitchd.pid")) and switch.healthy(host.ovs_dir),
            )
            for host in state.hosts
        ]

    def _create_pki(self) -> pki.Authority:
        shutil.rmtree(self.pki_dir, ignore_errors=True)
        self.pki_dir.mkdir(mode=0o700, parents=True)
        authority = pki.create_authority(f"virtnet lab CA ({self.prefix})")
        pki.write_client(authority, self.pki_dir / "client")
        return authority

    def _start_host(self, state: LabState, index: int, authority: pki.Authority | None = None) -> LabHost:
        name = f"{self.prefix}{index}"
        host_dir = self.base / name
        host = LabHost(
            index=index,
            name=name,
            address=str(self.first_address + index),
            dir=str(host_dir),
            netns=name,
            pki=str(self.pki_dir) if authority else "",
        )
        if authority is not None:
            pki.write_host(authority, self.pki_dir / name, name, [host.address])
        state.hosts.append(host)
        self._save(state)
        shutil.rmtree(host_dir, ignore_errors=True)
        host_dir.mkdir(parents=True)
        host.vhost_dir.mkdir(mode=0o750)
        port = 49152 + 64 * index
        libvirtd.prepare(host_dir, host.address, (port, port + 63), self.capcache, tls=host.tls_files)
        run(["ip", "netns", "add", host.netns])
        run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        host.holder_pid = namespace.create(host_dir, hostname=name)
        self._save(state)
        libvirtd.start(host_dir, host.holder_pid, host.uri)
        self._start_switch(state, host)
        return host

    def _start_switch(self, state: LabState, host: LabHost) -> None:
        """ovsdb-server over a fresh database and the DPDK vswitchd, set up as a host's admin would."""
        assert host.holder_pid is not None
        tls_files = host.tls_files
        switch.start(
            host.ovs_dir,
            host.holder_pid,
            host.netns,
            name=host.name,
            socket_mem_mib=DPDK_SOCKET_MEM_MIB,
            tls=(host.address, tls_files) if tls_files else None,
            postcopy=state.postcopy,
        )

    def reinstall_switch(self, name: str) -> None:
        """Host `name`'s OVS as after a reinstall: both daemons stopped (by PID), a fresh database,
        and only what `up` set up there again (DPDK, br0, the LAN uplink); no VM's ports."""
        state = self.load()
        if state is None:
            raise LabError(f"no lab in {self.base}")
        host = next((h for h in state.hosts if h.name == name), None)
        if host is None:
            raise LabError(f"the lab has no host {name!r}")
        switch.stop(host.ovs_dir)
        self._start_switch(state, host)
        if state.lan_bridge:
            self._attach_to_lan(state, host)

    def _wire_lan(self, state: LabState) -> None:
        """The LAN between the hosts' br0 (lan.py), recorded before it is made so `down` removes it."""
        networks = lan.subnets(self.first_address)
        state.lan_bridge = lan.bridge_name(self.prefix)
        state.lan_addresses = lan.bridge_addresses(networks)
        self._save(state)
        lan.create_bridge(state.lan_bridge, state.lan_addresses)
        for host in state.hosts:
            host.lan_addresses = lan.host_addresses(networks, host.index)
            self._save(state)
            self._attach_to_lan(state, host)

    def _attach_to_lan(self, state: LabState, host: LabHost) -> None:
        lan.attach_host(
            bridge=state.lan_bridge,
            veth=lan.ifname(self.prefix, f"h{host.index}"),
            netns=host.netns,
            ovs_dir=host.ovs_dir,
            addresses=host.lan_addresses,
        )

    def _provide_guest(self, state: LabState) -> None:
        """Build (or reuse) the test guest, link it at stable paths, and probe KVM with it once."""
        image = build_guest_image()
        self._link_guest({"vmlinuz": image.kernel, "initrd.gz": image.initrd})
        verdict = kvm_probe.cached_verdict() or kvm_probe.probe(image.kernel)
        state.virt_type = "kvm" if verdict.usable else "qemu"
        state.virt_type_reason = verdict.reason
        self._save(state)

    def provide_debian(self) -> DebianImage:
        """Build (or reuse) the Debian guest image and link it at stable paths, so specs can name them.

        guest/debian-vmlinuz, guest/debian-initrd.img and guest/debian-base.qcow2 (the base image
        every guest's overlay reads; never written to).
        """
        from virtnet.lab.debian_image import build_debian_image

        image = build_debian_image()
        self._link_guest(
            {
                "debian-vmlinuz": image.kernel,
                "debian-initrd.img": image.initrd,
                "debian-base.qcow2": image.base,
            }
        )
        return image

    def _link_guest(self, links: dict[str, Path]) -> None:
        """Point guest/<name> at each image file, replacing what a previous lab linked there."""
        self.guest_dir.mkdir(parents=True, exist_ok=True)
        for name, target in links.items():
            path = self.guest_dir / name
            path.unlink(missing_ok=True)
            path.symlink_to(target)

    def _stop_host(self, host: LabHost) -> None:
        host_dir = Path(host.dir)
        libvirtd.stop(host_dir, host.holder_pid, host.uri, self.capcache)
        switch.stop(host.ovs_dir)
        stop_pid(host.holder_pid)  # the last process in the namespace: its mounts go with it
        if Path(f"/run/netns/{host.netns}").exists():
            run(["ip", "netns", "delete", host.netns])
        _wait_gone(host.holder_pid)
        shutil.rmtree(host_dir, ignore_errors=True)

    def _save(self, state: LabState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", prefix):
        raise InputError(f"lab prefix {prefix!r}: use 1-16 lowercase letters, digits or '-', a letter first")
    return prefix


def _check_address(text: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise InputError(f"lab address {text!r} is not an IPv4 address; use one in 127.0.0.0/8") from None
    if not address.is_loopback:
        raise InputError(
            f"lab address {text}: the lab's libvirtd accepts unauthenticated connections, so it listens "
            "on loopback only; use one in 127.0.0.0/8"
        )
    return address


def _wait_gone(pid: int | None, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
