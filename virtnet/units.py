"""Sizes and CPU sets: parsed once at the spec's edge, typed everywhere else."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

# Binary units only, as QEMU (`-m 4G`) and libvirt's KiB/MiB/GiB mean them.
_UNITS = {
    "k": KIB,
    "kib": KIB,
    "m": MIB,
    "mib": MIB,
    "g": GIB,
    "gib": GIB,
    "t": TIB,
    "tib": TIB,
    "b": 1,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_CANONICAL = (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB))


def parse_size(text: object) -> int:
    """'4GiB', '4096MiB', '2M' -> bytes. Raises ValueError with the fix in its message."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"{text!r} has no unit; write it as a string with a unit, e.g. '4096MiB' or '4GiB'")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write a whole number and a unit, e.g. '4096MiB' or '4GiB'")
    number, unit = int(match.group(1)), match.group(2).lower()
    if unit in ("kb", "mb", "gb", "tb"):
        raise ValueError(
            f"{text!r} is ambiguous (decimal or binary?); write {match.group(1)}{unit[0].upper()}iB"
        )
    if unit not in _UNITS:
        raise ValueError(f"{text!r} has an unknown unit; use KiB, MiB, GiB or TiB")
    return number * _UNITS[unit]


def format_size(size_bytes: int) -> str:
    """Bytes -> the largest exact binary unit: 4294967296 -> '4GiB'."""
    for name, factor in _CANONICAL:
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{name}"
    return f"{size_bytes}B"


def parse_cpuset(text: object) -> frozenset[int]:
    """libvirt's cpuset syntax, '0-3,^2,8' -> {0, 1, 3, 8}. Raises ValueError with the fix."""
    example = "write CPU numbers and ranges like '0-3,^2,8'"
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not a cpuset; {example}")
    included: set[int] = set()
    excluded: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        target = included
        if part.startswith("^"):
            target, part = excluded, part[1:]
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"{text!r} is not a cpuset ({part!r} is malformed); {example}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"{text!r} has the range {part!r} backwards; write it low-high")
        target.update(range(first, last + 1))
    cpus = frozenset(included - excluded)
    if not cpus:
        raise ValueError(f"{text!r} selects no CPU; {example}")
    return cpus


def format_cpuset(cpus: frozenset[int] | set[int]) -> str:
    """{0, 1, 2, 5} -> '0-2,5' (canonical, so equal sets print alike)."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def cpuset_to_mask(cpus: frozenset[int] | set[int]) -> str:
    """{1, 2} -> '0x6', the hex CPU mask OVS and DPDK take."""
    return hex(sum(1 << cpu for cpu in cpus))


def mask_to_cpuset(mask: str) -> frozenset[int]:
    """'0x6' (or '6') -> {1, 2}. Raises ValueError for text that is not a hex mask."""
    value = int(mask, 16)
    return frozenset(bit for bit in range(value.bit_length()) if value >> bit & 1)


def pages_needed(size: int, page_size: int) -> int:
    """Pages of page_size that hold size bytes, rounded up: how hugepages are counted everywhere."""
    return -(-size // page_size)
