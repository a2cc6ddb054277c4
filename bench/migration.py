"""Live migration of a busy guest: virtnet migrate (policy auto) vs virsh migrate with default flags.

On a lab of its own (two libvirt hosts on 127.0.0.50 and .51, ``virtnet.lab``) this boots the
issue's workload: a 1 GiB guest, 1 vCPU, no hugepages, no NIC, the lab's test kernel and initrd,
rewriting 256 MiB of its memory in a loop (``guest_cmdline(dirty_mib=256)``). Once the loop has run
once, it migrates that guest back and forth between the two hosts, ``--runs`` times per tool,
alternating which tool goes first in each round:

  (a) ``virtnet -c SRC migrate busy DEST --bandwidth 100 --json``: policy auto, i.e. virtnet measures
      the dirty rate for 1 s and chooses pre-copy, auto-converge or post-copy. Figures from its
      JSON report (the destination's completed-job statistics).
  (b) ``virsh -c SRC migrate --live --p2p --persistent --undefinesource --bandwidth 100 busy DEST``,
      virsh's default flags otherwise. After ``--virsh-patience`` seconds without an exit, it is
      stopped with ``virsh domjobabort`` (converged = exit status 0). Figures from
      ``virsh -c DEST domjobinfo --completed``.

Each migration goes from wherever the guest runs (``virsh list --name`` on both hosts) to the other
host. After each one the guest must still be counting on its serial console, in the same boot, and
must finish one more pass of its dirtying loop, so every migration starts from the same state.

Prints per run: total time, downtime, transferred MiB, converged, the wall-clock time around the
whole command (virtnet's includes its pre-flight checks and its 1 s dirty-rate measurement; an
aborted virsh's includes the abort) and virtnet's chosen policy; then medians per tool over the
converged runs, how often a tool did not converge, and the ratios virsh/virtnet over the rounds where
both converged.

Needs root (the lab starts daemons and namespaces) and takes several minutes. From the repository root:

    .venv/bin/python bench/migration.py [--runs 3] [--bandwidth 100] [--virsh-patience 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import tomli_w

from virtnet.lab.guest_image import guest_cmdline
from virtnet.lab.lab import Lab, LabHost

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LAB_PREFIX = "vnbench"
LAB_ADDRESS = "127.0.0.50"  # .50 and .51: other labs on this machine use .2, .20/.21, .30, .40/.41, .90
NAME = "busy"
MEMORY = "1GiB"
DIRTY_MIB = 256

VIRTNET = "virtnet"
VIRSH = "virsh"
TOOLS = (VIRTNET, VIRSH)

COMMAND_TIMEOUT_S = 60  # virsh list, domjobinfo, define, start ...
VIRTNET_TIMEOUT_S = 600  # a whole virtnet migrate
ABORT_TIMEOUT_S = 120  # virsh migrate winding down after domjobabort
BOOT_TIMEOUT_S = 180  # TCG boot plus the first 256 MiB pass
SETTLE_TIMEOUT_S = 180  # after a migration: ticks going on and one more dirtying pass
MIB = 1024 * 1024

TICK = re.compile(r"VIRTNET-TICK (\d+) up=\S+(?: passes=(\d+))?")


class BenchError(RuntimeError):
    """Something other than the migration under test failed: the benchmark stops."""


# --- Commands --------------------------------------------------------------------------------------


def run(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """Run argv; its stdout, or BenchError with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def virsh(uri: str, *args: str) -> str:
    return run(["virsh", "-q", "-c", uri, *args])


def virtnet_cli(uri: str, *args: str) -> list[str]:
    return [str(PYTHON), "-m", "virtnet", "-c", uri, *args]


def running_on(host: LabHost) -> bool:
    return NAME in virsh(host.uri, "list", "--name").split()


