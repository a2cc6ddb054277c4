"""Whole-process start-up of the virtnet CLI beside the tools it stands in for, with the issue's budgets.

Five measurements, each the median of ``--runs`` complete processes (interpreter start-up, imports,
work, exit), run with subprocess and no shell, alternating the order of the tools in each round:

  version   ``virtnet --version``                       budget: at most 60 ms
  help      ``virtnet --help``                          budget: at most 100 ms
  xml       ``virtnet xml examples/multiqueue-vm.toml``  budget: at least 2x faster than
            ``virt-install --print-xml --dry-run`` for the same VM (arguments from bench/xml_render.py)
  list      ``virtnet -c test:///default list --all``    budget: at most 5x ``virsh ... list --all``
  ports     100 vhost-user ports created and deleted in one virtnet process (bench/ovs_ports.py's
            child: interpreter, imports, connect, two transactions) against 100 ``ovs-vsctl add-port``
            and 100 ``ovs-vsctl del-port`` processes, on a throwaway ovsdb-server.
            budget: at least 20x faster (``--port-rounds`` rounds, it takes seconds per round)

Every output is checked (the version line, the usage text, a <domain> root, the test driver's
domain 'test' in both lists, the ports in the database), so a failure is never timed.

Which virtnet runs (``--install``):
  venv  (default) a regular, non-editable install of ``--source`` in a throwaway venv
        (bench/.venv-startup): the package copied to site-packages and pip's console script,
        the dependencies taken from the running interpreter's site-packages through a .pth
        line. This is what a user's ``pip install virtnet`` runs.
  dev   ``python -m virtnet`` of the running interpreter with PYTHONPATH=--source: in an editable
        development venv, whose .pth finder alone costs ~40 ms of every start on this machine.
The interpreter's own start (``python -c pass``) is printed as the floor under every virtnet figure,
and ``python -c "import ovs.db.idl"`` as the floor under the ports figure: the share of the ports
budget that python-ovs's import takes before virtnet connects.

Run from the repository root (``--source`` picks another tree, e.g. an older commit unpacked with
``git archive``, for before/after numbers):

    .venv/bin/python bench/startup.py [--runs 21] [--port-rounds 5] [--install venv|dev] [--source DIR]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import tomllib
import venv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from ovs_ports import (
    BRIDGE,
    CHILD_DRIVER,
    PORT_TYPE,
    VIRTNET_CHILD,
    BenchError,
    OvsdbServer,
    expect_no_ports,
    expect_ports,
    port_names,
    run_child,
    socket_path,
)
from ovs_ports import Sample as PortSample
from xml_render import VIRT_INSTALL, VIRT_INSTALL_ARGS

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / "bench" / ".venv-startup"
PORTS_GOAL = 20.0
SPEC = "examples/multiqueue-vm.toml"
TEST_URI = "test:///default"
VIRSH = shutil.which("virsh") or "/usr/bin/virsh"
PORTS = 100


@dataclass(frozen=True)
class Budget:
    """What the issue asks: an absolute ceiling, or a ratio against the reference tool."""

    text: str
    met: Callable[[float, float | None], bool]


@dataclass
class Case:
    name: str
    virtnet: list[str]
    check: Callable[[str], None]
    budget: Budget
    reference: list[str] | None = None
    reference_name: str = ""
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def expect(text: str, what: str) -> Callable[[str], None]:
    def check(out: str) -> None:
        if text not in out:
            raise BenchError(f"expected {what} ({text!r}) in: {out[:300]!r}")

    return check


def expect_domain(out: str) -> None:
    if etree.fromstring(out.encode()).tag != "domain":
        raise BenchError("the XML's root is not <domain>")


@dataclass(frozen=True)
class Sample:
    """One whole process (or the 200 ovs-vsctl processes): wall time and CPU time, in seconds."""

    wall_s: float
    cpu_s: float


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: Sequence[str], check: Callable[[str], None], cwd: Path = ROOT) -> Sample:
    """One whole process, after checking its exit status and output."""
    cpu = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    sample = Sample(time.perf_counter() - started, children_cpu_s() - cpu)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    check(proc.stdout)
    return sample


# --- Which virtnet --------------------------------------------------------------------------------


def install_venv(source: Path, target: Path) -> Path:
    """A fresh venv with `source`'s virtnet installed as a wheel would be; returns its python."""
    shutil.rmtree(target, ignore_errors=True)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies: a plain path line (not an import line, so it costs one sys.path entry).
    (site / "virtnet-bench-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    shutil.copytree(source / "virtnet", site / "virtnet", ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(site / "virtnet", quiet=1)  # as pip does at install time
    script = target / "bin" / "virtnet"
    # What pip writes for the tree's [project.scripts] entry, e.g. virtnet = "virtnet.launcher:run".
    entry = tomllib.loads((source / "pyproject.toml").read_text())["project"]["scripts"]["virtnet"]
    module, _, function = entry.partition(":")
    script.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\nif __name__ == '__main__':\n"
        f"    sys.exit({function}())\n"
    )
    script.chmod(0o755)
    (target / ".gitignore").write_text("*\n")
    return python


