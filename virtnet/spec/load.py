"""Reading a spec: TOML or a dict -> a validated VMSpec, or a SpecError naming each field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virtnet import tomlfile
from virtnet.errors import SpecError, SpecFileError, spec_errors
from virtnet.record import Invalid, Loc
from virtnet.spec.checks import find_problems
from virtnet.spec.models import VMSpec


def load_spec_file(path: str | Path) -> VMSpec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    data = tomlfile.read(path, "the spec", SpecFileError)
    try:
        return spec_from_dict(data)
    except SpecError as err:
        raise err.with_source(str(path)) from None


def spec_from_dict(data: dict[str, Any]) -> VMSpec:
    """Validate the fields, then the cross-field rules; raise with every problem found.

    The cross-field rules need a parsed spec, so they run once every field parses: a spec with both
    kinds of mistakes shows all its field problems, and the cross-field ones once those are fixed.
    """
    try:
        spec = VMSpec.parse(data)
    except Invalid as err:
        raise spec_errors([SpecError(field_path(p.loc), p.problem, p.fix) for p in err.problems]) from None
    problems = find_problems(spec)
    if problems:
        raise spec_errors(problems)
    return spec


def field_path(loc: Loc) -> str:
    """('nics', 1, 'queues') -> 'nics[1].queues'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
