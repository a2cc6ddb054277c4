"""Every kind of bad spec is refused with an error that names the field and says how to fix it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from virtnet.errors import SpecError, SpecFileError
from virtnet.spec import load_spec_file, spec_from_dict
from virtnet.spec.checks import find_warnings


def base() -> dict[str, Any]:
    """A valid vhost-user VM, the walkthrough's shape; each case breaks one thing."""
    return {
        "name": "vm",
        "cpu": {"count": 2, "sockets": 1, "cores": 2, "threads": 1},
        "memory": {"size": "4GiB", "access": "shared", "hugepages": {"page_size": "2MiB"}},
        "nics": [
            {"type": "user", "forwards": [{"host_port": 10122, "guest_port": 22}]},
            {"type": "vhostuser", "socket": "/run/vhost/s0", "queues": 2},
        ],
        "disks": [{"path": "/var/lib/libvirt/images/d.qcow2", "size": "10GiB"}],
    }


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return apply


DELETE = object()

# (case id, change, field path the error must name, words the message must contain)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("missing name", setting("name", DELETE), "name", "required"),
    ("name with slash", setting("name", "a/b"), "name", "not a usable name"),
    ("unknown top-level field", setting("memmory", {}), "memmory", "did you mean 'memory'"),
    ("unknown nested field", setting("cpu.cor", 2), "cpu.cor", "did you mean 'cores'"),
    ("zero vcpus", setting("cpu.count", 0), "cpu.count", "at least 1"),
    ("topology mismatch", setting("cpu.cores", 4), "cpu", "sockets x cores x threads"),
    ("bad virt type", setting("virt_type", "xen"), "virt_type", "'kvm'"),
    (
        "passthrough under tcg",
        lambda s: s.update(virt_type="qemu", cpu={**s["cpu"], "mode": "host-passthrough"}),
        "cpu.mode",
        "needs KVM",
    ),
    ("memory without unit", setting("memory.size", 4096), "memory.size", "no unit"),
    ("memory decimal unit", setting("memory.size", "4GB"), "memory.size", "ambiguous"),
    (
        "odd hugepage size",
        setting("memory.hugepages.page_size", "4MiB"),
        "memory.hugepages.page_size",
        "'2MiB' or '1GiB'",
    ),
    ("memory not multiple of page", setting("memory.size", "4097MiB"), "memory.size", "not a multiple"),
    (
        "memory not multiple of 1G page",
        lambda s: s["memory"].update(size="3584MiB", hugepages={"page_size": "1GiB"}),
        "memory.size",
        "1GiB hugepage",
    ),
    ("vhost-user without shared memory", setting("memory.access", DELETE), "nics[1]", "not shared"),
    ("vhost-user private memory", setting("memory.access", "private"), "nics[1]", "memory.access = 'shared'"),
    ("queues above 256", lambda s: s["nics"][1].update(queues=257), "nics[1].queues", "at most 256"),
    ("zero queues", lambda s: s["nics"][1].update(queues=0), "nics[1].queues", "at least 1"),
    (
        "duplicate macs",
        lambda s: [nic.update(mac="52:54:00:00:00:01") for nic in s["nics"]],
        "nics[1].mac",
        "already the MAC",
    ),
    ("malformed mac", lambda s: s["nics"][0].update(mac="52:54:00:00:01"), "nics[0].mac", "six hex pairs"),
    ("multicast mac", lambda s: s["nics"][0].update(mac="01:00:5e:00:00:01"), "nics[0].mac", "multicast"),
    ("unknown nic type", lambda s: s["nics"][0].update(type="tap"), "nics[0]", "'tap' is unknown"),
    ("nic without type", lambda s: s["nics"][0].pop("type"), "nics[0]", "no type"),
    (
        "relative socket path",
        lambda s: s["nics"][1].update(socket="sock0"),
        "nics[1].socket",
        "absolute path",
    ),
    (
        "typo in vhost-user field",
        lambda s: s["nics"][1].update(quues=4),
        "nics[1].quues",
        "did you mean 'queues'",
    ),
    (
        "same socket twice",
        lambda s: s["nics"].append(dict(s["nics"][1], mac="52:54:00:00:00:09")),
        "nics[2].socket",
        "already used",
    ),
    (
        "same port twice",
        lambda s: s["nics"].append({"type": "vhostuser", "socket": "/run/vhost/s1", "port": "vm-vhu1"}),
        "nics[2].port",
        "already used",
    ),
    (
        "forward port out of range",
        lambda s: s["nics"][0]["forwards"][0].update(host_port=70000),
        "nics[0].forwards[0].host_port",
        "at most 65535",
    ),
    (
        "forwarded twice",
        lambda s: s["nics"][0]["forwards"].append({"host_port": 10122, "guest_port": 80}),
        "nics[0].forwards[1].host_port",
        "already forwarded",
    ),
    ("numa does not add up", lambda s: s.update(numa=[{"cpus": "0-1", "memory": "2GiB"}]), "numa", "add up"),
    (
        "numa cell cpu out of range",
        lambda s: s.update(numa=[{"cpus": "0-2", "memory": "4GiB"}]),
        "numa[0].cpus",
        "do not exist",
    ),
    (
        "numa cells overlap",
        lambda s: s.update(numa=[{"cpus": "0-1", "memory": "2GiB"}, {"cpus": "1", "memory": "2GiB"}]),
        "numa[1].cpus",
        "already in another cell",
    ),
    (
        "numa leaves a vcpu out",
        lambda s: s.update(numa=[{"cpus": "0", "memory": "4GiB"}]),
        "numa",
        "in no cell",
    ),
    (
        "numa cell not multiple of page",
        lambda s: s.update(numa=[{"cpus": "0", "memory": "2049MiB"}, {"cpus": "1", "memory": "2047MiB"}]),
        "numa[0].memory",
        "not a multiple",
    ),
    (
        "malformed vcpu cpuset",
        lambda s: s["cpu"].update(pinning={"vcpus": {"0": "3-x"}}),
        "cpu.pinning.vcpus.0",
        "not a cpuset",
    ),
    (
        "backwards cpuset",
        lambda s: s["cpu"].update(pinning={"emulator": "6-5"}),
        "cpu.pinning.emulator",
        "backwards",
    ),
    (
        "pin a vcpu that does not exist",
        lambda s: s["cpu"].update(pinning={"vcpus": {"2": "3"}}),
        "cpu.pinning.vcpus.2",
        "does not exist",
    ),
    (
        "empty cpuset",
        lambda s: s["cpu"].update(pinning={"emulator": "0,^0"}),
        "cpu.pinning.emulator",
        "selects no CPU",
    ),
    ("same disk twice", lambda s: s["disks"].append(dict(s["disks"][0])), "disks[1].path", "already"),
    (
        "cdrom with size",
        lambda s: s["disks"].append({"path": "/x.iso", "device": "cdrom", "size": "1GiB"}),
        "disks[1].size",
        "cannot be created",
    ),
    (
        "cdrom on virtio",
        lambda s: s["disks"].append({"path": "/x.iso", "device": "cdrom", "bus": "virtio"}),
        "disks[1].bus",
        "sata",
    ),
    ("bad cache mode", lambda s: s["disks"][0].update(cache="writearound"), "disks[0].cache", "writethrough"),
    (
        "initrd without kernel",
        lambda s: s.update(boot={"initrd": "/boot/initrd"}),
        "boot.kernel",
        "need a kernel",
    ),
    ("boot from missing cdrom", lambda s: s.update(boot={"order": ["cdrom"]}), "boot.order", "does not have"),
    ("graphics port too low", lambda s: s.update(graphics={"port": 80}), "graphics.port", "at least 5900"),
    (
        "graphics listen not an address",
        lambda s: s.update(graphics={"listen": "localhost"}),
        "graphics.listen",
        "ipv4",
    ),
    (
        "file console without file",
        lambda s: s.update(console={"type": "file"}),
        "console.log",
        "add console.log",
    ),
    ("uuid malformed", setting("uuid", "not-a-uuid"), "uuid", "uuid"),
    # libvirt's schema wants one non-empty line; virt-manager lists the domain by it.
    ("title on two lines", setting("title", "CentOS\ninstaller"), "title", "one line"),
    ("empty title", setting("title", " "), "title", "one line of 1-200 characters"),
    ("long title", setting("title", "x" * 201), "title", "1-200"),
    ("control character", setting("description", "a\x07b"), "description", "XML cannot hold"),
    ("control in cmdline", setting("boot", {"cmdline": "quiet\x00"}), "boot.cmdline", "XML cannot hold"),
    # Provisioning: what cloud-init would choke on at first boot is refused before anything exists.
    (
        "address without cloud_init",
        lambda s: s["nics"][1].update(address="10.77.9.1/24"),
        "nics[1].address",
        "add a [cloud_init] table",
    ),
    (
        "address is the network's own",
        lambda s: s.update(cloud_init={}) or s["nics"][1].update(address="10.77.9.0/24"),
        "nics[1].address",
        "network address of 10.77.9.0/24",
    ),
    (
        "address is the broadcast",
        lambda s: s.update(cloud_init={}) or s["nics"][1].update(address="10.77.9.255/24"),
        "nics[1].address",
        "broadcast",
    ),
    (
        "address without prefix",
        lambda s: s.update(cloud_init={}) or s["nics"][1].update(address="10.77.9.1"),
        "nics[1].address",
        "with a prefix",
    ),
    (
        "gateway outside the prefix",
        lambda s: (
            s.update(cloud_init={}) or s["nics"][1].update(address="10.77.9.1/24", gateway="10.77.10.1")
        ),
        "nics[1].gateway",
        "outside 10.77.9.0/24",
    ),
    (
        "gateway with dhcp",
        lambda s: s.update(cloud_init={}) or s["nics"][0].update(address="dhcp", gateway="10.0.2.2"),
        "nics[0].gateway",
        "needs a static address",
    ),
    (
        "not an ssh public key",
        setting("cloud_init", {"users": [{"name": "tester", "ssh_authorized_keys": ["hello world"]}]}),
        "cloud_init.users[0].ssh_authorized_keys[0]",
        "not an ssh public key type",
    ),
    (
        "ssh key with damaged data",
        setting(
            "cloud_init", {"users": [{"name": "t", "ssh_authorized_keys": ["ssh-ed25519 AAAAB3NzaC1yc2E="]}]}
        ),
        "cloud_init.users[0].ssh_authorized_keys[0]",
        "damaged or of another type",
    ),
    (
        "a private key pasted",
        setting(
            "cloud_init",
            {"users": [{"name": "t", "ssh_authorized_keys": ["-----BEGIN OPENSSH PRIVATE KEY----- b3Bl"]}]},
        ),
        "cloud_init.users[0].ssh_authorized_keys[0]",
        "private key",
    ),
    (
        "user named default",
        setting("cloud_init", {"users": [{"name": "default"}]}),
        "cloud_init.users[0].name",
        "default_user = true",
    ),
    (
        "user name with space",
        setting("cloud_init", {"users": [{"name": "a b"}]}),
        "cloud_init.users[0].name",
        "not a user name",
    ),
    (
        "plain password",
        setting("cloud_init", {"users": [{"name": "t", "password_hash": "hunter2"}]}),
        "cloud_init.users[0].password_hash",
        "mkpasswd",
    ),
    (
        "hostname with underscore",
        setting("cloud_init", {"hostname": "web_1"}),
        "cloud_init.hostname",
        "not a hostname",
    ),
    (
        "vm name that is no hostname",
        lambda s: s.update(name="vm_1", cloud_init={}),
        "cloud_init.hostname",
        "set cloud_init.hostname",
    ),
    (
        "user_data and users",
        setting("cloud_init", {"user_data": "/etc/ud.yaml", "users": [{"name": "t"}]}),
        "cloud_init.users",
        "put it in the user_data file",
    ),
    (
        "file mode not octal",
        setting("cloud_init", {"write_files": [{"path": "/etc/x", "content": "", "permissions": "rw"}]}),
        "cloud_init.write_files[0].permissions",
        "octal",
    ),
    (
        "backing on a cdrom",
        lambda s: s["disks"].append({"path": "/i.iso", "device": "cdrom", "backing": "/b.qcow2"}),
        "disks[1].backing",
        "no backing",
    ),
    (
        "raw overlay",
        lambda s: s["disks"][0].update(backing="/b.qcow2", format="raw"),
        "disks[0].format",
        "qcow2",
    ),
    (
        "seed on a disk",
        lambda s: s.update(cloud_init={"seed": "/var/lib/libvirt/images/d.qcow2"}),
        "cloud_init.seed",
        "already disks[0]",
    ),
]


