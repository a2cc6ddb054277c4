"""The `virtnet` command: answers --version, --help, list and xml itself, and hands the rest to typer.

typer and the click it vendors take ~110 ms to import on the 2-core machine the start-up budgets are
measured on (bench/startup.py), and typer converts each argument with a pydantic TypeAdapter: more
than the whole budget of `virtnet --version` (60 ms) or `--help` (100 ms), and three times what all
of `virsh list` takes. So these, in the exact forms people type, are answered here: --help with the
text typer renders (helptext.py, compared with typer's own by tests/test_startup.py), `list` and
`xml SPEC` with the functions their typer commands call (virtnet.outputs). Every other argv,
including any variant or mistake in those, goes to the typer app in virtnet.cli, so what virtnet
accepts, refuses and prints stays typer's.
"""

from __future__ import annotations

import os
import sys

from virtnet import __version__

# No other import at the top: even `typing` (with the re, enum and collections it loads) is a
# measurable part of `virtnet --version` here.


def run(prog: str | None = None) -> None:
    """Console-script entry point; `prog` is the name help shows (default: how we were called)."""
    try:
        code = answer(sys.argv[1:], prog or os.path.basename(sys.argv[0]))
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # as click says it
        code = 1
    if code is None:
        from virtnet.cli import run as run_typer

        run_typer()
        return
    sys.exit(code)


def answer(argv: list[str], prog: str) -> int | None:
    """Handle argv here and return the exit status, or None when typer must."""
    if argv == ["--version"]:
        sys.stdout.write(f"virtnet {__version__}\n")
        return 0
    if argv == ["--help"]:
        from virtnet import helptext

        if terminal_columns() < helptext.WIDTH:
            return None  # click wraps to a narrower terminal: let it
        sys.stdout.write(helptext.TEXT.replace("Usage: virtnet ", f"Usage: {prog} ", 1))
        return 0
    found = split_global_options(argv)
    if found is None:
        return None
    uri, command = found
    if command[:1] == ["list"] and set(command[1:]) <= {"--all", "--json"}:
        return _list(uri, include_inactive="--all" in command, as_json="--json" in command)
    if len(command) == 2 and command[0] == "xml" and not command[1].startswith("-"):
        return _xml(command[1])
    return None


def terminal_columns() -> int:
    """The width click formats help for: $COLUMNS, else stdout's terminal, else 80 (shutil's rules)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def split_global_options(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """(-c's URI, the subcommand and its arguments) for `[-c URI] [--ovsdb REMOTE] COMMAND ...`."""
    uri: str | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        option, has_value, value = argv[i].partition("=")
        if option in ("--connect", "--ovsdb") and has_value:
            i += 1
        elif argv[i] in ("-c", "--connect", "--ovsdb") and i + 1 < len(argv):
            option, value = argv[i], argv[i + 1]
            if value.startswith("-"):
                return None  # click's reading of an option value that looks like an option: typer's
            i += 2
        else:
            return None
        if option in ("-c", "--connect"):
            uri = value
        elif _bad_remote(value):
            return None  # typer's main callback reports it
    return (uri, argv[i:]) if i < len(argv) else None


def _bad_remote(value: str) -> bool:
    from virtnet.ovs import remote

    return remote.problem(value) is not None


def _list(uri: str | None, include_inactive: bool, as_json: bool) -> int:
    from virtnet.outputs import list_output, print_output

    return print_output(lambda: list_output(uri, include_inactive=include_inactive, as_json=as_json))


def _xml(path: str) -> int:
    from pathlib import Path

    from virtnet.outputs import domain_xml, print_output

    def warn(line: str) -> None:
        sys.stderr.write(line + "\n")

    return print_output(lambda: domain_xml(Path(path), virt_type=None, port_forward="qemu-args", warn=warn))
