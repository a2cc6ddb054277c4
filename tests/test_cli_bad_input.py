"""The catalogue of bad input through the CLI: exit 2, one line per problem naming it, nothing left behind.

Every bad spec of tests/test_spec_errors.py (one mistake, and several at once) goes through
`virtnet define` as a TOML file against libvirt's test driver; then options virtnet checks itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest
import tomli_w
from support import TEST_URI
from test_spec_errors import INVALID, MULTI, base
from typer.testing import CliRunner

from virtnet.cli import app

# (case id, spec change, [(field path, words)]) for every spec case, single mistakes as one-item lists
SPEC_CASES = [(name, change, [(path, words)]) for name, change, path, words in INVALID] + MULTI

# (case id, argv, [words each one line must hold]): options virtnet checks itself, several at once
OPTION_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "migrate: four bad options",
        [
            "migrate",
            "vm",
            "qemu+tcp://b/system",
            "--policy",
            "fast",
            "--compress",
            "zstd",
            "--dest-cpus",
            "3-1",
            "--on-timeout",
            "postcopy",
        ],
        ["--policy fast", "--compress zstd", "--dest-cpus", "--on-timeout postcopy: give --timeout"],
    ),
    (
        "migrate: contradictions",
        [
            "migrate",
            "vm",
            "qemu+tcp://b/system",
            "--parallel",
            "2",
            "--compress",
            "xbzrle",
            "--on-timeout",
            "postcopy",
        ],
        ["--on-timeout postcopy: give --timeout", "--parallel with --compress xbzrle"],
    ),
    (
        "host prepare: two bad sizes",
        ["host", "prepare", "--hugepages", "2GB", "--page-size", "x"],
        ["--hugepages: '2GB' is ambiguous", "--page-size: 'x' is not a size"],
    ),
    (
        "switch setup: two bad cpusets",
        ["switch", "setup", "--pmd-cpus", "2-1", "--lcore", "a"],
        ["--pmd-cpus", "--lcore"],
    ),
    (
        "xml: bad options and a bad spec",
        ["xml", "SPEC", "--port-forward", "slirp", "--virt-type", "xen"],
        ["--port-forward: 'slirp' is unknown", "--virt-type: 'xen' is not a virt type", "cpu.count"],
    ),
    (
        "xml --seed: bad option and a bad spec",
        ["xml", "SPEC", "--seed", "--port-forward", "slirp"],
        ["--port-forward: 'slirp' is unknown", "cpu.count"],
    ),
    (
        "define: bad virt type and a bad spec",
        ["define", "SPEC", "--virt-type", "xen"],
        ["--virt-type: 'xen' is not a virt type", "cpu.count"],
    ),
    ("show: --json and --xml", ["show", "vm", "--json", "--xml"], ["--json and --xml: choose one"]),
    ("start: unknown readiness", ["start", "vm", "--wait", "sshd"], ["--wait sshd: choose one of"]),
    ("exec: no command", ["exec", "vm"], ["exec: no command"]),
    ("exec: command without --", ["exec", "vm", "ls"], ["put -- before the guest command"]),
    ("spec file missing", ["xml", "/nonexistent/vm.toml"], ["cannot read the spec"]),
    # OVSDB remotes: python-ovs took each of these and failed later with a misleading errno, or
    # (the port) with a traceback.
    (
        "--ovsdb: not a remote",
        ["--ovsdb", "garbage", "define", "SPEC"],
        ["--ovsdb: 'garbage' is not an OVSDB"],
    ),
    (
        "--ovsdb: port out of range",
        ["--ovsdb", "tcp:127.0.0.1:99999", "switch", "show"],
        ["--ovsdb: 'tcp:127.0.0.1:99999': port 99999 is out of range; use a port from 1 to 65535"],
    ),
    (
        "--ovsdb: not an IPv4 address",
        ["--ovsdb", "tcp:300.1.1.1:6640", "switch", "show"],
        ["300.1.1.1 is not an IPv4 address; write e.g. tcp:192.0.2.10:6640"],
    ),
    (
        "--ovsdb: a listening remote",
        ["--ovsdb", "punix:/run/openvswitch/db.sock", "list"],
        ["is a remote ovsdb-server listens on; a client connects with unix:PATH"],
    ),
    (
        "migrate: bad --dest-ovsdb and policy",
        ["migrate", "vm", "qemu+tcp://b/system", "--policy", "fast", "--dest-ovsdb", "tcp:[zz]:6640"],
        ["--policy fast", "--dest-ovsdb: 'tcp:[zz]:6640': [zz] is not an IPv6 address"],
    ),
    ("spec not toml", ["xml", "NOTTOML"], ["not valid TOML"]),
    (
        "lab up: no hosts, negative hugepages",
        ["lab", "up", "--hosts", "0", "--hugepages-mib", "-1", "--dir", "LABDIR"],
        ["--hosts 0: use 1 to 8 hosts", "--hugepages-mib -1: give 0 or more MiB"],
    ),
    (
        "spec not utf-8",
        ["xml", "LATIN1"],
        ["not valid TOML (byte 0xe9 at offset 11 is not UTF-8 text); save it as UTF-8"],
    ),
    ("hosts file not utf-8", ["--hosts", "LATIN1", "hosts"], ["byte 0xe9 at offset 11 is not UTF-8"]),
]


def state(conn: libvirt.virConnect) -> tuple[list[str], list[str]]:
    """The test driver's domains and volumes: what a refused command must leave as it was."""
    volumes = [vol.path() for pool in conn.listAllStoragePools(0) for vol in pool.listAllVolumes(0)]
    return sorted(dom.name() for dom in conn.listAllDomains(0)), sorted(volumes)


