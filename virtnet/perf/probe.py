"""The network outage a migrating guest's peers see: ping every 10 ms from a peer, the longest gap.

QEMU's downtime is the time the guest is paused; what a peer sees is longer or not: the last pages,
the switch of the vhost-user backend, and until the switch learns where the guest's MAC went (QEMU
announces it after the switch-over). The probe runs `ping -D` on the peer (a VM through its agent,
or a host side) for the whole job, and reads its timestamped replies afterwards.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass

from virtnet.errors import PathUnavailable, PerfFailed
from virtnet.perf.endpoint import Endpoint, GuestEndpoint, Process
from virtnet.perf.measure import route

INTERVAL_S = 0.01  # the 10 ms; root may ping that fast
MAX_SECONDS = 3600  # ping's own deadline, in case nothing stops it
_REPLY = re.compile(rb"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", re.M)


@dataclass(frozen=True)
class Outage:
    """What the probe saw: the longest gap between two replies, and the replies missing."""

    peer: str
    target: str
    longest_gap_ms: float | None  # None: no reply at all
    # The longest run of lost pings, in send intervals: unlike the wall-clock gap, it does not grow
    # when the peer itself is starved of CPU and sends nothing (a TCG guest during a migration).
    lost_run_ms: float | None
    sent: int  # the highest sequence number seen, an estimate of what was sent
    received: int
    replied_after: bool  # False: the guest stopped answering, and the gap runs to the probe's end


class OutageProbe:
    """Start before the migration, stop after; `peer` pings the migrating guest's NIC `nic_index`."""

    def __init__(self, peer: Endpoint, guest: GuestEndpoint, nic_index: int | None = None) -> None:
        way = route(guest, peer, nic_index)  # the guest's NIC, and the peer's address in its subnet
        if way.nic.is_user:
            raise PathUnavailable(
                f"{guest.label}'s NIC {way.nic.index} is a user NIC, which nothing outside can ping; "
                "name another with --probe-nic"
            )
        self.peer = peer
        self.source = way.server_bind
        self.target = way.client_bind
        self.process: Process | None = None

    def start(self) -> None:
        argv = ["ping", "-D", "-n", "-i", f"{INTERVAL_S:g}", "-W", "1", "-w", str(MAX_SECONDS)]
        self.process = self.peer.start([*argv, "-I", self.source, self.target])

    def stop(self) -> Outage:
        """End ping (SIGINT, so it prints what it has) and read the gaps from its replies."""
        if self.process is None:
            raise PerfFailed("the outage probe was not started")
        stopped_at = time.time()  # ping -D stamps replies with the wall clock, as this is
        self.process.interrupt()
        done = self.process.wait(30)
        return outage(done.stdout, self.peer.label, self.target, stopped_at)


def outage(stdout: bytes, peer: str, target: str, stopped_at: float) -> Outage:
    """The longest gap between replies, or from the last reply to the end when the guest went silent."""
    replies = [(float(stamp), int(seq)) for stamp, seq in _REPLY.findall(stdout)]
    if not replies:
        return Outage(peer, target, None, None, 0, 0, False)
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(replies)]
    trailing = stopped_at - replies[-1][0]
    longest = max(gaps, default=0.0)
    # A reply every 10 ms: silence longer than a second at the end is the guest gone, not the stop.
    silent_at_end = trailing > max(longest, 1.0)
    jump = max((later[1] - earlier[1] for earlier, later in itertools.pairwise(replies)), default=1)
    return Outage(
        peer=peer,
        target=target,
        longest_gap_ms=round((trailing if silent_at_end else longest) * 1000, 1),
        lost_run_ms=None if silent_at_end else round(jump * INTERVAL_S * 1000, 1),
        sent=replies[-1][1],
        received=len(replies),
        replied_after=not silent_at_end,
    )
