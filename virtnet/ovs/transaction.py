"""One atomic OVSDB transaction built from command objects, as ovsdbapp composes them.

Commands read the replica and write through the IDL; the transaction commits all of them or none.
A failed commit always raises: there is no status to forget to check.
"""

from __future__ import annotations

import time
from typing import Protocol, TypeVar

import ovs.db.idl
import ovs.poller

from virtnet.errors import OvsdbTransactionFailed, OvsdbUnreachable
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.rows import Rows

MAX_ATTEMPTS = 5  # a commit that races another client or a reconnect is retried on fresh data


class Command(Protocol):
    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        """Add this command's operations to `txn`; raise a virtnet error to abort it all."""


C = TypeVar("C", bound=Command)


class Transaction:
    def __init__(self, db: Ovsdb, *, wait_vswitchd: bool = False) -> None:
        """With wait_vswitchd, commit() returns once ovs-vswitchd has applied the change."""
        self.db = db
        self.wait_vswitchd = wait_vswitchd
        self.commands: list[Command] = []
        self.changed = False

    def add(self, command: C) -> C:
        self.commands.append(command)
        return command

    def commit(self) -> bool:
        """Apply every command atomically; True when the database changed."""
        if not self.commands:
            return False
        for _attempt in range(MAX_ATTEMPTS):
            txn = ovs.db.idl.Transaction(self.db.idl)
            rows = Rows(self.db)
            for command in self.commands:
                try:
                    command.run(self.db, rows, txn)
                except BaseException:
                    txn.abort()
                    raise
            if self.wait_vswitchd:
                self.db.root().increment("next_cfg")
            status = self._commit(txn)
            if status == txn.TRY_AGAIN:
                self.db.sync()
                continue
            if status not in (txn.SUCCESS, txn.UNCHANGED):
                raise OvsdbTransactionFailed(
                    f"ovsdb-server at {self.db.remote} rejected the transaction "
                    f"({txn.status_to_string(status)}: {txn.get_error() or 'no detail'}); nothing was changed"
                )
            self.changed = status == txn.SUCCESS
            if self.changed and self.wait_vswitchd:
                self._wait_applied(txn.get_increment_new_value())
            return self.changed
        raise OvsdbTransactionFailed(
            f"ovsdb-server at {self.db.remote} kept asking to retry after {MAX_ATTEMPTS} attempts; "
            "another client may be changing the same rows"
        )

    def _commit(self, txn: ovs.db.idl.Transaction) -> int:
        deadline = time.monotonic() + self.db.timeout_s
        while True:
            status: int = txn.commit()
            if status != txn.INCOMPLETE:
                return status
            if time.monotonic() > deadline:
                txn.abort()
                raise OvsdbUnreachable(
                    f"ovsdb-server at {self.db.remote} did not answer a transaction within "
                    f"{self.db.timeout_s:g} s; nothing is known to have changed"
                )
            self.db.idl.run()
            poller = ovs.poller.Poller()
            self.db.idl.wait(poller)
            txn.wait(poller)
            poller.timer_wait(100)
            poller.block()

    def _wait_applied(self, next_cfg: int) -> None:
        """ovs-vswitchd bumps cur_cfg to next_cfg once it has applied a change (ovs-vsctl's wait)."""
        self.db.run_until(lambda: self.db.root().cur_cfg >= next_cfg, "see ovs-vswitchd apply the change")