def run(argv: list[str]) -> Any:
    result = CliRunner().invoke(app, ["-c", TEST_URI, *argv])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug
    return result


def refused(result: Any) -> list[str]:
    """Exit 2, nothing on stdout, and only `virtnet: error:` lines on stderr: those lines."""
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert lines and all(line.startswith("virtnet: error: ") for line in lines), lines
    return lines


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_is_refused_with_every_problem(
    change: Callable[[dict[str, Any]], None],
    expected: list[tuple[str, str]],
    tmp_path: Path,
    testdriver: libvirt.virConnect,
) -> None:
    spec = copy.deepcopy(base())
    change(spec)
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(spec))
    before = state(testdriver)
    lines = refused(run(["define", str(path)]))
    if len(expected) > 1:  # a single mistake may bring others with it; several are exactly these
        assert len(lines) == len(expected), lines
    for field, words in expected:
        named = [line for line in lines if f"{path}: {field}: " in line]
        assert named and words.lower() in named[0].lower(), (field, words, lines)
    assert state(testdriver) == before


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_bad_options_are_refused_with_every_problem(
    argv: list[str], words: list[str], tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_text(tomli_w.dumps({**base(), "cpu": {"count": 0}}))
    (tmp_path / "bad.toml").write_text('name = "vm"\n[cpu\n')
    (tmp_path / "latin1.toml").write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))  # an editor's Latin-1
    files = {
        "SPEC": spec,
        "NOTTOML": tmp_path / "bad.toml",
        "LATIN1": tmp_path / "latin1.toml",
        "LABDIR": tmp_path / "lab",
    }
    argv = [str(files[arg]) if arg in files else arg for arg in argv]
    before = state(testdriver)
    lines = refused(run(argv))
    assert len(lines) == len(words), lines
    for line, expected in zip(lines, words, strict=True):
        assert expected.lower() in line.lower(), (expected, line)
    assert state(testdriver) == before
    assert not (tmp_path / "lab").exists()  # a refused `lab up` made nothing


def test_the_catalogue_is_large_enough() -> None:
    assert len(SPEC_CASES) + len(OPTION_CASES) >= 60
    assert sum(len(expected) > 1 for _, _, expected in SPEC_CASES) >= 10


def test_a_bad_virtnet_ovsdb_is_refused_where_a_remote_is_needed(
    tmp_path: Path, testdriver: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$VIRTNET_OVSDB is read when a command needs OVSDB: then it is named like an option."""
    monkeypatch.setenv("VIRTNET_OVSDB", "tcp:localhost")
    spec = tmp_path / "vm.toml"
    spec.write_text(tomli_w.dumps(base()))  # a vhost-user NIC: define makes its OVS port first
    before = state(testdriver)
    (line,) = refused(run(["define", str(spec)]))
    assert line == (
        "virtnet: error: $VIRTNET_OVSDB: 'tcp:localhost' is not an OVSDB remote; "
        "use unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT"
    )
    assert state(testdriver) == before
    assert "test" in run(["list"]).stdout  # a command without OVSDB is not refused for it


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["stop", "test", "--timeout", "-5"], "--timeout"),
        (["switch", "setup", "--socket-mem", "-5"], "--socket-mem"),
        (
            ["migrate", "test", "qemu+tcp://127.0.0.1:1/system", "--link-speed", "0", "--dry-run"],
            "--link-speed",
        ),
        (["screenshot", "test", "x.png", "--screen", "-1"], "--screen"),
    ],
    ids=["stop timeout", "socket-mem", "link speed", "screen"],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(
    argv: list[str], option: str, testdriver: libvirt.virConnect
) -> None:
    """Ranges click checks: its usage error, exit 2, before a connection (the test domain still runs)."""
    result = run(argv)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(f"Error: Invalid value for '{option}': "), result.stderr
    assert testdriver.lookupByName("test").isActive()