def locate(hosts: Sequence[LabHost], timeout: float = 30.0) -> LabHost:
    """The one host the guest runs on (a migration's other half may take a moment to go)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [host for host in hosts if running_on(host)]
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            where = ", ".join(host.name for host in found) or "no host"
            raise BenchError(f"guest {NAME!r} runs on {where}, expected exactly one")
        time.sleep(0.5)


# --- The guest -------------------------------------------------------------------------------------


def write_spec(lab: Lab, workdir: Path, console_log: Path) -> Path:
    """The issue's workload, as tests/e2e/lab_support.py's LabClient.spec writes a spec."""
    spec: dict[str, Any] = {
        "name": NAME,
        "cpu": {"count": 1, "sockets": 1, "cores": 1, "threads": 1},
        "memory": {"size": MEMORY},
        "boot": {
            "kernel": str(lab.guest_dir / "vmlinuz"),
            "initrd": str(lab.guest_dir / "initrd.gz"),
            "cmdline": guest_cmdline(dirty_mib=DIRTY_MIB),
        },
        "console": {"type": "pty", "log": str(console_log)},
    }
    path = workdir / f"{NAME}.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


@dataclass(frozen=True)
class Console:
    """What the guest's serial console says: boots, its last tick and its dirtying passes."""

    boots: int
    tick: int
    passes: int

    @classmethod
    def read(cls, log: Path) -> Console:
        text = log.read_text(errors="replace") if log.exists() else ""
        ticks = TICK.findall(text)
        tick, passes = ticks[-1] if ticks else ("-1", "")
        return cls(text.count("VIRTNET-BOOTED"), int(tick), int(passes or 0))


def wait_console(log: Path, ready: Callable[[Console], bool], what: str, timeout: float) -> Console:
    deadline = time.monotonic() + timeout
    while True:
        console = Console.read(log)
        if ready(console):
            return console
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else "(no console log)"
            raise BenchError(f"{what}: not within {timeout:g} s; console ends:\n{tail}")
        time.sleep(0.25)


def settle(log: Path, before: Console) -> Console:
    """The guest still counting in the same boot, and one more dirtying pass done."""
    if (now := Console.read(log)).boots != 1:
        raise BenchError(f"the guest booted {now.boots} times: a migration lost it")
    return wait_console(
        log,
        lambda c: c.tick >= before.tick + 2 and c.passes > before.passes,
        "the guest counting and dirtying after the migration",
        SETTLE_TIMEOUT_S,
    )


# --- One migration ---------------------------------------------------------------------------------


@dataclass
class Result:
    round: int
    tool: str
    source: str
    dest: str
    converged: bool
    wall_s: float
    total_ms: float | None = None
    downtime_ms: float | None = None
    transferred_bytes: float | None = None
    policy: str | None = None
    note: str = ""


def migrate_virtnet(src: LabHost, dst: LabHost, bandwidth: int) -> Result:
    argv = virtnet_cli(src.uri, "migrate", NAME, dst.uri, "--bandwidth", str(bandwidth), "--json")
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=VIRTNET_TIMEOUT_S, check=False)
    wall_s = time.perf_counter() - started
    result = Result(0, VIRTNET, src.name, dst.name, converged=False, wall_s=wall_s)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        result.note = f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"
        return result
    report = json.loads(done.stdout)["report"]
    result.converged = True
    result.total_ms = report["total_ms"]
    result.downtime_ms = report["downtime_ms"]
    result.transferred_bytes = report["transferred_bytes"]
    result.policy = report["policy"]
    notes = []
    if report.get("postcopy_switched"):
        notes.append("post-copy switched")
    if report.get("throttle_percent"):
        notes.append(f"throttled {report['throttle_percent']}%")
    if report.get("stats_from") != "destination":
        # After a post-copy switch the destination keeps no job statistics: the figures are QEMU's
        # last sample, taken before the end; virtnet's own wall time around the job says how long it took.
        notes.append(f"figures from the last sample (*), job wall {report['wall_ms']} ms")
    result.note = ", ".join(notes)
    return result


def migrate_virsh(src: LabHost, dst: LabHost, bandwidth: int, patience: float) -> Result:
    argv = [
        "virsh", "-c", src.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
        "--bandwidth", str(bandwidth), NAME, dst.uri,
    ]  # fmt: skip
    started = time.perf_counter()
    aborted = False
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _, err = proc.communicate(timeout=patience)
        except subprocess.TimeoutExpired:
            aborted = True
            # The job may finish just now; then domjobabort fails and virsh exits 0 all the same.
            subprocess.run(
                ["virsh", "-q", "-c", src.uri, "domjobabort", NAME],
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            _, err = proc.communicate(timeout=ABORT_TIMEOUT_S)
    wall_s = time.perf_counter() - started
    result = Result(0, VIRSH, src.name, dst.name, converged=proc.returncode == 0, wall_s=wall_s)
    if not result.converged:
        lines = err.strip().splitlines()
        why = f"aborted after {patience:g} s" if aborted else f"exit {proc.returncode}"
        result.note = f"{why}: {lines[-1] if lines else 'no output'}"
        return result
    stats = parse_jobinfo(virsh(dst.uri, "domjobinfo", "--completed", NAME))
    result.total_ms, result.downtime_ms, result.transferred_bytes = stats
    return result


# Bytes and milliseconds.
UNITS: dict[str, float] = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "ms": 1, "s": 1000}