def changes(*steps: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        for step in steps:
            step(spec)

    return apply


# Several mistakes in one spec: every one is reported, each with its field path and fix. Field
# (parse) problems and cross-field problems are separate cases: the cross-field rules need a spec
# whose fields all parse, so they run once those are fixed.
# (case id, changes, [(field path, words the message must contain)] -- exactly the problems reported)
MULTI: list[tuple[str, Callable[[dict[str, Any]], None], list[tuple[str, str]]]] = [
    (
        "four fields out of shape",
        changes(
            setting("name", "a/b"),
            setting("cpu.count", 0),
            setting("memory.size", "4GB"),
            lambda s: s["nics"][1].update(queues=300),
        ),
        [
            ("name", "not a usable name"),
            ("cpu.count", "at least 1"),
            ("memory.size", "ambiguous"),
            ("nics[1].queues", "at most 256"),
        ],
    ),
    (
        "typos at two levels and a bad choice",
        changes(setting("memmory", {}), setting("cpu.cor", 2), setting("virt_type", "xen")),
        [
            ("virt_type", "'kvm'"),
            ("cpu.cor", "did you mean 'cores'"),
            ("memmory", "did you mean 'memory'"),
        ],
    ),
    (
        "two broken nics",
        changes(
            lambda s: s["nics"][0].update(type="tap"),
            lambda s: s["nics"][1].update(socket="sock0", quues=4),
        ),
        [
            ("nics[0]", "'tap' is unknown"),
            ("nics[1].socket", "absolute path"),
            ("nics[1].quues", "did you mean 'queues'"),
        ],
    ),
    (
        "disk and graphics",
        changes(
            lambda s: s["disks"][0].update(cache="writearound"),
            setting("graphics", {"port": 80, "listen": "localhost"}),
        ),
        [
            ("disks[0].cache", "writethrough"),
            ("graphics.listen", "ipv4"),
            ("graphics.port", "at least 5900"),
        ],
    ),
    (
        "cloud-init user and hostname",
        setting(
            "cloud_init",
            {"hostname": "web_1", "users": [{"name": "a b", "password_hash": "SECRET-plain"}]},
        ),
        [
            ("cloud_init.hostname", "not a hostname"),
            ("cloud_init.users[0].name", "not a user name"),
            ("cloud_init.users[0].password_hash", "mkpasswd"),
        ],
    ),
    (
        "cpu and memory rules",
        changes(
            setting("cpu.cores", 4),
            setting("memory.size", "4097MiB"),
            lambda s: s["cpu"].update(pinning={"vcpus": {"2": "3"}}),
        ),
        [
            ("cpu", "sockets x cores x threads"),
            ("memory.size", "not a multiple"),
            ("cpu.pinning.vcpus.2", "does not exist"),
        ],
    ),
    (
        "disks and boot",
        changes(
            lambda s: s["disks"].append(dict(s["disks"][0])),
            lambda s: s["disks"].append(
                {"path": "/x.iso", "device": "cdrom", "size": "1GiB", "bus": "virtio"}
            ),
            setting("boot", {"initrd": "/boot/initrd"}),
        ),
        [
            ("disks[1].path", "already"),
            ("disks[2].size", "cannot be created"),
            ("disks[2].bus", "sata"),
            ("boot.kernel", "need a kernel"),
        ],
    ),
    (
        "numa cells",
        lambda s: s.update(numa=[{"cpus": "0-2", "memory": "2GiB"}]),
        [("numa", "add up"), ("numa[0].cpus", "do not exist")],
    ),
    (
        "vhost-user memory and sockets",
        changes(
            setting("memory.access", DELETE),
            lambda s: s["nics"].append(dict(s["nics"][1], mac="52:54:00:00:00:09")),
        ),
        [("nics[1]", "not shared"), ("nics[2].socket", "already used")],
    ),
    (
        "forwards, console and cpu mode",
        changes(
            lambda s: s["nics"][0]["forwards"].append({"host_port": 10122, "guest_port": 80}),
            setting("console", {"type": "file"}),
            lambda s: s.update(virt_type="qemu", cpu={**s["cpu"], "mode": "host-passthrough"}),
        ),
        [
            ("cpu.mode", "needs KVM"),
            ("nics[0].forwards[1].host_port", "already forwarded"),
            ("console.log", "add console.log"),
        ],
    ),
    (
        "guest addresses without cloud-init",
        changes(
            lambda s: s["nics"][0].update(address="dhcp", gateway="10.0.2.2"),
            lambda s: s["nics"][1].update(address="10.77.9.1/24"),
        ),
        [
            ("nics[0].address", "add a [cloud_init] table"),
            ("nics[0].gateway", "needs a static address"),
            ("nics[1].address", "add a [cloud_init] table"),
        ],
    ),
    (
        "cloud-init lists",
        setting(
            "cloud_init",
            {
                "users": [{"name": "t"}, {"name": "t"}],
                "write_files": [{"path": "/etc/x", "content": ""}, {"path": "/etc/x", "content": "y"}],
            },
        ),
        [("cloud_init.users[1].name", "list each user once"), ("cloud_init.write_files[1].path", "once")],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in MULTI], ids=[c[0] for c in MULTI])
def test_every_problem_is_reported(
    change: Callable[[dict[str, Any]], None], expected: list[tuple[str, str]]
) -> None:
    spec = copy.deepcopy(base())
    change(spec)
    with pytest.raises(SpecError) as caught:
        spec_from_dict(spec)
    problems = caught.value.problems
    assert [p.path for p in problems] == [path for path, _ in expected], str(caught.value)
    for problem, (_, words) in zip(problems, expected, strict=True):
        assert words.lower() in str(problem).lower()
        assert problem.fix and "\n" not in str(problem)
    assert str(caught.value).splitlines() == [str(p) for p in problems]
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("password", [31415926, "s3cr\x01et"])
def test_a_bad_password_is_refused_without_showing_it(password: object) -> None:
    spec = {**base(), "graphics": {"type": "vnc", "password": password}}
    with pytest.raises(SpecError) as caught:
        spec_from_dict(spec)
    assert caught.value.path == "graphics.password"
    assert "31415926" not in str(caught.value) and "s3cr" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "path", "words"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_spec_names_field_and_fix(
    change: Callable[[dict[str, Any]], None], path: str, words: str
) -> None:
    spec = copy.deepcopy(base())
    change(spec)
    with pytest.raises(SpecError) as caught:
        spec_from_dict(spec)
    named = [p for p in caught.value.problems if p.path == path]
    assert named, str(caught.value)
    assert words.lower() in str(named[0]).lower()
    assert all("\n" not in str(p) for p in caught.value.problems)


def test_a_password_hash_never_shows_in_errors_or_the_stored_spec() -> None:
    from virtnet.spec.codec import dump_spec

    spec = {**base(), "cloud_init": {"users": [{"name": "t", "password_hash": "$6$salt$SECRETHASH"}]}}
    assert "SECRETHASH" not in dump_spec(spec_from_dict(spec))
    spec["cloud_init"]["users"][0]["password_hash"] = "SECRET-plain"
    with pytest.raises(SpecError) as caught:
        spec_from_dict(spec)
    assert "SECRET" not in str(caught.value)


def test_table_is_large_enough() -> None:
    assert len(INVALID) >= 25


def test_base_spec_is_valid() -> None:
    spec = spec_from_dict(base())
    assert spec.cpu.count == 2
    assert find_warnings(spec) == []


def test_more_queues_than_vcpus_is_a_warning_not_an_error() -> None:
    spec = base()
    spec["nics"][1]["queues"] = 4
    warnings = find_warnings(spec_from_dict(spec))
    assert [w.path for w in warnings] == ["nics[1].queues"]
    assert "ethtool -L" in warnings[0].message


def test_a_file_names_itself_on_every_problem(tmp_path: Any) -> None:
    bad = tmp_path / "vm.toml"
    bad.write_text('name = "vm"\n[cpu]\ncount = 0\n[memory]\nsize = "x"\n')
    with pytest.raises(SpecError) as caught:
        load_spec_file(bad)
    assert [p.path for p in caught.value.problems] == ["cpu.count", "memory.size"]
    assert all(line.startswith(f"{bad}: ") for line in str(caught.value).splitlines())


def test_spec_file_errors_name_the_file(tmp_path: Any) -> None:
    bad = tmp_path / "vm.toml"
    bad.write_text('name = "vm"\n[cpu\ncount = 2\n')
    with pytest.raises(SpecFileError, match=r"vm\.toml: not valid TOML"):
        load_spec_file(bad)
    with pytest.raises(SpecFileError, match="cannot read"):
        load_spec_file(tmp_path / "missing.toml")
    bad.write_text('name = "vm"\n[cpu]\ncount = 2\n[memory]\nsize = "1GiB"\nvideo = "virtio"\n')
    with pytest.raises(SpecError, match=r"vm\.toml: memory\.video: is not a known field"):
        load_spec_file(bad)
