"""The walkthrough's rows and summary table as text, and as JSON for scripts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from virtnet.perf.measure import PathResult
from virtnet.perf.run import PATHS, Matrix


def rate(bps: float) -> str:
    if bps >= 1e9:
        return f"{bps / 1e9:.2f} Gbit/s"
    return f"{bps / 1e6:.1f} Mbit/s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def path_lines(result: PathResult) -> list[str]:
    t, r, o = result.throughput, result.rtt, result.options
    direction = f"{result.dst} -> {result.src} (--reverse)" if o.reverse else f"{result.src} -> {result.dst}"
    lines = [
        f"{direction}: {result.path} over NIC {result.nic} ({result.nic_kind}, guest {result.guest_nic}), "
        f"{result.src_address} -> {result.dst_address}, iperf3 -P {o.streams} -t {o.seconds}",
        f"  iperf3  sender {rate(t.sender_bps)}, receiver {rate(t.receiver_bps)}, "
        f"retransmits {'-' if t.retransmits is None else t.retransmits}",
        f"  ping    {r.received}/{r.transmitted} received, {r.loss_pct:g}% loss, rtt min/avg/max/mdev = "
        f"{_ms(r.min_ms)}/{_ms(r.avg_ms)}/{_ms(r.max_ms)}/{_ms(r.mdev_ms)} ms",
        f"  path    {result.guest_nic} moved {result.nic_bytes / 1e6:.1f} MB, {result.nic_share:.0%} of "
        f"the {t.bytes_received / 1e6:.1f} MB iperf3's receiver got",
    ]
    if result.queues is not None:
        used = sum(1 for q in result.queues if q.packets > 0)
        spread = ", ".join(f"q{q.queue} {q.packets}" for q in result.queues)
        lines.append(f"  queues  {spread} packets ({used} of {len(result.queues)} queues carried traffic)")
    lines += [f"  warning: {w}" for w in result.warnings]
    return lines


def path_json(result: PathResult) -> dict[str, Any]:
    data = asdict(result)
    data["nic_share"] = result.nic_share
    data["warnings"] = result.warnings
    return data


def matrix_lines(matrix: Matrix) -> list[str]:
    """The walkthrough's 'Summary of experiment result', one row per NIC kind, then the ratios."""
    kinds: dict[int, str] = {}
    for cell in matrix.cells:
        kinds.setdefault(cell.nic, cell.nic_kind)
    header = ["Network"] + [f"Iperf ({p})" for p in PATHS] + [f"Ping ms ({p})" for p in PATHS]
    rows = [header]
    for nic, kind in kinds.items():
        results = {c.path: c.result for c in matrix.cells if c.nic == nic}
        iperf = [rate(r.throughput.receiver_bps) if (r := results.get(p)) else "n/a" for p in PATHS]
        ping = [_ms(r.rtt.avg_ms) if (r := results.get(p)) else "n/a" for p in PATHS]
        rows.append([f"NIC {nic} {kind}", *iperf, *ping])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    o = matrix.options
    lines.append(f"(iperf3 -P {o.streams} -t {o.seconds}, receiver's rate; ping -c {o.ping_count}, avg rtt)")
    for cell in matrix.cells:
        if cell.result is None:
            lines.append(f"n/a: NIC {cell.nic} {cell.path}: {cell.reason}")
        else:
            lines += [f"warning: NIC {cell.nic} {cell.path}: {w}" for w in cell.result.warnings]
    for ratio in matrix.ratios:
        better = "higher is better" if ratio.metric == "throughput" else "lower is better"
        lines.append(
            f"{ratio.path} {ratio.metric}: {ratio.kind} / {ratio.versus} = {ratio.value:.2f}x ({better})"
        )
    return lines


def matrix_json(matrix: Matrix) -> dict[str, Any]:
    return {
        "vms": matrix.vms,
        "options": asdict(matrix.options),
        "cells": [
            {
                "nic": c.nic,
                "nic_kind": c.nic_kind,
                "path": c.path,
                "result": path_json(c.result) if c.result else None,
                "reason": c.reason,
            }
            for c in matrix.cells
        ],
        "ratios": [asdict(r) for r in matrix.ratios],
    }
