"""Lab names and addresses are checked before anything starts; each host has a local URI too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virtnet.errors import InputError
from virtnet.lab.lab import Lab, LabHost


@pytest.mark.parametrize("address", ["10.0.0.2", "0.0.0.0", "192.0.2.1", "127.0.0", "::1"])
def test_the_lab_listens_on_loopback_only(tmp_path: Path, address: str) -> None:
    with pytest.raises(InputError, match=r"127\.0\.0\.0/8"):
        Lab(tmp_path, first_address=address)


@pytest.mark.parametrize("prefix", ["", "Lab", "0lab", "lab 1", "a" * 17, "lab/x"])
def test_lab_prefixes_are_names_for_namespaces(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(InputError, match="lab prefix"):
        Lab(tmp_path, prefix=prefix)


def test_a_lab_host_has_a_local_uri_beside_its_tcp_uri() -> None:
    host = LabHost(index=0, name="vnview0", address="127.0.0.30", dir="/var/tmp/lab/vnview0", netns="vnview0")
    assert host.uri == "qemu+tcp://127.0.0.30/system"
    assert host.local_uri == "qemu:///system?socket=/var/tmp/lab/vnview0/sock/libvirt-sock"


def test_tls_is_the_labs_default_and_tcp_an_explicit_opt_in() -> None:
    import inspect

    from typer.testing import CliRunner

    from virtnet.cli import app

    assert inspect.signature(Lab.up).parameters["tls"].default is True
    shown = " ".join(CliRunner().invoke(app, ["lab", "up", "--help"], terminal_width=200).output.split())
    assert "--tls / --tcp TLS between hosts with a throwaway CA; --tcp: plain TCP without auth" in shown
    assert "[default: tls]" in shown


@pytest.mark.parametrize("tls", [True, False])
def test_lab_status_says_how_to_connect(tmp_path: Path, tls: bool) -> None:
    """URIs, the OVSDB remotes, the hosts file and (with TLS) the client files; daemons need not run."""
    from typer.testing import CliRunner

    from virtnet.cli import app

    pki = str(tmp_path / "pki") if tls else ""
    host = {"index": 0, "name": "vnst0", "address": "127.0.0.40", "dir": str(tmp_path / "vnst0")}
    state = {"prefix": "vnst", "hosts": [{**host, "netns": "vnst0", "pki": pki}]}
    (tmp_path / "lab.json").write_text(json.dumps(state))
    text = CliRunner().invoke(app, ["lab", "status", "--dir", str(tmp_path)])
    assert text.exit_code == 0, text.output
    hosts_line = f"hosts file: {tmp_path}/hosts.toml (virtnet --hosts {tmp_path}/hosts.toml hosts; "
    assert hosts_line in text.output
    report = json.loads(CliRunner().invoke(app, ["lab", "status", "--dir", str(tmp_path), "--json"]).output)
    assert report["hosts_file"] == f"{tmp_path}/hosts.toml"
    (row,) = report["hosts"]
    if tls:
        assert row["uri"] == f"qemu+tls://127.0.0.40/system?pkipath={pki}/client"
        assert row["ovsdb_tls"] == "ssl:127.0.0.40:6640"
        assert report["client_pki"] == f"{pki}/client"
        assert f"TLS client files: {pki}/client (cacert.pem, clientcert.pem, clientkey.pem)" in text.output
        assert "(TLS: ssl:127.0.0.40:6640)" in text.output
    else:
        assert row["uri"] == "qemu+tcp://127.0.0.40/system"
        assert (row["ovsdb_tls"], report["client_pki"]) == (None, None)
        assert "TLS client files" not in text.output


def test_a_state_file_from_another_version_still_loads_so_down_can_stop_it(tmp_path: Path) -> None:
    """A lab started by an older or newer virtnet records keys this one does not know."""
    host = {"index": 0, "name": "vnold0", "address": "127.0.0.2", "dir": "/x", "netns": "vnold0"}
    state = {"prefix": "vnold", "hosts": [{**host, "holder_pid": 12, "lan_address": "10.78.2.1/24"}]}
    (tmp_path / "lab.json").write_text(json.dumps({**state, "hugepages_added": 3, "from_the_future": 1}))
    loaded = Lab(tmp_path).load()
    assert loaded is not None
    assert (loaded.hugepages_added, loaded.hosts[0].holder_pid, loaded.hosts[0].lan_addresses) == (3, 12, [])
