"""A synchronous connection to ovsdb-server through python-ovs's IDL.

A CLI needs no background thread: every call runs the IDL's state machine until it has what it
waits for, with a deadline. The IDL reconnects by itself; a transaction that meets a reconnect is
retried against the fresh copy of the database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream

from virtnet.errors import InputError, OvsdbError, OvsdbUnreachable
from virtnet.ovs import credentials, fastjson
from virtnet.ovs import remote as remote_check

fastjson.install()

DEFAULT_REMOTE = "unix:/var/run/openvswitch/db.sock"
DATABASE = "Open_vSwitch"
# Only what virtnet reads or writes: the IDL then replicates a small part of the database.
COLUMNS: dict[str, list[str]] = {
    "Open_vSwitch": [
        "bridges",
        "other_config",
        "next_cfg",
        "cur_cfg",
        "dpdk_initialized",
        "dpdk_version",
        "iface_types",
        "ovs_version",
    ],
    "Bridge": ["name", "ports", "datapath_type"],
    "Port": ["name", "interfaces"],
    "Interface": [
        "name",
        "type",
        "options",
        "external_ids",
        "mtu_request",
        "ofport",
        "link_state",
        "status",
        "error",
    ],
}
TIMEOUT_S = 10.0
_POLL_MS = 100  # python-ovs 4.0's idl.wait() alone sometimes never wakes (host.md)
# python-ovs logs nothing until ovs.vlog.Vlog.init() is called: virtnet never calls it.


def default_remote() -> str:
    """$VIRTNET_OVSDB, else the system's ovsdb-server socket."""
    chosen = os.environ.get("VIRTNET_OVSDB")
    if not chosen:
        return DEFAULT_REMOTE
    wrong = remote_check.problem(chosen)
    if wrong:
        raise InputError(f"$VIRTNET_OVSDB: {wrong}")
    return chosen


class Ovsdb:
    """The replicated Open_vSwitch database."""

    def __init__(self, remote: str, *, timeout_s: float = TIMEOUT_S) -> None:
        wrong = remote_check.problem(remote)
        if wrong:
            raise InputError(f"OVSDB remote: {wrong}")
        self.remote = remote
        self.timeout_s = timeout_s
        _use_tls(remote)
        helper = ovs.db.idl.SchemaHelper(schema_json=_narrow(remote, _fetch_schema(remote, timeout_s)))
        for table, columns in COLUMNS.items():
            helper.register_columns(table, columns)
        self.idl = ovs.db.idl.Idl(remote, helper)
        self.sync()

    def close(self) -> None:
        self.idl.close()

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def sync(self) -> None:
        """Bring the replica up to date (after connecting or reconnecting)."""
        self.run_until(lambda: self.idl.has_ever_connected() and self._connected(), "synchronise")
        # One more round so an update in flight lands before anyone reads.
        seqno = self.idl.change_seqno
        self.idl.run()
        if self.idl.change_seqno != seqno:
            self.idl.run()

    def run_until(self, done: Callable[[], bool], what: str, timeout_s: float | None = None) -> None:
        """Run the IDL until `done()`; OvsdbUnreachable naming `what` at the deadline."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            self.idl.run()
            if done():
                return
            if time.monotonic() > deadline:
                raise OvsdbUnreachable(
                    f"ovsdb-server at {self.remote} did not {what} within {timeout_s or self.timeout_s:g} s; "
                    "check that it runs, or pass another remote with --ovsdb"
                )
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(_POLL_MS)
            poller.block()

    def rows(self, table: str) -> Iterator[Any]:
        return iter(list(self.idl.tables[table].rows.values()))

    def root(self) -> Any:
        """The single Open_vSwitch row."""
        return next(self.rows("Open_vSwitch"))

    def _connected(self) -> bool:
        """Connected and monitoring: the replica is a live copy (also after a reconnect)."""
        session = getattr(self.idl, "_session", None)
        return bool(
            session is not None
            and session.is_connected()
            and self.idl.state == self.idl.IDL_S_MONITORING
            and self.idl.tables["Open_vSwitch"].rows
        )


def _use_tls(remote: str) -> None:
    """Give python-ovs the files for an ssl: remote (it keeps one set per process)."""
    if not remote.startswith("ssl:"):
        return
    tls = credentials.for_remote(remote)
    if tls is None:
        raise OvsdbUnreachable(
            f"ovsdb-server at {remote} speaks TLS, and no key, certificate and CA are given for it; "
            "name the host with -H and give its entry an ovsdb_tls table in the hosts file"
        )
    ovs.stream.Stream.ssl_set_private_key_file(str(tls.key))
    ovs.stream.Stream.ssl_set_certificate_file(str(tls.cert))
    ovs.stream.Stream.ssl_set_ca_cert_file(str(tls.ca))


def _fetch_schema(remote: str, timeout_s: float) -> dict[str, Any]:
    """The server's own schema, so virtnet works with whatever OVS version runs there."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), int(timeout_s * 1000))
    if error:
        raise OvsdbUnreachable(_unreachable(remote, os.strerror(error)))
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        error, reply = rpc.transact_block(ovs.jsonrpc.Message.create_request("get_schema", [DATABASE]))
    finally:
        rpc.close()
    if error or reply is None or reply.error:
        reason = os.strerror(error) if error else str(reply.error if reply else "no reply")
        raise OvsdbUnreachable(_unreachable(remote, reason))
    schema: dict[str, Any] = reply.result
    return schema


def _narrow(remote: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The schema cut down to COLUMNS: python-ovs parses every table it is given (a third of the
    time of connecting), though the IDL keeps only the registered ones."""
    tables = schema["tables"]
    missing = [
        f"{table}:{column}"
        for table, columns in COLUMNS.items()
        for column in columns
        if column not in tables.get(table, {}).get("columns", {})
    ]
    if missing:
        raise OvsdbError(
            f"the Open_vSwitch database at {remote} (schema {schema.get('version', '?')}) has no "
            f"{', '.join(missing)}; upgrade Open vSwitch there to a release that has them"
        )
    narrow = {
        name: dict(tables[name], columns={c: tables[name]["columns"][c] for c in columns})
        for name, columns in COLUMNS.items()
    }
    return dict(schema, tables=narrow)


def _unreachable(remote: str, reason: str) -> str:
    return (
        f"cannot reach ovsdb-server at {remote} ({reason}); "
        "check that Open vSwitch runs there, or pass another remote with --ovsdb"
    )
