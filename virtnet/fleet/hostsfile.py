"""The hosts file: every hypervisor host virtnet knows by name, and how to reach it.

```toml
[[host]]
name = "alpha"
uri = "qemu+tls://alpha.example/system"
ovsdb = "ssl:alpha.example:6640"
socket_dir = "/var/run/vhost-user"
link_mib_s = 1192
labels = { rack = "r1" }
[host.ovsdb_tls]
key = "/etc/virtnet/pki/key.pem"
cert = "/etc/virtnet/pki/cert.pem"
ca = "/etc/virtnet/pki/ca.pem"
```

An array of tables rather than a table per name: a name given twice is then our error to report
(naming the host and the field) instead of a TOML syntax error about a key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from virtnet import tomlfile
from virtnet.errors import InputError, InputErrors
from virtnet.ovs import remote
from virtnet.record import Field, Invalid, Parse, Problem, Record

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# libvirt URIs are driver[+transport]://[user@][host][:port]/path[?params]
URI_SCHEME = re.compile(r"[a-z][a-z0-9]*(\+[a-z]+)?")


class HostsFileError(InputError):
    """One problem in the hosts file, naming the host and the field."""


def _name(value: object) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name; use letters, digits, '.', '_' or '-'")
    return value


def _uri(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a libvirt URI; use e.g. qemu+tls://HOST/system")
    scheme, sep, _rest = value.partition("://")
    if not sep or not URI_SCHEME.fullmatch(scheme) or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a libvirt URI; use e.g. qemu+tls://HOST/system")
    try:
        urlsplit(value).port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"{value!r} has a bad port; use e.g. qemu+tls://HOST:16514/system") from None
    return value


def _ovsdb(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an OVSDB remote; use {remote.FORMS}")
    wrong = remote.problem(value)
    if wrong:
        raise ValueError(wrong)
    return value


class OvsdbTlsFiles(Record):
    key: Path
    cert: Path
    ca: Path


class HostEntry(Record):
    """One host: how to reach its libvirtd and its ovsdb-server, and what it offers."""

    name: Annotated[str, Parse(_name)]
    uri: Annotated[str, Parse(_uri)]
    ovsdb: Annotated[str, Parse(_ovsdb)] = "unix:/var/run/openvswitch/db.sock"
    ovsdb_tls: OvsdbTlsFiles | None = None
    socket_dir: Path | None = None
    link_mib_s: float | None = Field(default=None, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def uses_plain_tcp(self) -> bool:
        """True when libvirt's URI is tcp: no encryption, and the lab's libvirtd asks no credentials."""
        return urlsplit(self.uri).scheme.endswith("+tcp")


class HostsFileModel(Record):
    host: list[HostEntry] = Field(default_factory=list)


class Hosts:
    """The hosts of one hosts file, by name, in the file's order."""

    def __init__(self, path: Path, entries: list[HostEntry]) -> None:
        self.path = path
        self.entries = entries

    def __iter__(self) -> Any:
        return iter(self.entries)

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def get(self, name: str) -> HostEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        known = ", ".join(self.names()) or "none"
        raise HostsFileError(f"{self.path}: no host named {name!r} (known: {known}); add it or fix the name")


def default_path() -> Path:
    """$XDG_CONFIG_HOME/virtnet/hosts.toml, else ~/.config/virtnet/hosts.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "virtnet" / "hosts.toml"


def load_hosts(path: Path | None = None) -> Hosts:
    """Read and check a hosts file; HostsFileError (exit 2) with one line per problem."""
    path = path or default_path()
    data = tomlfile.read(
        path,
        "the hosts file",
        HostsFileError,
        missing=f"{path}: no hosts file there; write one (README, 'Many hosts') or pass --hosts FILE",
    )
    try:
        model = HostsFileModel.parse(data)
    except Invalid as err:
        raise _errors([_error(path, data, problem) for problem in err.problems]) from None
    problems = _cross_checks(path, model.host)
    if problems:
        raise _errors(problems)
    return Hosts(path, model.host)


def _cross_checks(path: Path, entries: list[HostEntry]) -> list[HostsFileError]:
    problems = []
    seen: set[str] = set()
    for entry in entries:
        where = f"{path}: host {entry.name!r}"
        if entry.name in seen:
            problems.append(
                HostsFileError(f"{where}: field 'name': given twice; give each host its own name")
            )
        seen.add(entry.name)
        if entry.ovsdb.startswith("ssl:") and entry.ovsdb_tls is None:
            problems.append(
                HostsFileError(
                    f"{where}: field 'ovsdb_tls': an ssl: remote needs it; "
                    "add ovsdb_tls = { key = ..., cert = ..., ca = ... }"
                )
            )
        if entry.ovsdb_tls is not None:
            for field in ("key", "cert", "ca"):
                file = getattr(entry.ovsdb_tls, field)
                if not file.is_file():
                    problems.append(
                        HostsFileError(
                            f"{where}: field 'ovsdb_tls.{field}': {file} does not exist; fix the path"
                        )
                    )
    return problems


def _error(path: Path, data: dict[str, Any], problem: Problem) -> HostsFileError:
    loc = problem.loc
    said = f"{problem.problem}; {problem.fix}"
    if len(loc) >= 2 and loc[0] == "host" and isinstance(loc[1], int):
        raw = data.get("host", [])[loc[1]]
        name = raw.get("name") if isinstance(raw, dict) else None
        host = repr(name) if isinstance(name, str) else f"#{loc[1] + 1}"
        field = ".".join(str(part) for part in loc[2:]) or "host"
        return HostsFileError(f"{path}: host {host}: field {field!r}: {said}")
    field = ".".join(str(part) for part in loc)
    return HostsFileError(f"{path}: field {field!r}: {said}")


def _errors(problems: list[HostsFileError]) -> InputError:
    return problems[0] if len(problems) == 1 else InputErrors(problems)
