"""What a hosts-file entry means to the clients that reach its host (libvirt, OVSDB)."""

from __future__ import annotations

from virtnet.errors import InputError
from virtnet.fleet.hostsfile import HostEntry, OvsdbTlsFiles
from virtnet.ovs.credentials import OvsdbTls, remember

# python-ovs keeps one key, certificate and CA per process (Stream.ssl_set_*, read again at every
# connect and reconnect, from any thread): a command that reaches several hosts' ssl: remotes can
# only use one set. The first host whose files this process took, to compare every later one with.
_first: HostEntry | None = None


class OvsdbTlsConflict(InputError):
    """Two hosts of one command want different OVSDB TLS files, and python-ovs holds one set."""


def remember_tls(entry: HostEntry) -> None:
    """Make the entry's OVSDB key, certificate and CA the ones its ssl: remote is opened with.

    Refuses (exit 2, nothing done yet) when an earlier host of this command has other files: they
    would silently be used for this host too (or this host's for the earlier one, on a reconnect).
    """
    global _first
    files = entry.ovsdb_tls
    if files is None:
        return
    if _first is None or _first.name == entry.name:
        _first = entry
    elif _first.ovsdb_tls is not None and not _same_files(_first.ovsdb_tls, files):
        raise OvsdbTlsConflict(
            f"hosts '{_first.name}' and '{entry.name}': field 'ovsdb_tls': different key, certificate "
            "or CA files, and one virtnet command holds one set (python-ovs keeps one TLS configuration "
            "per process); give every host's ovsdb_tls the same client files, with one CA that signed "
            "each ovsdb-server's certificate"
        )
    remember(entry.ovsdb, OvsdbTls(key=files.key, cert=files.cert, ca=files.ca))


def forget_tls() -> None:
    """Start over, as a new process would (for callers that run several commands in one process)."""
    global _first
    _first = None


def _same_files(a: OvsdbTlsFiles, b: OvsdbTlsFiles) -> bool:
    """The same files, or files with the same contents (a copy of the client files per host is fine)."""
    pairs = ((a.key, b.key), (a.cert, b.cert), (a.ca, b.ca))
    if all(x.resolve() == y.resolve() for x, y in pairs):
        return True
    try:
        return all(x.read_bytes() == y.read_bytes() for x, y in pairs)
    except OSError:
        return False  # the loader checked they exist; one that vanished since is not the same
