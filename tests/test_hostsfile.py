"""The hosts file through the CLI: bad entries exit 2 naming host and field; -H stands for -c/--ovsdb;
`virtnet hosts` lists hosts up and down against libvirt's test driver and a real ovsdb-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import TEST_URI, OvsdbServer
from typer.testing import CliRunner

from virtnet.cli import app
from virtnet.hostcheck.transport import transport_findings

DOWN_URI = "qemu+tcp://127.0.0.254:1/system"  # nothing listens on port 1 of loopback


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def _run(*argv: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(argv))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '[[host]]\nname = "a"\nuri = "test:///default"\nspeed = 10\n',
            ["host 'a'", "field 'speed'", "not a known field"],
        ),
        (
            '[[host]]\nname = "a"\nuri = "test:///default"\n[[host]]\nname = "a"\nuri = "test:///default"\n',
            ["host 'a'", "field 'name'", "given twice"],
        ),
        ('[[host]]\nname = "b"\nuri = "not a uri"\n', ["host 'b'", "field 'uri'", "not a libvirt URI"]),
        (
            '[[host]]\nname = "c"\nuri = "qemu+tls://c/system"\novsdb = "ssl:127.0.0.1:6640"\n'
            '[host.ovsdb_tls]\nkey = "/nonexistent/key.pem"\ncert = "/etc/hostname"\nca = "/etc/hostname"\n',
            ["host 'c'", "field 'ovsdb_tls.key'", "/nonexistent/key.pem does not exist"],
        ),
        (
            '[[host]]\nname = "d"\nuri = "test:///default"\novsdb = "ssl:127.0.0.1:6640"\n',
            ["host 'd'", "field 'ovsdb_tls'", "ssl: remote needs it"],
        ),
        ('[[host]]\nuri = "test:///default"\n', ["host #1", "field 'name'", "is required"]),
        (
            '[[host]]\nname = "e"\nuri = "test:///default"\nlink_mib_s = -5\n',
            ["host 'e'", "field 'link_mib_s'"],
        ),
        (
            '[[host]]\nname = "f"\nuri = "test:///default"\novsdb = "tcp:127.0.0.1:66400"\n',
            ["host 'f'", "field 'ovsdb'", "port 66400 is out of range"],
        ),
    ],
    ids=[
        "unknown field",
        "duplicate",
        "not a uri",
        "missing cert",
        "ssl without tls",
        "no name",
        "speed",
        "ovsdb port",
    ],
)
def test_bad_hosts_file_exits_2_naming_host_and_field(tmp_path: Path, text: str, words: list[str]) -> None:
    path = _write(tmp_path, text)
    code, out, err = _run("--hosts", str(path), "hosts")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert all(word in lines[0] for word in words), lines[0]
    assert str(path) in lines[0]


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[host]]\nname = "a"\nuri = "nope"\n[[host]]\nname = "b"\nuri = "test:///default"\ncolour = 1\n',
    )
    code, _out, err = _run("--hosts", str(path), "-H", "b", "list")
    assert code == 2
    assert [line.split(": ")[3:5] for line in err.splitlines()] == [
        ["host 'a'", "field 'uri'"],
        ["host 'b'", "field 'colour'"],
    ]


def test_dash_h_stands_for_connect(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[[host]]\nname = "t"\nuri = "{TEST_URI}"\n')
    by_name = _run("--hosts", str(path), "-H", "t", "list", "--all", "--json")
    by_uri = _run("-c", TEST_URI, "list", "--all", "--json")
    assert by_name[0] == 0, by_name[2]
    assert json.loads(by_name[1]) == json.loads(by_uri[1])
    assert [d["name"] for d in json.loads(by_name[1])] == ["test"]


def test_dash_h_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, f'[[host]]\nname = "t"\nuri = "{TEST_URI}"\n')
    code, _, err = _run("--hosts", str(path), "-H", "nope", "list")
    assert (code, err.count("\n")) == (2, 1)
    assert "no host named 'nope' (known: t)" in err
    code, _, err = _run("--hosts", str(path), "-H", "t", "-c", TEST_URI, "list")
    assert (code, err.count("\n")) == (2, 1)
    assert "not both" in err
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    code, _, err = _run("-H", "t", "list")
    assert code == 2
    assert str(tmp_path / "empty" / "virtnet" / "hosts.toml") in err


def test_default_hosts_file_under_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "virtnet").mkdir()
    (tmp_path / "virtnet" / "hosts.toml").write_text(f'[[host]]\nname = "t"\nuri = "{TEST_URI}"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("VIRTNET_HOSTS", raising=False)
    code, out, err = _run("-H", "t", "list", "--all")
    assert code == 0, err
    assert "test" in out.split()


def test_fleet_view_up_and_down(tmp_path: Path) -> None:
    ovsdb = OvsdbServer(tmp_path)
    ovsdb.start()
    try:
        ovsdb.vsctl("set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x6", "dpdk_version=DPDK-x")
        ovsdb.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        path = _write(
            tmp_path,
            f'[[host]]\nname = "up"\nuri = "{TEST_URI}"\novsdb = "{ovsdb.remote}"\n'
            'labels = { rack = "r1" }\n'
            f'[[host]]\nname = "down"\nuri = "{DOWN_URI}"\novsdb = "unix:{tmp_path}/none.sock"\n',
        )
        code, out, err = _run("--hosts", str(path), "hosts", "--json", "--timeout", "5")
    finally:
        ovsdb.stop()
    assert code == 0, err
    up, down = json.loads(out)
    assert (up["name"], up["reachable"], down["name"], down["reachable"]) == ("up", True, "down", False)
    # libvirt's test driver: CPUs 0,2,4 online of two cells 0-7 and 8-15, one running domain 'test'
    assert (up["cpus_online"], up["cells"], up["running"]) == ("0,2,4", {"0": "0-7", "1": "8-15"}, ["test"])
    assert up["labels"] == {"rack": "r1"}
    assert up["switch"]["pmd_cpus"] == "1-2"
    assert up["switch"]["bridges"] == {"br0": "netdev"}
    assert "Connection refused" in down["error"]


def test_fleet_view_text_names_why_a_host_is_down(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[[host]]\nname = "down"\nuri = "{DOWN_URI}"\n')
    code, out, _err = _run("--hosts", str(path), "hosts", "--timeout", "5")
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["down", "down"]
    assert "down: down: cannot connect to libvirt at" in out


def test_tcp_uri_is_warned() -> None:
    (finding,) = transport_findings("qemu+tcp://10.0.0.1/system")
    assert finding.status == "warn"
    assert "qemu+tls://10.0.0.1/system" in finding.fix
    assert transport_findings("qemu+tls://10.0.0.1/system") == []
    assert transport_findings("qemu:///system") == []


def _tls_host(tmp_path: Path, name: str, ca_text: str, *, address: str = "127.0.0.1") -> str:
    """A hosts-file entry with its own client files (key, cert, CA) under tmp_path/name."""
    pki = tmp_path / name
    pki.mkdir()
    for file in ("key", "cert"):
        (pki / f"{file}.pem").write_text(f"{file} shared by every host\n")
    (pki / "ca.pem").write_text(ca_text)
    return (
        f'[[host]]\nname = "{name}"\nuri = "{TEST_URI}"\novsdb = "ssl:{address}:6640"\n'
        f'[host.ovsdb_tls]\nkey = "{pki}/key.pem"\ncert = "{pki}/cert.pem"\nca = "{pki}/ca.pem"\n'
    )


def test_hosts_with_different_ovsdb_tls_files_are_refused_in_one_command(tmp_path: Path) -> None:
    """python-ovs holds one TLS configuration per process: the second host's would silently be the first's."""
    path = _write(
        tmp_path,
        _tls_host(tmp_path, "alpha", "CA one\n")
        + _tls_host(tmp_path, "beta", "CA two\n", address="127.0.0.2")
        + _tls_host(tmp_path, "gamma", "CA one\n", address="127.0.0.3"),  # a copy of alpha's files
    )
    for argv in (["hosts"], ["-H", "alpha", "migrate", "test", "--to", "beta"], ["evacuate", "alpha"]):
        code, out, err = _run("--hosts", str(path), *argv)
        assert (code, err.count("\n")) == (2, 1), (argv, out, err)
        assert err.startswith("virtnet: error: hosts 'alpha' and 'beta': field 'ovsdb_tls': different key, ")
        assert "give every host's ovsdb_tls the same client files" in err


def test_hosts_with_the_same_ovsdb_tls_contents_share_one_command(tmp_path: Path) -> None:
    from virtnet.fleet.hostsfile import load_hosts
    from virtnet.fleet.remote import OvsdbTlsConflict, remember_tls
    from virtnet.ovs import credentials

    path = _write(
        tmp_path,
        _tls_host(tmp_path, "alpha", "CA one\n")
        + _tls_host(tmp_path, "gamma", "CA one\n", address="127.0.0.3")
        + _tls_host(tmp_path, "beta", "CA two\n", address="127.0.0.2"),
    )
    alpha, gamma, beta = load_hosts(path)
    remember_tls(alpha)
    remember_tls(gamma)  # other paths, the same bytes
    assert credentials.for_remote(gamma.ovsdb) is not None
    with pytest.raises(OvsdbTlsConflict, match="hosts 'alpha' and 'beta'"):
        remember_tls(beta)
    assert credentials.for_remote(beta.ovsdb) is None  # refused before anything used beta's files