def virtnet_command(mode: str, source: Path) -> tuple[list[str], str]:
    """The argv prefix that runs virtnet and the python under it; sets the environment every run inherits."""
    for name in ("PYTHONPATH", "LIBVIRT_DEFAULT_URI", "VIRTNET_OVSDB", "COLUMNS"):
        os.environ.pop(name, None)
    if mode == "dev":
        os.environ["PYTHONPATH"] = str(source)
        return [sys.executable, "-m", "virtnet"], sys.executable
    python = install_venv(source, BENCH_VENV)
    return [str(BENCH_VENV / "bin" / "virtnet")], str(python)


# --- The measurements ----------------------------------------------------------------------------


def cases(virtnet: list[str], python: str) -> list[Case]:
    floor = Budget("(floor)", lambda ours, _: True)
    return [
        Case("python -c pass", [python, "-c", "pass"], lambda _: None, floor),
        Case(
            "--version",
            [*virtnet, "--version"],
            expect("virtnet ", "the version"),
            Budget("<= 60 ms", lambda ours, _: ours <= 0.060),
        ),
        Case(
            "--help",
            [*virtnet, "--help"],
            expect("Usage:", "the usage"),
            Budget("<= 100 ms", lambda ours, _: ours <= 0.100),
        ),
        Case(
            "xml",
            [*virtnet, "xml", SPEC],
            expect_domain,
            Budget(">= 2x faster", lambda ours, theirs: theirs is not None and theirs / ours >= 2),
            [VIRT_INSTALL, *VIRT_INSTALL_ARGS[SPEC]],
            "virt-install",
        ),
        Case(
            "list --all",
            [*virtnet, "-c", TEST_URI, "list", "--all"],
            expect("test", "the test driver's domain"),
            Budget("<= 5x virsh", lambda ours, theirs: theirs is not None and ours / theirs <= 5),
            [VIRSH, "-c", TEST_URI, "list", "--all"],
            "virsh",
        ),
    ]


def measure_cases(found: list[Case], runs: int) -> None:
    for round_ in range(-1, runs):  # one untimed warm-up round fills the page cache
        for case in found if round_ % 2 == 0 else found[::-1]:
            tools = [("virtnet", case.virtnet)]
            if case.reference:
                tools.append((case.reference_name, case.reference))
            for tool, argv in tools if round_ % 2 == 0 else tools[::-1]:
                sample = run_once(argv, case.check)
                if round_ >= 0:
                    case.samples.setdefault(tool, []).append(sample)


@dataclass
class Ports:
    """The port test's samples: virtnet's process, the ovs-vsctl processes, and the IDL's import."""

    parts: list[PortSample] = field(default_factory=list)  # virtnet's process, as it timed itself
    theirs: list[Sample] = field(default_factory=list)
    idl_import: list[Sample] = field(default_factory=list)

    @property
    def ours(self) -> list[Sample]:
        """virtnet's whole processes, from its children's samples."""
        samples = []
        for part in self.parts:
            assert part.whole_s is not None and part.cpu_s is not None  # measure_ports checked each
            samples.append(Sample(part.whole_s, part.cpu_s))
        return samples


def measure_ports(python: str, rounds: int) -> Ports:
    """Per round: one virtnet process making and removing the ports, 2 x 100 ovs-vsctl processes, and
    ``python -c "import ovs.db.idl"`` (the floor under virtnet's figure, from the same directory)."""
    names = port_names(PORTS)
    found = Ports()
    server = OvsdbServer()
    cwd = Path.cwd()
    try:
        server.start()
        # `python -c` puts the working directory first on sys.path: away from any source tree, the
        # child imports the virtnet under test, not the one it was started next to.
        os.chdir(server.dir)
        for round_ in range(-1, rounds):
            child = run_child("virtnet", [python, "-c", VIRTNET_CHILD + CHILD_DRIVER], server, names)
            vsctl = measure_vsctl(server, names)
            idl_import = run_once([python, "-c", "import ovs.db.idl"], lambda _: None, cwd=server.dir)
            if round_ >= 0:
                assert child.whole_s is not None and child.cpu_s is not None
                found.parts.append(child)
                found.theirs.append(vsctl)
                found.idl_import.append(idl_import)
    finally:
        os.chdir(cwd)
        server.stop()
    return found


