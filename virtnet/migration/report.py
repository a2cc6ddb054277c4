"""The equivalent of QEMU's `info migrate` for one finished migration, kept in the domain's metadata.

The report lives under its own namespace in <metadata>, so `virsh metadata NAME
https://virtnet.dev/xmlns/migration/1.0` reads it without virtnet, and it travels with the domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lxml import etree

from virtnet.virt.migration import JobStats

MIGRATION_NS = "https://virtnet.dev/xmlns/migration/1.0"
MIGRATION_PREFIX = "vnmig"


@dataclass(frozen=True)
class MigrationReport:
    source: str
    destination: str
    policy: str
    reason: str
    dirty_rate_mib_s: float | None
    flags: str  # the VIR_MIGRATE_* names, space-separated
    finished_at: str  # ISO 8601, UTC
    stats_from: str  # "destination", or "last sample" after a post-copy switch
    postcopy_switched: bool
    total_ms: int
    downtime_ms: int | None
    setup_ms: int | None
    transferred_bytes: int
    throughput_mib_s: float
    iterations: int  # QEMU's dirty sync count: memory passes
    normal_pages: int
    zero_pages: int
    page_size: int
    postcopy_requests: int
    throttle_percent: int | None
    wall_ms: int  # what virtnet measured around the whole job, preflight excluded
    # --probe: the longest gap between replies to a peer pinging the guest every 10 ms, and who.
    outage_ms: float | None = None
    outage_lost_run_ms: float | None = None  # the longest run of lost pings, in 10 ms send intervals
    outage_seen_by: str | None = None
    outage_lost: int | None = None  # replies missing over the whole job
    # Steering (steering.py): each escalation with its reason, and the allowed downtime at the end.
    escalations: tuple[str, ...] = ()
    max_downtime_ms: int | None = None

    def to_xml(self) -> str:
        """The element without a namespace: virDomainSetMetadata puts it in MIGRATION_NS."""
        root = etree.Element("migration")
        for name, value in asdict(self).items():
            if isinstance(value, tuple):
                element = etree.SubElement(root, name.replace("_", "-"))
                for item in value:
                    etree.SubElement(element, "step").text = item
            elif value is not None:
                etree.SubElement(root, name.replace("_", "-")).text = _text(value)
        return etree.tostring(root, encoding="unicode")

    @classmethod
    def from_xml(cls, xml: str) -> MigrationReport:
        """Read the element as to_xml wrote it or as libvirt returns it (in MIGRATION_NS)."""
        root = etree.fromstring(xml.encode())
        texts = {etree.QName(child).localname: child.text or "" for child in root}
        values: dict[str, Any] = {}
        for f in fields(cls):
            tag = f.name.replace("_", "-")
            if "tuple" in str(f.type):
                found = [child for child in root if etree.QName(child).localname == tag]
                values[f.name] = tuple(step.text or "" for child in found for step in child)
                continue
            text = texts.get(tag)
            values[f.name] = None if text is None else _parse(text, str(f.type))
        return cls(**values)

    def lines(self) -> list[str]:
        """`info migrate`'s words, plus what virtnet chose and why."""
        mib = 1024 * 1024
        out = [
            f"Migration status: completed ({self.source} -> {self.destination})",
            f"policy: {self.policy} ({self.reason})",
            f"total time: {self.total_ms} ms",
            f"downtime: {_ms(self.downtime_ms)}",
            f"setup: {_ms(self.setup_ms)}",
            f"transferred ram: {self.transferred_bytes / mib:.1f} MiB",
            f"throughput: {self.throughput_mib_s:.1f} MiB/s",
            f"dirty sync count (iterations): {self.iterations}",
            f"normal: {self.normal_pages} pages, duplicate (zero): {self.zero_pages} pages, "
            f"page size: {self.page_size // 1024} KiB",
        ]
        if self.postcopy_switched:
            out.append(f"post-copy: switched, {self.postcopy_requests} page requests")
        if self.throttle_percent:
            out.append(f"auto-converge throttle: {self.throttle_percent}%")
        if self.dirty_rate_mib_s is not None:
            out.append(f"dirty rate before: {self.dirty_rate_mib_s:.0f} MiB/s (page sampling)")
        if self.escalations:
            out.append(f"steering: {len(self.escalations)} step(s)")
            out.extend(f"  {step}" for step in self.escalations)
        else:
            out.append("steering: no step: the passes kept shrinking")
        if self.max_downtime_ms is not None:
            out.append(f"allowed downtime at the end: {self.max_downtime_ms} ms")
        if self.outage_seen_by is not None:
            gap = "no reply at all" if self.outage_ms is None else f"longest gap {self.outage_ms:g} ms"
            if self.outage_lost_run_ms is not None:
                gap += f" ({self.outage_lost_run_ms:g} ms of pings lost in a row)"
            out.append(
                f"network outage seen by {self.outage_seen_by} (ping every 10 ms): {gap} against QEMU's "
                f"downtime {_ms(self.downtime_ms)}; {self.outage_lost} replies missing in all"
            )
        out.append(f"flags: {self.flags}")
        out.append(f"statistics from: {self.stats_from}")
        return out


def stats_fields(stats: JobStats) -> dict[str, Any]:
    """The report's numbers from virDomainGetJobStats fields."""
    elapsed = int(stats.get("time_elapsed", 0))
    transferred = int(stats.get("data_processed") or stats.get("memory_processed") or 0)
    bps = stats.get("memory_bps")
    throughput = bps / 2**20 if bps else (transferred / 2**20) / (elapsed / 1000) if elapsed else 0.0
    return {
        "total_ms": elapsed,
        "downtime_ms": _int_or_none(stats.get("downtime")),
        "setup_ms": _int_or_none(stats.get("setup_time")),
        "transferred_bytes": transferred,
        "throughput_mib_s": round(float(throughput), 1),
        "iterations": int(stats.get("memory_iteration", 0)),
        "normal_pages": int(stats.get("memory_normal", 0)),
        "zero_pages": int(stats.get("memory_constant", 0)),
        "page_size": int(stats.get("memory_page_size", 4096)),
        "postcopy_requests": int(stats.get("memory_postcopy_requests", 0)),
        "throttle_percent": _int_or_none(stats.get("auto_converge_throttle")),
    }


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _ms(value: int | None) -> str:
    return "unknown" if value is None else f"{value} ms"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _parse(text: str, type_name: str) -> Any:
    if "bool" in type_name:
        return text == "yes"
    if "int" in type_name:
        return int(text)
    if "float" in type_name:
        return float(text)
    return text
