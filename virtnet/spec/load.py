"""Reading a spec: TOML or a dict -> a validated VMSpec, or a SpecError naming each field and fix."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from virtnet.errors import SpecError, SpecFileError, spec_errors
from virtnet.spec.checks import find_problems
from virtnet.spec.models import VMSpec

# The tags of the NIC union appear in pydantic's error locations but are not fields.
NIC_TYPES = ("user", "vhostuser")


def load_spec_file(path: str | Path) -> VMSpec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecFileError(f"{path}: cannot read the spec ({err.strerror}); check the path") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecFileError(f"{path}: not valid TOML ({err}); fix the syntax there") from None
    try:
        return spec_from_dict(data)
    except SpecError as err:
        raise err.with_source(str(path)) from None


def spec_from_dict(data: dict[str, Any]) -> VMSpec:
    """Validate shapes with pydantic, then the cross-field rules; raise with every problem found.

    The cross-field rules need a parsed spec, so they run once every field parses: a spec with both
    kinds of mistakes shows all its field problems, and the cross-field ones once those are fixed.
    """
    try:
        spec = VMSpec.model_validate(data)
    except ValidationError as err:
        raise spec_errors([_spec_error(detail) for detail in err.errors(include_url=False)]) from None
    problems = find_problems(spec)
    if problems:
        raise spec_errors(problems)
    return spec


def _spec_error(detail: ErrorDetails) -> SpecError:
    problem, fix = _explain(detail)
    return SpecError(_field_path(detail["loc"]), problem, fix)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in NIC_TYPES and path.endswith("]"):
            continue  # the discriminated union's branch name is not a field
        else:
            path += f".{part}" if path else str(part)
    return path


def _explain(detail: ErrorDetails) -> tuple[str, str]:
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    value = detail.get("input")
    if kind == "missing":
        return "is required", "add it"
    if kind == "extra_forbidden":
        return "is not a known field", _did_you_mean(detail["loc"])
    if kind == "literal_error":
        return f"{value!r} is not allowed", f"use one of {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        return f"type {ctx.get('tag')!r} is unknown", f"use one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "has no type", "add type = 'user' or type = 'vhostuser'"
    if kind == "value_error":
        message = str(ctx.get("error", detail["msg"]))
        problem, _, fix = message.partition("; ")
        return problem, fix
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = {k: v for k, v in ctx.items() if k in ("ge", "le", "gt", "lt")}
        words = {"ge": "at least", "le": "at most", "gt": "above", "lt": "below"}
        limit = " and ".join(f"{words[k]} {v}" for k, v in bounds.items())
        return f"{value!r} is out of range", f"use a value {limit}"
    return f"{value!r}: {detail['msg'].lower()}", "see the spec reference in the README"


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    import difflib  # only errors need it

    name = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return "remove it"
    close = difflib.get_close_matches(name, list(model.model_fields), n=1)
    return f"did you mean {close[0]!r}?" if close else f"remove it (known: {', '.join(model.model_fields)})"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class a location points into, following VMSpec's field annotations."""
    models: list[type[BaseModel]] = [VMSpec]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in models if _type_tag(m) == part]
        if tagged:
            models = tagged
            continue
        models = [
            inner
            for m in models
            if part in m.model_fields
            for inner in _models_in(m.model_fields[part].annotation)
        ]
    return models[0] if len(models) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation such as list[X], X | None or a tagged union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _type_tag(model: type[BaseModel]) -> str | None:
    """'user' for UserNic: the value of a tagged union member's Literal `type` field."""
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])