def measure_vsctl(server: OvsdbServer, names: Sequence[str]) -> Sample:
    """bench/ovs_ports.py's walkthrough way, with the CPU time of the timed processes only."""
    create = [
        server.vsctl_argv(
            "add-port", BRIDGE, name, "--", "set", "Interface", name, f"type={PORT_TYPE}",
            f"options:vhost-server-path={socket_path(name)}",
        )
        for name in names
    ]  # fmt: skip
    delete = [server.vsctl_argv("del-port", BRIDGE, name) for name in names]
    made = run_all(create)
    expect_ports(server, names, "ovs-vsctl")
    removed = run_all(delete)
    expect_no_ports(server, "ovs-vsctl, after deleting")
    return Sample(made.wall_s + removed.wall_s, made.cpu_s + removed.cpu_s)


def run_all(argvs: Sequence[list[str]]) -> Sample:
    cpu = children_cpu_s()
    started = time.perf_counter()
    for argv in argvs:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(argv[:4])} ... failed: {proc.stderr.strip()}")
    return Sample(time.perf_counter() - started, children_cpu_s() - cpu)


# --- The table -----------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def times_faster(ours: float, theirs: float | None) -> str:
    if theirs is None:
        return "-"
    return f"{theirs / ours:.2f}x" if theirs >= ours else f"1/{ours / theirs:.2f}x"


def report(found: list[Case], ports: Ports | None) -> bool:
    """The table; whether every budget is met by wall time (CPU time is shown beside it)."""
    rows = [["command", "virtnet ms", "reference", "ref ms", "ratio", "budget", "met"]]
    rows[0] += ["| cpu ms", "ref cpu", "cpu ratio", "met"]
    all_met = True
    entries = [
        (
            case.name,
            case.samples["virtnet"],
            case.reference_name,
            case.samples.get(case.reference_name),
            case.budget,
        )
        for case in found
    ]
    if ports is not None:
        budget = Budget(
            f">= {PORTS_GOAL:g}x faster",
            lambda ours, theirs: theirs is not None and theirs / ours >= PORTS_GOAL,
        )
        entries.append((f"{PORTS} ports +/-", ports.ours, f"{2 * PORTS} ovs-vsctl", ports.theirs, budget))
    for name, ours, reference, theirs, budget in entries:
        row = [name]
        for pick in (lambda s: s.wall_s, lambda s: s.cpu_s):
            mine = statistics.median(map(pick, ours))
            other = statistics.median(map(pick, theirs)) if theirs else None
            met = budget.met(mine, other)
            floor = budget.text == "(floor)"
            if pick(ours[0]) == ours[0].wall_s:
                all_met &= met
                row += [ms(mine), reference or "-", ms(other), times_faster(mine, other), budget.text]
            else:
                row += ["| " + ms(mine), ms(other), times_faster(mine, other)]
            row.append("" if floor else "yes" if met else "NO")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(
        "(medians of whole processes; ratio = reference / virtnet, above 1x virtnet is faster;\n"
        " cpu = user + system time of the process, less disturbed than wall time on a shared machine)"
    )
    if ports is not None:
        allowed = statistics.median(s.wall_s for s in ports.theirs) / PORTS_GOAL
        floor = statistics.median(s.wall_s for s in ports.idl_import)
        print(
            f"the ports budget allows {ms(allowed)} ms for the whole process; python -c 'import ovs.db.idl' "
            f"alone takes {ms(floor)} ms of it ({100 * floor / allowed:.0f}%)"
        )
        parts = {
            "imports": [p.import_s or 0.0 for p in ports.parts],
            "connect": [p.connect_s or 0.0 for p in ports.parts],
            "create": [p.create_s for p in ports.parts],
            "delete": [p.delete_s for p in ports.parts],
        }
        print(
            "virtnet's process, as it timed itself (medians, ms): "
            + ", ".join(f"{name} {ms(statistics.median(values))}" for name, values in parts.items())
            + "; the rest is the interpreter's start and exit"
        )
    return all_met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (default 21)")
    parser.add_argument("--port-rounds", type=int, default=5, help="port test rounds (default 5)")
    parser.add_argument("--install", choices=("venv", "dev"), default="venv", help="which virtnet runs")
    parser.add_argument("--source", type=Path, default=ROOT, help="the tree whose virtnet runs")
    parser.add_argument("--no-ports", action="store_true", help="skip the ovsdb-server port test")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.port_rounds < 1:
        parser.error("--runs and --port-rounds must be at least 1")
    missing = [t for t in (VIRT_INSTALL, VIRSH) if not Path(t).exists()]
    if missing:
        print(f"needs {', '.join(missing)} (apt install virtinst libvirt-clients)", file=sys.stderr)
        return 1

    virtnet, python = virtnet_command(args.install, args.source.resolve())
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"virtnet from {args.source} ({args.install}): {' '.join(virtnet)}")
    print(f"{os.cpu_count()} CPUs, load average {' '.join(load)} at the start; {args.runs} runs per command")
    found = cases(virtnet, python)
    try:
        measure_cases(found, args.runs)
        ports = None if args.no_ports else measure_ports(python, args.port_rounds)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average {' '.join(load)} at the end\n")
    met = report(found, ports)
    print("\nall budgets met" if met else "\nsome budgets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
