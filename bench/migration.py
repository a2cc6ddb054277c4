"""Live migration: virtnet migrate (policy auto, steering) against every flag set a skilled user would
pick for `virsh migrate`, on three workloads, with the same bandwidth cap.

On a lab of its own (two libvirt hosts, ``virtnet.lab``) it boots the lab's test guest (512 MiB, 1 vCPU,
no hugepages, no NIC) in three shapes, one after the other:

  idle    the guest does nothing but count on its console;
  below   it rewrites a 128 MiB region at most at a third of the cap (``dirty_pace_mib_s``);
  above   it rewrites the 128 MiB region as fast as it can: faster than the cap.

The cap is half of what the "above" guest reaches on this machine (measured from its console before
anything else; under TCG it depends on the machine), at most 100 MiB/s, unless ``--bandwidth`` says.
Each guest is migrated back and forth between the two hosts, each tool once per round, in an order
that rotates from round to round:

  virtnet        ``virtnet -c SRC migrate NAME DEST --bandwidth CAP --json`` (policy auto)
  plain          ``virsh migrate --live --p2p --persistent --undefinesource --bandwidth CAP NAME DEST``
  parallel-4     ... ``--parallel --parallel-connections 4``
  auto-converge  ... ``--auto-converge``
  xbzrle         ... ``--comp-methods xbzrle --compressed``
  postcopy       ... ``--postcopy --postcopy-after-precopy --postcopy-bandwidth CAP``
                 (``--bandwidth`` caps pre-copy only; virtnet caps the whole job)

A virsh job still running after ``--virsh-patience`` seconds is stopped with ``virsh domjobabort``
(converged = exit status 0). Figures for both tools come from the same place: libvirt's job-completed
event on the source, read by ``virsh event --event job-completed`` beside virsh's job (QEMU's own
total, downtime and bytes, after a post-copy switch too) and by virtnet's report (which reads the same
event). After each move the guest must still count on its console in the same boot (and, when it
dirties, finish one more pass), so every move starts from the same state.

Prints every run, then per workload: who converged, median total, downtime and MiB sent, and the
ratio of virtnet's total to the best hand-picked set's; the goals (virtnet converges in every run,
within 1.2x of the best set's total, downtime <= 100 ms) are marked met or missed.

Needs root. Under TCG on two cores one round takes about 10 minutes; from the repository root:

    .venv/bin/python bench/migration.py [--runs 1] [--bandwidth MiB/s] [--virsh-patience 40]
        [--workloads idle,below,above] [--prefix vnbench --address 127.0.0.50]
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
MEMORY = "512MiB"
DIRTY_MIB = 128
MAX_CAP_MIB_S = 100

VIRTNET = "virtnet"
VIRSH_SETS: dict[str, list[str]] = {
    "plain": [],
    "parallel-4": ["--parallel", "--parallel-connections", "4"],
    "auto-converge": ["--auto-converge"],
    "xbzrle": ["--comp-methods", "xbzrle", "--compressed"],
    "postcopy": ["--postcopy", "--postcopy-after-precopy"],  # + --postcopy-bandwidth CAP, see below
}
TOOLS = (VIRTNET, *VIRSH_SETS)
WORKLOADS = ("idle", "below", "above")

GOAL_RATIO = 1.2
GOAL_DOWNTIME_MS = 100

COMMAND_TIMEOUT_S = 60
VIRTNET_TIMEOUT_S = 600
ABORT_TIMEOUT_S = 120
BOOT_TIMEOUT_S = 180
SETTLE_TIMEOUT_S = 180
MIB = 1024 * 1024

TICK = re.compile(r"VIRTNET-TICK (\d+) up=([\d.]+)(?: passes=(\d+))?")


class BenchError(RuntimeError):
    """Something other than the migration under test failed: the benchmark stops."""


# --- Commands --------------------------------------------------------------------------------------


def run(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def virsh(uri: str, *args: str) -> str:
    return run(["virsh", "-q", "-c", uri, *args])


def virtnet_cli(uri: str, *args: str) -> list[str]:
    return [str(PYTHON), "-m", "virtnet", "-c", uri, *args]


def locate(hosts: Sequence[LabHost], name: str, timeout: float = 30.0) -> LabHost:
    """The one host the guest runs on (a migration's other half may take a moment to go)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [host for host in hosts if name in virsh(host.uri, "list", "--name").split()]
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            where = ", ".join(host.name for host in found) or "no host"
            raise BenchError(f"guest {name!r} runs on {where}, expected exactly one")
        time.sleep(0.5)


# --- The guests ------------------------------------------------------------------------------------


def write_spec(lab: Lab, workdir: Path, workload: str, cap: int) -> Path:
    dirty: dict[str, Any] = {}
    if workload == "below":
        dirty = {"dirty_mib": DIRTY_MIB, "dirty_pace_mib_s": max(1, cap // 3)}
    elif workload == "above":
        dirty = {"dirty_mib": DIRTY_MIB}
    spec: dict[str, Any] = {
        "name": workload,
        "cpu": {"count": 1, "sockets": 1, "cores": 1, "threads": 1},
        "memory": {"size": MEMORY},
        "boot": {
            "kernel": str(lab.guest_dir / "vmlinuz"),
            "initrd": str(lab.guest_dir / "initrd.gz"),
            "cmdline": guest_cmdline(**dirty),
        },
        "console": {"type": "pty", "log": str(console_log(workdir, workload))},
    }
    path = workdir / f"{workload}.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


def console_log(workdir: Path, name: str) -> Path:
    return workdir / f"{name}.console.log"


@dataclass(frozen=True)
class Console:
    boots: int
    tick: int
    passes: int
    ticks: list[tuple[float, int]]  # (uptime, passes) per tick

    @classmethod
    def read(cls, log: Path) -> Console:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = [(float(up), int(passes or 0)) for _n, up, passes in TICK.findall(text)]
        last = TICK.findall(text)[-1] if found else ("-1", "0", "")
        return cls(text.count("VIRTNET-BOOTED"), int(last[0]), found[-1][1] if found else 0, found)


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


def settle(log: Path, before: Console, dirties: bool) -> Console:
    """The guest still counting in the same boot, and (if it dirties) one more pass done."""
    if (now := Console.read(log)).boots != 1:
        raise BenchError(f"the guest booted {now.boots} times: a migration lost it")
    return wait_console(
        log,
        lambda c: c.tick >= before.tick + 2 and (not dirties or c.passes > before.passes),
        "the guest counting (and dirtying) after the migration",
        SETTLE_TIMEOUT_S,
    )


def dirty_rate(console: Console) -> float:
    """MiB/s the guest rewrites, from the uptimes at which its pass count went up."""
    first: dict[int, float] = {}
    for up, passes in console.ticks:
        first.setdefault(passes, up)
    counts = sorted(p for p in first if p >= 1)
    if len(counts) < 2:
        raise BenchError("the guest has not finished enough dirtying passes to measure its rate")
    lo, hi = counts[0], counts[-1]
    return DIRTY_MIB * (hi - lo) / (first[hi] - first[lo])


# --- One migration ---------------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    round: int
    tool: str
    converged: bool
    wall_s: float
    total_ms: float | None = None
    downtime_ms: float | None = None
    transferred_bytes: float | None = None
    note: str = ""


def migrate_virtnet(name: str, src: LabHost, dst: LabHost, cap: int) -> Result:
    argv = virtnet_cli(src.uri, "migrate", name, dst.uri, "--bandwidth", str(cap), "--json")
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=VIRTNET_TIMEOUT_S, check=False)
    result = Result(name, 0, VIRTNET, converged=False, wall_s=time.perf_counter() - started)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        result.note = f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"
        return result
    report = json.loads(done.stdout)["report"]
    result.converged = True
    result.total_ms, result.downtime_ms = report["total_ms"], report["downtime_ms"]
    result.transferred_bytes = report["transferred_bytes"]
    notes = [report["policy"]]
    notes += [step.split(": ")[1] for step in report["escalations"] if ": none: " not in step]
    if report.get("postcopy_switched"):
        notes.append("post-copy switched")
    if report.get("throttle_percent"):
        notes.append(f"throttled {report['throttle_percent']}%")
    result.note = ", ".join(dict.fromkeys(notes))
    return result


def migrate_virsh(name: str, flag_set: str, src: LabHost, dst: LabHost, cap: int, patience: float) -> Result:
    # --bandwidth caps pre-copy only; post-copy has its own limit, unlimited unless set. virtnet
    # caps both (VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY), so virsh gets the same cap for the whole job.
    postcopy_cap = ["--postcopy-bandwidth", str(cap)] if "--postcopy" in VIRSH_SETS[flag_set] else []
    argv = [
        "virsh", "-c", src.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
        "--bandwidth", str(cap), *VIRSH_SETS[flag_set], *postcopy_cap, name, dst.uri,
    ]  # fmt: skip
    # QEMU's own figures, as libvirt hands them to any client that listens on the source.
    event = subprocess.Popen(
        ["virsh", "-c", src.uri, "event", "--domain", name, "--event", "job-completed",
         "--timeout", str(int(patience + ABORT_TIMEOUT_S))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)  # registered before the job starts
    started = time.perf_counter()
    aborted = False
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _, err = proc.communicate(timeout=patience)
        except subprocess.TimeoutExpired:
            aborted = True
            subprocess.run(
                ["virsh", "-q", "-c", src.uri, "domjobabort", name],
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            _, err = proc.communicate(timeout=ABORT_TIMEOUT_S)
    wall_s = time.perf_counter() - started
    result = Result(name, 0, flag_set, converged=proc.returncode == 0, wall_s=wall_s)
    if not result.converged:
        event.kill()
        event.communicate()
        lines = err.strip().splitlines()
        why = f"aborted after {patience:g} s" if aborted else f"exit {proc.returncode}"
        result.note = f"{why}: {lines[-1] if lines else 'no output'}"
        return result
    try:
        out, _ = event.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        event.kill()
        out, _ = event.communicate()
    fields = parse_event(out)
    if fields:
        result.total_ms = fields.get("time_elapsed")
        result.downtime_ms = fields.get("downtime")
        result.transferred_bytes = fields.get("data_processed") or fields.get("memory_processed")
    else:
        result.total_ms, result.downtime_ms, result.transferred_bytes = parse_jobinfo(
            virsh(dst.uri, "domjobinfo", "--completed", name)
        )
        result.note = "figures from domjobinfo --completed"
    return result


def parse_event(text: str) -> dict[str, float]:
    """The numeric fields of `virsh event --event job-completed` ('\\tdowntime: 33' lines)."""
    fields = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s+(\w+): ([0-9]+(?:\.[0-9]+)?)\s*", line)
        if match:
            fields[match[1]] = float(match[2])
    return fields


UNITS: dict[str, float] = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "ms": 1, "s": 1000}


def parse_jobinfo(text: str) -> tuple[float | None, float | None, float | None]:
    """Total time (ms), downtime (ms) and data processed (bytes) from `virsh domjobinfo`."""
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
    f"{'workload':<9}{'round':<6}{'tool':<15}{'converged':>10}{'total ms':>10}{'downtime ms':>13}"
    f"{'MiB':>9}{'wall s':>9}  note"
)


def row(r: Result) -> str:
    return (
        f"{r.workload:<9}{r.round:<6}{r.tool:<15}{'yes' if r.converged else 'no':>10}"
        f"{cell(r.total_ms):>10}{cell(r.downtime_ms):>13}{cell(r.transferred_bytes, MIB, 1):>9}"
        f"{cell(r.wall_s, digits=1):>9}  {r.note}"
    )


def median(results: Sequence[Result], field: Callable[[Result], float | None]) -> float | None:
    values = [value for r in results if r.converged and (value := field(r)) is not None]
    return statistics.median(values) if values else None


def summary(results: list[Result], patience: float) -> None:
    print(f"\nper workload: medians over the converged runs (not converged: aborted after {patience:g} s)")
    print(f"{'workload':<9}{'tool':<15}{'converged':>10}{'total ms':>10}{'downtime ms':>13}{'MiB':>9}")
    for workload in dict.fromkeys(r.workload for r in results):
        mine = [r for r in results if r.workload == workload]
        for tool in TOOLS:
            rs = [r for r in mine if r.tool == tool]
            if not rs:
                continue
            print(
                f"{workload:<9}{tool:<15}{f'{sum(r.converged for r in rs)}/{len(rs)}':>10}"
                f"{cell(median(rs, lambda r: r.total_ms)):>10}{cell(median(rs, lambda r: r.downtime_ms)):>13}"
                f"{cell(median(rs, lambda r: r.transferred_bytes), MIB, 1):>9}"
            )
    print(
        "\ngoals: virtnet converges in every run; total within 1.2x of the best hand-picked set; "
        "downtime <= 100 ms"
    )
    for workload in dict.fromkeys(r.workload for r in results):
        mine = [r for r in results if r.workload == workload]
        ours = [r for r in mine if r.tool == VIRTNET]
        ours_total = median(ours, lambda r: r.total_ms)
        ours_down = median(ours, lambda r: r.downtime_ms)
        best_tool, best_total = None, None
        for tool in VIRSH_SETS:
            total = median([r for r in mine if r.tool == tool], lambda r: r.total_ms)
            if total is not None and (best_total is None or total < best_total):
                best_tool, best_total = tool, total
        converged = all(r.converged for r in ours)
        parts = [f"virtnet converged {sum(r.converged for r in ours)}/{len(ours)}"]
        if ours_total is not None and best_total:
            ratio = ours_total / best_total
            verdict = "met" if ratio <= GOAL_RATIO else "missed"
            parts.append(
                f"total {ratio:.2f}x the best hand-picked ({best_tool}, {best_total:.0f} ms): {verdict}"
            )
        elif best_total is None:
            parts.append("no hand-picked set converged")
        if ours_down is not None:
            verdict = "met" if ours_down <= GOAL_DOWNTIME_MS else "missed"
            parts.append(f"downtime {ours_down:.0f} ms: {verdict}")
        print(f"  {workload}: " + "; ".join(parts) + ("" if converged else " (convergence goal missed)"))


# --- Main ------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the lab


def boot(hosts: Sequence[LabHost], spec: Path, log: Path, dirties: bool) -> Console:
    run(virtnet_cli(hosts[0].uri, "define", str(spec)))
    run(virtnet_cli(hosts[0].uri, "start", spec.stem))
    ready = (lambda c: c.passes >= 2) if dirties else (lambda c: c.tick >= 2)
    return wait_console(log, ready, f"{spec.stem}: booted (and dirtying)", BOOT_TIMEOUT_S)


def remove(hosts: Sequence[LabHost], name: str) -> None:
    host = locate(hosts, name)
    virsh(host.uri, "destroy", name)
    virsh(host.uri, "undefine", name)


def bench(lab: Lab, workdir: Path, args: argparse.Namespace) -> list[Result]:
    # Plain TCP (the lab's opt-in): virsh's flag sets here carry no --tls, and virtnet would add
    # VIR_MIGRATE_TLS on a qemu+tls:// destination; both sides must move the same bytes.
    state = lab.up(hosts=2, hugepages_mib=256, tls=False)
    hosts = state.hosts
    print(f"lab up: {', '.join(f'{h.name} {h.uri}' for h in hosts)}; guests run under {state.virt_type}")
    cap = args.bandwidth
    results: list[Result] = []
    for workload in args.workloads:
        dirties = workload != "idle"
        if cap is None:
            # The cap comes from what the busy guest reaches: boot it first to measure.
            probe_spec = write_spec(lab, workdir, "above", 1)
            console = boot(hosts, probe_spec, console_log(workdir, "above"), True)
            rate = dirty_rate(console)
            cap = max(5, min(MAX_CAP_MIB_S, int(rate / 2)))
            print(
                f"the busy guest rewrites ~{rate:.0f} MiB/s here: cap {cap} MiB/s for every tool", flush=True
            )
            remove(hosts, "above")
            console_log(workdir, "above").unlink()
        spec = write_spec(lab, workdir, workload, cap)
        log = console_log(workdir, workload)
        console = boot(hosts, spec, log, dirties)
        if dirties:
            print(
                f"{workload}: the guest rewrites ~{dirty_rate(console):.0f} MiB/s (cap {cap} MiB/s)",
                flush=True,
            )
        print(HEADER, flush=True)
        for round_ in range(1, args.runs + 1):
            shift = (round_ - 1) % len(TOOLS)
            for tool in TOOLS[shift:] + TOOLS[:shift]:
                src = locate(hosts, workload)
                dst = next(host for host in hosts if host is not src)
                if tool == VIRTNET:
                    result = migrate_virtnet(workload, src, dst, cap)
                else:
                    result = migrate_virsh(workload, tool, src, dst, cap, args.virsh_patience)
                result.round = round_
                where = locate(hosts, workload)
                if where is not (dst if result.converged else src):
                    raise BenchError(
                        f"{tool}: converged={result.converged} but the guest runs on {where.name}"
                    )
                results.append(result)
                print(row(result), flush=True)
                console = settle(log, console, dirties)
        remove(hosts, workload)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="rounds per workload (default 1)")
    parser.add_argument(
        "--bandwidth", type=int, help="MiB/s cap for every tool (default: from the busy guest)"
    )
    parser.add_argument(
        "--virsh-patience", type=float, default=40.0, help="seconds before virsh's job is aborted"
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="idle,below,above or a subset")
    parser.add_argument("--prefix", default="vnbench", help="the lab's name prefix")
    parser.add_argument("--address", default="127.0.0.50", help="the lab's first loopback address")
    args = parser.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    if args.runs < 1 or (args.bandwidth is not None and args.bandwidth < 1) or args.virsh_patience <= 0:
        parser.error("--runs and --bandwidth must be at least 1, --virsh-patience above 0")
    if not args.workloads or set(args.workloads) - set(WORKLOADS):
        parser.error(f"--workloads: choose from {', '.join(WORKLOADS)}")
    if os.geteuid() != 0:
        print("needs root: the lab starts libvirtd, OVS and namespaces", file=sys.stderr)
        return 1
    missing = [tool for tool in ("virsh", "libvirtd", "qemu-system-x86_64") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)} (make deps)", file=sys.stderr)
        return 1
    print(
        f"workloads: {', '.join(args.workloads)} ({MEMORY} guest, 1 vCPU, no NIC; 'below' and 'above' rewrite"
        f" {DIRTY_MIB} MiB)\ntools: virtnet migrate (policy auto) and virsh migrate --live --p2p --persistent"
        f" --undefinesource with: " + "; ".join(f"{k} [{' '.join(v)}]" for k, v in VIRSH_SETS.items())
    )
    base = Path(tempfile.mkdtemp(prefix="virtnet-bench-"))
    lab = Lab(base, prefix=args.prefix, first_address=args.address)
    signal.signal(signal.SIGTERM, _terminate)
    ok = False
    started = time.monotonic()
    try:
        results = bench(lab, base, args)
        ok = True
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave half a lab behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping the lab ...", file=sys.stderr, flush=True)
        lab.down()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base} (console logs, specs) for a look", file=sys.stderr)
    summary(results, args.virsh_patience)
    print(f"\nbenchmark time: {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
