"""iperf3's and ping's own reports, read into numbers: iperf3's --json and ping's summary lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from virtnet.errors import PerfFailed


@dataclass(frozen=True)
class Throughput:
    """iperf3's end-of-test sums (`end.sum_sent`, `end.sum_received`)."""

    sender_bps: float
    receiver_bps: float
    retransmits: int | None  # None where iperf3 does not count them (the receiver's report, UDP)
    bytes_sent: int
    bytes_received: int
    seconds: float
    streams: int


@dataclass(frozen=True)
class Rtt:
    """ping's summary: packets and loss, and rtt min/avg/max/mdev in ms (None when nothing came back)."""

    transmitted: int
    received: int
    loss_pct: float
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    mdev_ms: float | None


def iperf3_client(stdout: bytes, where: str) -> Throughput:
    """The client's `iperf3 --json` report; PerfFailed with iperf3's own error when the test failed."""
    try:
        report = json.loads(stdout)
    except ValueError:
        text = stdout.decode(errors="replace").strip()[:200]
        raise PerfFailed(f"iperf3 on {where} printed no JSON report: {text or 'nothing'}") from None
    if report.get("error"):
        raise PerfFailed(f"iperf3 on {where}: {report['error']}")
    end = report.get("end") or {}
    sent, received = end.get("sum_sent"), end.get("sum_received")
    if not sent or not received:
        raise PerfFailed(f"iperf3 on {where} reported no totals (end.sum_sent/sum_received missing)")
    return Throughput(
        sender_bps=float(sent["bits_per_second"]),
        receiver_bps=float(received["bits_per_second"]),
        retransmits=sent.get("retransmits"),
        bytes_sent=int(sent["bytes"]),
        bytes_received=int(received["bytes"]),
        seconds=float(sent["seconds"]),
        streams=len(end.get("streams") or []) or 1,
    )


_PACKETS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received.*?([\d.]+)% packet loss")
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def ping_summary(stdout: bytes, where: str) -> Rtt:
    text = stdout.decode(errors="replace")
    packets = _PACKETS.search(text)
    if packets is None:
        raise PerfFailed(f"ping on {where} printed no summary: {text.strip()[-200:] or 'nothing'}")
    rtt = _RTT.search(text)
    values: list[float | None] = [float(v) for v in rtt.groups()] if rtt else [None, None, None, None]
    return Rtt(int(packets[1]), int(packets[2]), float(packets[3]), *values)


_QUEUE_STAT = re.compile(r"^\s*(rx|tx)_queue_(\d+)_packets:\s*(\d+)\s*$", re.M)


def queue_packets(ethtool_s: bytes) -> dict[tuple[str, int], int]:
    """Per-queue packet counters from the guest's `ethtool -S` (virtio_net: rx_queue_N_packets, ...)."""
    return {
        (direction, int(queue)): int(count)
        for direction, queue, count in _QUEUE_STAT.findall(ethtool_s.decode(errors="replace"))
    }


_COMBINED = re.compile(r"Current hardware settings:.*?Combined:\s*(\d+)", re.S)
_COMBINED_MAX = re.compile(r"Pre-set maximums:.*?Combined:\s*(\d+)", re.S)


def combined_channels(ethtool_l: bytes) -> tuple[int, int] | None:
    """(enabled, maximum) queue pairs from `ethtool -l`, or None when it reports no channels."""
    text = ethtool_l.decode(errors="replace")
    current, maximum = _COMBINED.search(text), _COMBINED_MAX.search(text)
    if current is None or maximum is None:
        return None
    return int(current[1]), int(maximum[1])
