"""Time creating and deleting 100 dpdkvhostuserclient ports on one bridge: virtnet vs ovs-vsctl vs ovsdbapp.

Against a throwaway ovsdb-server (started in a temp dir, no ovs-vswitchd; every tool uses "no wait"
semantics, i.e. nobody waits for ovs-vswitchd to apply the change) this creates ``--ports`` (100) ports
on br0 and deletes them again, three ways:

  (a) virtnet: one Transaction of EnsureVhostUserPort commands, then one of DeletePort commands,
      through virtnet's own OVSDB layer (virtnet.ovs). Timed in this process around the two
      transactions (connection set-up timed separately), and also as a whole separate process
      (``python -c``: interpreter start, imports, connect, create, delete).
  (b) the walkthrough's way: one ``ovs-vsctl --no-wait add-port ... -- set Interface ...`` process
      per port, then one ``ovs-vsctl --no-wait del-port`` per port. Every call is a whole process.
  (c) ovsdbapp (OpenStack's OVSDB library, ovsdbapp.backend.ovs_idl): one transaction of
      add_port + db_set per port, then one of del_port. ovsdbapp is installed only into a throwaway
      venv (bench/.venv-ovsdbapp, created on first run with ``python -m venv`` + ``pip install
      ovsdbapp``) so it never becomes a dependency of virtnet; it runs as a subprocess of that venv's
      python that times connect / create / delete itself and reports them as JSON. Its stock
      Open_vSwitch transaction bumps next_cfg and waits for ovs-vswitchd; the script swaps in a
      transaction without that wait, the equivalent of ovs-vsctl --no-wait.

Both subprocess-run libraries stop after creating and wait for a "go" on stdin, so the ports can be
checked in between; that pause is measured by the child and subtracted from its wall time.
Every measurement is checked with ovs-vsctl, so a failure is never timed: br0 has no ports before,
exactly the expected ports with type dpdkvhostuserclient and the right vhost-server-path after
creating, and no ports (nor left-over Port/Interface rows) after deleting.

There is one untimed warm-up round (``--warmup``), then ``--rounds`` timed rounds; the tool order
alternates between rounds. Prints medians per tool, the ratios ovs-vsctl/virtnet and
ovsdbapp/virtnet for create+delete, and whether the issue's goals are met: virtnet at least 20x faster
than ovs-vsctl and no slower than ovsdbapp.

Needs ovsdb-server, ovsdb-tool and ovs-vsctl (Debian: openvswitch-switch), and network access to
PyPI the first time (for the ovsdbapp venv). Run from the repository root:

    .venv/bin/python bench/ovs_ports.py [--rounds 5] [--ports 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from virtnet.ovs.commands import DeletePort, EnsureVhostUserPort, VhostUserPort
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.transaction import Transaction

ROOT = Path(__file__).resolve().parent.parent
OVSDBAPP_VENV = ROOT / "bench" / ".venv-ovsdbapp"
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
BRIDGE = "br0"
PORT_TYPE = "dpdkvhostuserclient"
PREFIX = "vhu"
VSCTL_TIMEOUT_S = 10
CHILD_TIMEOUT_S = 120.0

VIRTNET = "virtnet"
VSCTL = "ovs-vsctl"
OVSDBAPP = "ovsdbapp"
TOOLS = (VIRTNET, VSCTL, OVSDBAPP)

# Goals stated in the issue.
GOAL_VS_VSCTL = 20.0
GOAL_VS_OVSDBAPP = 1.0


class BenchError(RuntimeError):
    """A tool failed or left the database in an unexpected state: nothing of this run is timed."""


def socket_path(name: str) -> str:
    """The vhost-server-path of a port (only a string in the database: nothing creates the socket)."""
    return f"/tmp/{name}.sock"


def port_names(count: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(count)]


# --- The child processes --------------------------------------------------------------------------
# Each defines connect(remote), create(api, bridge, names), delete(api, names) and close(api); the
# driver below runs them and reports JSON. It pauses after creating so the parent can check the ports.

CHILD_DRIVER = """
def _main() -> None:
    remote, bridge, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    names = [f"{prefix}{i}" for i in range(count)]
    t = time.perf_counter()
    api = connect(remote)
    connect_s = time.perf_counter() - t
    t = time.perf_counter()
    create(api, bridge, names)
    create_s = time.perf_counter() - t
    paused = time.perf_counter()
    print("created", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("the benchmark did not confirm the created ports")
    pause_s = time.perf_counter() - paused
    t = time.perf_counter()
    delete(api, names)
    delete_s = time.perf_counter() - t
    close(api)
    result = {"import_s": import_s, "connect_s": connect_s, "create_s": create_s,
              "delete_s": delete_s, "pause_s": pause_s, "cpu_s": time.process_time()}
    print(json.dumps(result), flush=True)


_main()
"""

VIRTNET_CHILD = """
import json, sys, time

_t0 = time.perf_counter()
from virtnet.ovs.commands import DeletePort, EnsureVhostUserPort, VhostUserPort
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.transaction import Transaction
import_s = time.perf_counter() - _t0


def connect(remote):
    return Ovsdb(remote)


def create(db, bridge, names):
    txn = Transaction(db)
    for name in names:
        txn.add(EnsureVhostUserPort(VhostUserPort(bridge=bridge, name=name, socket=f"/tmp/{name}.sock")))
    if not txn.commit():
        sys.exit("virtnet: creating the ports changed nothing")


def delete(db, names):
    txn = Transaction(db)
    for name in names:
        txn.add(DeletePort(name))
    if not txn.commit():
        sys.exit("virtnet: deleting the ports changed nothing")


def close(db):
    db.close()
"""

OVSDBAPP_CHILD = """
import json, logging, sys, time

logging.basicConfig(level=logging.WARNING)
_t0 = time.perf_counter()
from ovsdbapp.backend.ovs_idl import connection, idlutils, transaction
from ovsdbapp.schema.open_vswitch import impl_idl
import_s = time.perf_counter() - _t0

# The tables virtnet replicates (ovsdbapp replicates all their columns).
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface")


class NoWaitTransaction(impl_idl.OvsVsctlTransaction):
    # ovs-vsctl --no-wait: no next_cfg bump and no waiting for ovs-vswitchd (there is none here).
    def pre_commit(self, txn):
        txn.expected_ifaces = set()  # AddPortCommand records its new interfaces here

    def post_commit(self, txn):
        transaction.Transaction.post_commit(self, txn)  # the commands' own post_commit only


class NoWaitOvsdbIdl(impl_idl.OvsdbIdl):
    def create_transaction(self, check_error=False, log_errors=True, **kwargs):
        return NoWaitTransaction(self, self.ovsdb_connection, check_error=check_error, log_errors=log_errors)


def connect(remote):
    helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
    for table in TABLES:
        helper.register_table(table)
    idl = connection.OvsdbIdl(remote, helper)
    return NoWaitOvsdbIdl(connection.Connection(idl, timeout=10))


def create(api, bridge, names):
    with api.transaction(check_error=True) as txn:
        for name in names:
            txn.add(api.add_port(bridge, name))
            options = {"vhost-server-path": f"/tmp/{name}.sock"}
            txn.add(api.db_set("Interface", name, ("type", "dpdkvhostuserclient"), ("options", options)))


def delete(api, names):
    with api.transaction(check_error=True) as txn:
        for name in names:
            txn.add(api.del_port(name))


def close(api):
    api.ovsdb_connection.stop(timeout=10)
"""


# --- The throwaway ovsdb-server -------------------------------------------------------------------


class OvsdbServer:
    """ovsdb-server with a fresh Open_vSwitch database and bridge br0 (datapath netdev) in a temp dir."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="virtnet-bench-ovs-"))
        self.remote = f"unix:{self.dir / 'db.sock'}"
        self.pidfile = self.dir / "ovsdb-server.pid"
        self.pid: int | None = None

    def start(self) -> None:
        db = self.dir / "conf.db"
        _run(["ovsdb-tool", "create", str(db), str(SCHEMA)])
        _run(
            [
                "ovsdb-server",
                str(db),
                f"--remote=p{self.remote}",
                f"--unixctl={self.dir / 'ovsdb-server.ctl'}",
                f"--pidfile={self.pidfile}",
                f"--log-file={self.dir / 'ovsdb-server.log'}",
                "--detach",
            ]
        )
        self.pid = int(self.pidfile.read_text().strip())
        self.vsctl("init")
        self.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev")

    def stop(self) -> None:
        """Stop the server by its PID and remove the temp dir."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.02)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def vsctl_argv(self, *args: str) -> list[str]:
        return ["ovs-vsctl", f"--db={self.remote}", "--no-wait", f"--timeout={VSCTL_TIMEOUT_S}", *args]

    def vsctl(self, *args: str) -> str:
        return _run(self.vsctl_argv(*args))

    def table(self, table: str, columns: str) -> list[list[Any]]:
        """The rows of `table` as ovs-vsctl's JSON output gives them."""
        output = self.vsctl("--format=json", f"--columns={columns}", "list", table)
        rows: list[list[Any]] = json.loads(output)["data"]
        return rows


def _run(argv: Sequence[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


# --- Checks (never timed) -------------------------------------------------------------------------


def expect_no_ports(server: OvsdbServer, when: str) -> None:
    """br0 has no ports, and no Port/Interface rows are left but br0's own (ovsdb-server's GC ran)."""
    ports = server.vsctl("list-ports", BRIDGE).split()
    if ports:
        raise BenchError(f"{when}: br0 still has {len(ports)} ports, e.g. {ports[:3]}")
    for table in ("Port", "Interface"):
        names = sorted(row[0] for row in server.table(table, "name"))
        if names != [BRIDGE]:
            raise BenchError(f"{when}: {table} table holds {names[:5]}..., expected only {BRIDGE}")


def expect_ports(server: OvsdbServer, names: Sequence[str], tool: str) -> None:
    """Exactly `names` are on br0, each with type dpdkvhostuserclient and its vhost-server-path."""
    ports = sorted(server.vsctl("list-ports", BRIDGE).split())
    if ports != sorted(names):
        raise BenchError(f"{tool}: br0 has {len(ports)} ports after creating, expected {len(names)}")
    ifaces = {row[0]: row for row in server.table("Interface", "name,type,options")}
    for name in names:
        row = ifaces.get(name)
        if row is None:
            raise BenchError(f"{tool}: port {name} has no interface {name}")
        options = dict(row[2][1])  # ["map", [[key, value], ...]]
        if row[1] != PORT_TYPE or options.get("vhost-server-path") != socket_path(name):
            raise BenchError(f"{tool}: interface {name} has type {row[1]!r} and options {options}")


# --- The measurements ----------------------------------------------------------------------------


@dataclass
class Sample:
    """One round of one tool, in seconds; None where the figure does not apply."""

    create_s: float
    delete_s: float
    connect_s: float | None = None
    whole_s: float | None = None
    import_s: float | None = None
    cpu_s: float | None = None  # the whole process's CPU time (user + system), for a shared machine

    @property
    def total_s(self) -> float:
        return self.create_s + self.delete_s


def measure_virtnet(server: OvsdbServer, names: Sequence[str]) -> Sample:
    """In this process: connection, create transaction, delete transaction; then a whole process."""
    started = time.perf_counter()
    db = Ovsdb(server.remote)
    connect_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        txn = Transaction(db)
        for name in names:
            txn.add(EnsureVhostUserPort(VhostUserPort(bridge=BRIDGE, name=name, socket=socket_path(name))))
        changed = txn.commit()
        create_s = time.perf_counter() - started
        if not changed:
            raise BenchError("virtnet: creating the ports changed nothing")
        expect_ports(server, names, VIRTNET)

        started = time.perf_counter()
        txn = Transaction(db)
        for name in names:
            txn.add(DeletePort(name))
        changed = txn.commit()
        delete_s = time.perf_counter() - started
        if not changed:
            raise BenchError("virtnet: deleting the ports changed nothing")
    finally:
        db.close()
    expect_no_ports(server, "virtnet, after deleting")

    whole = run_child(VIRTNET, [sys.executable, "-c", VIRTNET_CHILD + CHILD_DRIVER], server, names)
    return Sample(create_s, delete_s, connect_s=connect_s, whole_s=whole.whole_s, import_s=whole.import_s)


def measure_vsctl(server: OvsdbServer, names: Sequence[str]) -> Sample:
    """One ovs-vsctl process per port and operation, as the walkthrough does it."""
    create = [
        server.vsctl_argv(
            "add-port",
            BRIDGE,
            name,
            "--",
            "set",
            "Interface",
            name,
            f"type={PORT_TYPE}",
            f"options:vhost-server-path={socket_path(name)}",
        )
        for name in names
    ]
    delete = [server.vsctl_argv("del-port", BRIDGE, name) for name in names]
    create_s = _time_all(create)
    expect_ports(server, names, VSCTL)
    delete_s = _time_all(delete)
    expect_no_ports(server, "ovs-vsctl, after deleting")
    return Sample(create_s, delete_s, whole_s=create_s + delete_s)


def _time_all(argvs: Sequence[list[str]]) -> float:
    started = time.perf_counter()
    for argv in argvs:
        _run(argv)
    return time.perf_counter() - started


def measure_ovsdbapp(server: OvsdbServer, names: Sequence[str], python: Path) -> Sample:
    return run_child(OVSDBAPP, [str(python), "-c", OVSDBAPP_CHILD + CHILD_DRIVER], server, names)


def run_child(tool: str, argv: list[str], server: OvsdbServer, names: Sequence[str]) -> Sample:
    """Run a child script; check the ports while it pauses; its whole time is wall time minus the pause."""
    argv = [*argv, server.remote, BRIDGE, PREFIX, str(len(names))]
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        pipe = subprocess.PIPE
        with subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=stderr, text=True) as proc:
            stdin, stdout = _pipes(proc)
            if stdout.readline().strip() != "created":
                proc.wait(CHILD_TIMEOUT_S)
                raise BenchError(f"{tool} failed creating the ports: {_tail(stderr)}")
            expect_ports(server, names, tool)  # on failure, closing stdin makes the child exit
            stdin.write("go\n")
            stdin.flush()
            out, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
        wall_s = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"{tool} failed deleting the ports ({proc.returncode}): {_tail(stderr)}")
    expect_no_ports(server, f"{tool}, after deleting")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return Sample(
        result["create_s"],
        result["delete_s"],
        connect_s=result["connect_s"],
        whole_s=wall_s - result["pause_s"],
        import_s=result["import_s"],
        cpu_s=result.get("cpu_s"),
    )


def _pipes(proc: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout


def _tail(stream: IO[str]) -> str:
    stream.seek(0)
    return stream.read().strip()[-2000:] or "no output"


# --- The ovsdbapp venv ----------------------------------------------------------------------------


def ovsdbapp_python(venv: Path) -> Path:
    """The python of a venv with ovsdbapp, created (python -m venv; pip install ovsdbapp) if missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with ovsdbapp (once) ...", file=sys.stderr)
        _run([sys.executable, "-m", "venv", str(venv)])
    # Keep the throwaway venv out of `git status`, as Python 3.13's venv does itself.
    (venv / ".gitignore").write_text("*\n")
    if subprocess.run([str(python), "-c", "import ovsdbapp"], capture_output=True, check=False).returncode:
        _run([str(python), "-m", "pip", "install", "--quiet", "ovsdbapp"])
    return python


def versions(python: Path) -> str:
    code = (
        "import sys; from importlib.metadata import version as v; "
        "print('ovsdbapp', v('ovsdbapp') + ', python-ovs', v('ovs') + ', python', sys.version.split()[0])"
    )
    return _run([str(python), "-c", code]).strip()


# --- Main ----------------------------------------------------------------------------------------


def median(samples: Sequence[Sample], field: Callable[[Sample], float | None]) -> float | None:
    values = [value for value in map(field, samples) if value is not None]
    return statistics.median(values) if values else None


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


COLUMNS: dict[str, Callable[[Sample], float | None]] = {
    "connect": lambda s: s.connect_s,
    "create": lambda s: s.create_s,
    "delete": lambda s: s.delete_s,
    "create+delete": lambda s: s.total_s,
    "whole-process": lambda s: s.whole_s,
    "imports": lambda s: s.import_s,
}


def report(results: dict[str, list[Sample]], ports: int) -> None:
    print(f"\nmedians over {len(results[VIRTNET])} rounds, {ports} ports, times in ms")
    table = [["tool", *COLUMNS]]
    for tool, samples in results.items():
        table.append([tool, *(ms(median(samples, field)) for field in COLUMNS.values())])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for tool, *cells in table:
        right = (cell.rjust(width) for cell, width in zip(cells, widths[1:], strict=True))
        print("  ".join([tool.ljust(widths[0]), *right]))
    print(
        "(ovs-vsctl: create/delete are sums over one process per port, i.e. whole-process times;\n"
        " virtnet: connect/create/delete timed in this process, whole-process = python -c doing all three;\n"
        " ovsdbapp: connect/create/delete timed inside its process, whole-process = that process;\n"
        " imports: the library's import time inside the whole process)"
    )

    def ratio(tool: str, column: str) -> float:
        theirs, ours = median(results[tool], COLUMNS[column]), median(results[VIRTNET], COLUMNS[column])
        assert theirs is not None and ours is not None
        return theirs / ours

    print("\nratios for create+delete (higher = virtnet faster):")
    for tool in (VSCTL, OVSDBAPP):
        in_process, whole = ratio(tool, "create+delete"), ratio(tool, "whole-process")
        print(f"  {tool}/virtnet: {in_process:.1f}x in-process, {whole:.1f}x whole-process")
    print("\ngoals from the issue:")
    for tool, goal in ((VSCTL, GOAL_VS_VSCTL), (OVSDBAPP, GOAL_VS_OVSDBAPP)):
        aim = f"at least {goal:g}x faster than" if goal > 1 else "no slower than"
        for column in ("create+delete", "whole-process"):
            verdict = "MET" if ratio(tool, column) >= goal else "NOT MET"
            print(f"  virtnet {aim} {tool} ({column} {ratio(tool, column):.1f}x): {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--ports", type=int, default=100, help="ports to create and delete (default 100)")
    parser.add_argument("--ovsdbapp-venv", type=Path, default=OVSDBAPP_VENV, help="venv for ovsdbapp")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.ports < 1:
        parser.error("--rounds and --ports must be at least 1, --warmup at least 0")

    missing = [tool for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vsctl") if shutil.which(tool) is None]
    if missing or not SCHEMA.exists():
        print(f"needs Open vSwitch's {', '.join(missing) or SCHEMA} (apt install openvswitch-switch)")
        return 1
    python = ovsdbapp_python(args.ovsdbapp_venv)
    print(f"ovsdbapp venv: {versions(python)}")
    print(f"virtnet venv:  python-ovs {metadata.version('ovs')}, python {sys.version.split()[0]}")

    names = port_names(args.ports)
    results: dict[str, list[Sample]] = {tool: [] for tool in TOOLS}
    server = OvsdbServer()
    try:
        server.start()
        measure: dict[str, Callable[[], Sample]] = {
            VIRTNET: lambda: measure_virtnet(server, names),
            VSCTL: lambda: measure_vsctl(server, names),
            OVSDBAPP: lambda: measure_ovsdbapp(server, names, python),
        }
        for round_ in range(-args.warmup, args.rounds):
            order = TOOLS if round_ % 2 == 0 else TOOLS[::-1]
            line = [f"round {round_ + 1}" if round_ >= 0 else "warm-up"]
            for tool in order:
                expect_no_ports(server, f"{tool}, before creating")
                sample = measure[tool]()
                line.append(f"{tool} {ms(sample.total_s)}/{ms(sample.whole_s)}")
                if round_ >= 0:
                    results[tool].append(sample)
            print("  ".join(line) + "  (create+delete/whole-process ms)", flush=True)
    finally:
        server.stop()
    report(results, args.ports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
