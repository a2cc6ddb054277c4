"""The `virtnet` command: answers --version, --help and `list` itself, and hands the rest to typer.

typer and the click it vendors take ~110 ms to import on the 2-core machine the start-up budgets are
measured on (bench/startup.py): more than the whole budget of `virtnet --version` (60 ms) or
`--help` (100 ms), and three times what all of `virsh list` takes. So these three, in the exact forms
people type, are answered here: --help with the text typer renders (helptext.py, compared with
typer's own by tests/test_startup.py), `list` with the function the typer command calls. Every other
argv, including any variant or mistake in those, goes to the typer app in virtnet.cli, so what
virtnet accepts, refuses and prints stays typer's.
"""

from __future__ import annotations

import os
import sys

from virtnet import __version__


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
    listing = parse_list(argv)
    if listing is not None:
        return _list(*listing)
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


def parse_list(argv: list[str]) -> tuple[str | None, bool, bool] | None:
    """(uri, --all, --json) for `[-c URI] [--ovsdb REMOTE] list [--all] [--json]`, else None."""
    uri: str | None = None
    i = 0
    while i < len(argv) and argv[i] != "list":
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
    flags = argv[i + 1 :]
    if i == len(argv) or not set(flags) <= {"--all", "--json"}:
        return None
    return uri, "--all" in flags, "--json" in flags


def _list(uri: str | None, include_inactive: bool, as_json: bool) -> int:
    from virtnet.errors import VirtnetError
    from virtnet.listing import list_output

    try:
        text = list_output(uri, include_inactive=include_inactive, as_json=as_json)
    except VirtnetError as err:  # virtnet.cli's exit path, in the same words
        sys.stderr.write("".join(line + "\n" for line in err.report()))
        return err.exit_code
    sys.stdout.write(text)
    return 0