def parse_jobinfo(text: str) -> tuple[float | None, float | None, float | None]:
    """Total time (ms), downtime (ms) and data processed (bytes) from `virsh domjobinfo`.

    Labels vary between libvirt versions ("Time elapsed" / "Total time", "Total downtime" /
    "Downtime", "Data processed" / "Memory processed"); the first label found wins. Values are
    "<number> <unit>" with units ms, s, B, KiB, MiB, GiB; a value without unit is taken as is.
    """
    fields: dict[str, float] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        match = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$", value)
        if not sep or not match:
            continue
        number, unit = float(match[1]), match[2].lower()
        if unit and unit not in UNITS:
            continue
        fields.setdefault(" ".join(label.lower().split()), number * UNITS.get(unit, 1))

    def first(*labels: str) -> float | None:
        return next((fields[label] for label in labels if label in fields), None)

    return (
        first("time elapsed", "total time"),
        first("total downtime", "downtime"),
        first("data processed", "memory processed"),
    )


# --- Output ----------------------------------------------------------------------------------------


def cell(value: float | None, scale: float = 1.0, digits: int = 0) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


HEADER = (
    f"{'round':<6}{'tool':<9}{'direction':<20}{'converged':>10}{'total ms':>10}{'downtime ms':>13}"
    f"{'MiB':>9}{'wall s':>9}  policy / note"
)


def row(r: Result) -> str:
    extra = "  ".join(part for part in (r.policy or "", r.note) if part)
    return (
        f"{r.round:<6}{r.tool:<9}{f'{r.source}->{r.dest}':<20}{'yes' if r.converged else 'no':>10}"
        f"{cell(r.total_ms):>10}{cell(r.downtime_ms):>13}{cell(r.transferred_bytes, MIB, 1):>9}"
        f"{cell(r.wall_s, digits=1):>9}  {extra}"
    )


def median(results: Sequence[Result], field: Callable[[Result], float | None]) -> float | None:
    values = [value for r in results if r.converged and (value := field(r)) is not None]
    return statistics.median(values) if values else None


COLUMNS: dict[str, tuple[Callable[[Result], float | None], float, int]] = {
    "total ms": (lambda r: r.total_ms, 1.0, 0),
    "downtime ms": (lambda r: r.downtime_ms, 1.0, 0),
    "MiB": (lambda r: r.transferred_bytes, MIB, 1),
    "wall s": (lambda r: r.wall_s, 1.0, 1),
}


def report(results: dict[str, list[Result]], patience: float) -> None:
    runs = len(results[VIRTNET])
    print(f"\nmedians over the converged runs ({runs} runs per tool)")
    print(f"{'tool':<9}{'converged':>10}" + "".join(f"{name:>13}" for name in COLUMNS) + "  policies")
    for tool, rs in results.items():
        converged = sum(r.converged for r in rs)
        cells = "".join(
            f"{cell(median(rs, field), scale, digits):>13}" for field, scale, digits in COLUMNS.values()
        )
        policies = ", ".join(sorted({r.policy for r in rs if r.policy})) or "-"
        print(f"{tool:<9}{f'{converged}/{len(rs)}':>10}{cells}  {policies}")

    if any("(*)" in r.note for r in results[VIRTNET]):
        print(
            "(*) after a post-copy switch the destination keeps no completed-job statistics: virtnet\n"
            "    reports QEMU's last sample before the end, so total ms and MiB stop short of the whole job"
        )

    failed = {tool: sum(not r.converged for r in rs) for tool, rs in results.items()}
    # Pair the tools by round: only rounds where both converged are compared.
    both = [(ours, theirs) for ours, theirs in zip(results[VIRTNET], results[VIRSH], strict=True)]
    both = [(ours, theirs) for ours, theirs in both if ours.converged and theirs.converged]
    rounds = ", ".join(str(ours.round) for ours, _ in both) or "none"
    print(f"\nratios virsh / virtnet, medians over the rounds where both converged ({rounds}):")
    if failed[VIRTNET]:
        print(f"  virtnet: did not converge in {failed[VIRTNET]}/{runs} runs")
    if failed[VIRSH]:
        print(f"  virsh: did not converge within {patience:g} s in {failed[VIRSH]}/{runs} runs")
    if not both:
        return
    for name, (field, _scale, _digits) in COLUMNS.items():
        ours_m = median([ours for ours, _ in both], field)
        theirs_m = median([theirs for _, theirs in both], field)
        if theirs_m is None or ours_m is None or ours_m == 0:
            print(f"  {name}: -")
            continue
        sampled = name in ("total ms", "MiB") and any("(*)" in ours.note for ours, _ in both)
        mark = "  (*) virtnet's figure from the last sample" if sampled else ""
        lower = "virtnet" if theirs_m > ours_m else "virsh"
        print(f"  {name}: {theirs_m / ours_m:.2f} (lower for {lower}){mark}")


