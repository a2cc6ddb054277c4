"""What `virtnet list` and `virtnet xml` print: shared by their typer commands and the launcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtnet.errors import InputError, raise_all
from virtnet.units import KIB, format_size

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from virtnet.spec import VMSpec

FORWARD_STYLES = ("qemu-args", "passt")

COLUMNS = ("Id", "Name", "State", "Type", "vCPUs", "Memory", "Managed")


def list_output(uri: str | None, *, include_inactive: bool, as_json: bool) -> str:
    """Connect, read each domain, and return the table (or JSON) `virtnet list` prints."""
    from virtnet.inventory import list_domains
    from virtnet.virt.host import Host

    with Host.open(uri) as host:
        views = list_domains(host, include_inactive=include_inactive)
    if as_json:
        import json

        return json.dumps([v.as_dict() for v in views], indent=2) + "\n"
    rows = [
        [
            "-" if v.id is None else str(v.id),
            v.name,
            v.state,
            v.virt_type,
            str(v.vcpus),
            format_size(v.memory_kib * KIB),
            "virtnet" if v.managed else "unmanaged",
        ]
        for v in views
    ]
    return table([list(COLUMNS), *rows])


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, as `virsh list` (and rich's borderless table) print them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def forward_problem(port_forward: str) -> InputError | None:
    if port_forward not in FORWARD_STYLES:
        return InputError(f"--port-forward: {port_forward!r} is unknown; use 'passt' or 'qemu-args'")
    return None


def load_spec(path: Path, warn: Callable[[str], None]) -> VMSpec:
    """Load a spec and pass each of its warnings, as the line the CLI prints, to `warn`."""
    from virtnet.spec import load_spec_file
    from virtnet.spec.checks import find_warnings

    spec = load_spec_file(path)
    for warning in find_warnings(spec):
        warn(f"virtnet: warning: {path}: {warning}")
    return spec


def domain_xml(
    path: Path,
    *,
    virt_type: str | None,
    port_forward: str,
    warn: Callable[[str], None],
    show_secrets: bool = False,
) -> str:
    """The validated domain XML `virtnet xml` prints for the spec at `path` (needs no libvirt).

    Bad options and every problem of the spec are reported together.
    """
    from virtnet.virt.virttype import override_problem, resolve_virt_type

    problems = [err for err in (forward_problem(port_forward), override_problem(virt_type)) if err]
    try:
        spec = load_spec(path, warn)
    except InputError as err:
        problems.append(err)
    raise_all(problems)
    from virtnet.domxml import HostChoices, render_domain, validate_domain

    choices = HostChoices(
        virt_type=resolve_virt_type(spec.virt_type, None, virt_type).virt_type,
        forward_style=port_forward,  # type: ignore[arg-type]
    )
    domain = render_domain(spec, choices)
    validate_domain(domain)
    if not show_secrets:
        from virtnet.domxml.secrets import SHOW_HOW, hide_passwords

        if hide_passwords(domain):
            warn(SHOW_HOW)
    return domain.to_xml()


def print_output(output: Callable[[], str]) -> int:
    """The launcher's exit path: print what `output` returns, or a virtnet error as virtnet.cli does."""
    import sys

    from virtnet.errors import VirtnetError

    try:
        text = output()
    except VirtnetError as err:
        sys.stderr.write("".join(line + "\n" for line in err.report()))
        return err.exit_code
    sys.stdout.write(text)
    return 0