# --- Main ------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the lab


def bench(lab: Lab, workdir: Path, args: argparse.Namespace) -> dict[str, list[Result]]:
    state = lab.up(hosts=2, hugepages_mib=256)
    hosts = state.hosts
    print(f"lab up: {', '.join(f'{h.name} {h.uri}' for h in hosts)}; guests run under {state.virt_type}")
    log = workdir / f"{NAME}.console.log"
    spec = write_spec(lab, workdir, log)
    run(virtnet_cli(hosts[0].uri, "define", str(spec)))
    run(virtnet_cli(hosts[0].uri, "start", NAME))
    started = time.monotonic()
    console = wait_console(log, lambda c: c.passes >= 1, "the guest's first dirtying pass", BOOT_TIMEOUT_S)
    boot_s = time.monotonic() - started
    print(f"guest {NAME!r} up on {hosts[0].name}, first {DIRTY_MIB} MiB pass done after {boot_s:.0f} s")
    print(
        f"\n{args.runs} rounds, each tool once per round (order alternating), from wherever the guest runs"
        " to the other host.\nwall s: the whole command from here; virtnet's includes its pre-flight"
        " checks and 1 s dirty-rate\nmeasurement, an aborted virsh's includes the domjobabort.\n"
    )
    print(HEADER, flush=True)
    results: dict[str, list[Result]] = {tool: [] for tool in TOOLS}
    for round_ in range(1, args.runs + 1):
        for tool in TOOLS if round_ % 2 else TOOLS[::-1]:
            src = locate(hosts)
            dst = next(host for host in hosts if host is not src)
            if tool == VIRTNET:
                result = migrate_virtnet(src, dst, args.bandwidth)
            else:
                result = migrate_virsh(src, dst, args.bandwidth, args.virsh_patience)
            result.round = round_
            where = locate(hosts)
            expected = dst if result.converged else src
            if where is not expected:
                raise BenchError(f"{tool}: converged={result.converged} but the guest runs on {where.name}")
            results[tool].append(result)
            print(row(result), flush=True)
            console = settle(log, console)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="migrations per tool (default 3)")
    parser.add_argument("--bandwidth", type=int, default=100, help="MiB/s cap for both tools (default 100)")
    parser.add_argument(
        "--virsh-patience",
        type=float,
        default=40.0,
        help="seconds before virsh's job is aborted (default 40)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.bandwidth < 1 or args.virsh_patience <= 0:
        parser.error("--runs and --bandwidth must be at least 1, --virsh-patience above 0")
    if os.geteuid() != 0:
        print("needs root: the lab starts libvirtd, OVS and namespaces", file=sys.stderr)
        return 1
    missing = [tool for tool in ("virsh", "libvirtd", "qemu-system-x86_64") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)} (make deps)", file=sys.stderr)
        return 1

    print(
        f"workload: {MEMORY} guest, 1 vCPU, no hugepages, no NIC, rewriting {DIRTY_MIB} MiB in a loop\n"
        f"virtnet: virtnet migrate {NAME} DEST --bandwidth {args.bandwidth} --json  (policy auto)\n"
        f"virsh:   virsh migrate --live --p2p --persistent --undefinesource --bandwidth {args.bandwidth}"
        f" {NAME} DEST\n         (default flags otherwise; domjobabort after {args.virsh_patience:g} s)"
    )
    base = Path(tempfile.mkdtemp(prefix="virtnet-bench-"))
    lab = Lab(base, prefix=LAB_PREFIX, first_address=LAB_ADDRESS)
    signal.signal(signal.SIGTERM, _terminate)
    ok = False
    try:
        results = bench(lab, base, args)
        ok = True
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not leave half a lab behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping the lab ...", file=sys.stderr, flush=True)
        lab.down()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base} (console log, spec) for a look", file=sys.stderr)
    report(results, args.virsh_patience)
    return 0


if __name__ == "__main__":
    sys.exit(main())
