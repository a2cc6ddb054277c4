"""Records read from TOML or JSON: declared once as annotated classes, checked field by field with
every problem reported at once under its path, and written back in canonical form.

The spec and the hosts file used pydantic for this. Importing pydantic and building the spec's
models costs more than half of a whole `virtnet xml` (~570 M of its ~816 M instructions, and twice
what the issue's start-up budget allows: README, "Start-up"), and the spec needs a small part of it:
nested tables, lists and maps, literals, optional values, one tagged union, number bounds, and field
types that are parsers of the user's text (`spec/types.py`). That part is here, with the error
wording virtnet wants (the problem, then the fix) made where the mistake is seen, not translated
back from another library's error codes.

A field is an annotation on a `Record` subclass, with a default or `Field(...)`:

    class Cpu(Record):
        count: int = Field(ge=1, le=4096)
        mode: Literal["auto", "host-passthrough"] = "auto"
        pinning: Pinning | None = None

`Annotated[T, Parse(parse, dump)]` makes a field type out of a parser: `parse` takes the raw value
and returns T or raises ValueError("<problem>; <fix>"); `dump` gives the canonical form back.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, Union
from uuid import UUID

R = TypeVar("R", bound="Record")
Loc = tuple[str | int, ...]


class Problem(NamedTuple):
    """One mistake: where (the path of keys and list indexes), what is wrong, and how to fix it."""

    loc: Loc
    problem: str
    fix: str


class Invalid(ValueError):
    """The data does not fit the record; `problems` holds every mistake found, in field order."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.problem}" for p in problems))
        self.problems = problems


class Secret:
    """A string that never shows itself in a repr, a log or a dump."""

    __slots__ = ("_value",)
    MASK = "**********"

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.MASK!r})"

    def __str__(self) -> str:
        return self.MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Parse:
    """Annotated metadata: build the field's value from the raw one; `dump` writes it back."""

    parse: Callable[[Any], Any]
    dump: Callable[[Any], Any] | None = None


_MISSING: Any = object()
_BAD: Any = object()  # what a check returns after recording its problem


class FieldInfo:
    """A field's default and bounds (and, on a union of records, the tag that tells them apart)."""

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        default_factory: Callable[[], Any] | None = None,
        ge: float | None = None,
        le: float | None = None,
        gt: float | None = None,
        discriminator: str | None = None,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
        self.discriminator = discriminator
        self.annotation: Any = None  # the resolved type, set when the record class is first used

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def make_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        # A fresh list or dict each time: records share no mutable default.
        return copy.copy(self.default) if isinstance(self.default, list | dict | set) else self.default


def Field(default: Any = _MISSING, **options: Any) -> Any:
    """A field's default (or default_factory), bounds and union tag: FieldInfo's arguments.

    Typed Any so that `count: int = Field(ge=1)` type-checks, as with dataclasses.field().
    """
    return FieldInfo(default, **options)


class Record:
    """An immutable, validated record; subclasses declare fields as annotations (see the module)."""

    __fields: ClassVar[dict[str, FieldInfo] | None] = None

    def __init__(self, **data: Any) -> None:
        problems: list[Problem] = []
        values = type(self)._values(data, (), problems)
        if values is None:
            raise Invalid(problems)
        self.__dict__.update(values)

    @classmethod
    def parse(cls: type[R], data: Any) -> R:
        """The record from TOML/JSON data; Invalid with every problem when it does not fit."""
        problems: list[Problem] = []
        record = _check(cls, data, (), problems)
        if problems:
            raise Invalid(problems)
        return typing.cast(R, record)

    @classmethod
    def fields(cls) -> dict[str, FieldInfo]:
        """The fields in declaration order (a base class's first), their annotations resolved."""
        found = cls.__dict__.get("_Record__fields")
        if found is None:
            found = {}
            hints = typing.get_type_hints(cls, include_extras=True)
            for klass in reversed(cls.__mro__):
                for name in inspect.get_annotations(klass):
                    if name.startswith("_") or typing.get_origin(hints[name]) is ClassVar:
                        continue
                    declared = getattr(cls, name, _MISSING)
                    info = declared if isinstance(declared, FieldInfo) else FieldInfo(declared)
                    info.annotation = hints[name]
                    found[name] = info
            cls.__fields = found
        return found

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed; the new values must already be of the fields' types."""
        unknown = set(changes) - set(self.fields())
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, **changes)
        return new

    def dump(
        self, *, exclude_defaults: bool = False, exclude: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The record as JSON-ready data in canonical form (secrets masked).

        `exclude` names fields to leave out: {"graphics": {"password"}}, with "__all__" for every
        item of a list.
        """
        skip = _as_dict(exclude)
        data: dict[str, Any] = {}
        for name, info in self.fields().items():
            value = self.__dict__[name]
            inner = skip.get(name)
            if inner is True or (exclude_defaults and not info.required and value == info.make_default()):
                continue
            data[name] = _dump(info.annotation, value, exclude_defaults, _as_dict(inner))
        return data

    @classmethod
    def _values(cls, data: dict[str, Any], loc: Loc, problems: list[Problem]) -> dict[str, Any] | None:
        """The fields' values from `data`, or None with the problems recorded."""
        fields = cls.fields()
        before = len(problems)
        values: dict[str, Any] = {}
        for name, info in fields.items():
            if name in data:
                values[name] = _check(info.annotation, data[name], (*loc, name), problems, info)
            elif info.required:
                problems.append(Problem((*loc, name), "is required", "add it"))
            else:
                values[name] = info.make_default()
        for key in data:
            if key not in fields:
                problems.append(Problem((*loc, key), "is not a known field", _did_you_mean(str(key), fields)))
        return values if len(problems) == before else None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), _frozen(self.__dict__)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name in self.fields())
        return f"{type(self).__name__}({shown})"


def _check(tp: Any, value: Any, loc: Loc, problems: list[Problem], info: FieldInfo | None = None) -> Any:
    """`value` as type `tp`, or _BAD with the problem recorded under `loc`."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return _annotated(base, [*meta, info] if info else meta, value, loc, problems)
    if info is not None and (info.bounds or info.discriminator):
        return _annotated(tp, [info], value, loc, problems)
    if origin is Union or origin is types.UnionType:
        return _union(typing.get_args(tp), value, loc, problems)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed and type(value) in {type(a) for a in allowed}:
            return value
        return _bad(problems, loc, f"{value!r} is not allowed", f"use one of {_either(allowed)}")
    if origin is list:
        if not isinstance(value, list | tuple):
            return _bad(problems, loc, f"{value!r} is not a list", "write it in brackets, e.g. [ ... ]")
        (item,) = typing.get_args(tp)
        items = [_check(item, v, (*loc, i), problems) for i, v in enumerate(value)]
        return _BAD if _BAD in items else items
    if origin is dict:
        if not isinstance(value, dict):
            return _bad(problems, loc, f"{value!r} is not a table", "write it as key = value pairs")
        key_type, value_type = typing.get_args(tp)
        pairs = [
            (_check(key_type, k, (*loc, k), problems), _check(value_type, v, (*loc, k), problems))
            for k, v in value.items()
        ]
        return _BAD if any(_BAD in pair for pair in pairs) else dict(pairs)
    if isinstance(tp, type) and issubclass(tp, Record):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            return _bad(
                problems, loc, f"{value!r} is not a table", "write it as a [table] of key = value pairs"
            )
        values = tp._values(value, loc, problems)
        if values is None:
            return _BAD
        record = object.__new__(tp)
        record.__dict__.update(values)
        return record
    return _scalar(tp, value, loc, problems)


def _annotated(base: Any, meta: list[Any], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    bounds: dict[str, float] = {}
    for item in meta:
        if isinstance(item, FieldInfo) and item.discriminator:
            return _tagged(typing.get_args(base), item.discriminator, value, loc, problems)
        if isinstance(item, FieldInfo):
            bounds.update(item.bounds)
    parser = next((item for item in meta if isinstance(item, Parse)), None)
    if parser is not None:
        try:
            result = parser.parse(value)
        except ValueError as err:
            problem, _, fix = str(err).partition("; ")
            return _bad(problems, loc, problem, fix)
        return Secret(result) if base is Secret else result
    result = _check(base, value, loc, problems)
    if result is _BAD or result is None or not bounds:
        return result
    words = {"ge": "at least", "gt": "above", "le": "at most"}
    broken = (
        ("ge" in bounds and result < bounds["ge"])
        or ("gt" in bounds and result <= bounds["gt"])
        or ("le" in bounds and result > bounds["le"])
    )
    if broken:
        limits = " and ".join(f"{words[k]} {v}" for k, v in bounds.items())
        return _bad(problems, loc, f"{value!r} is out of range", f"use a value {limits}")
    return result


def _union(members: tuple[Any, ...], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if value is None and type(None) in members:
        return None
    options = [m for m in members if m is not type(None)]
    if len(options) == 1:
        return _check(options[0], value, loc, problems)
    tried: list[list[Problem]] = []
    for member in options:  # the first that fits, as the annotation orders them
        found: list[Problem] = []
        result = _check(member, value, loc, found)
        if not found:
            return result
        tried.append(found)
    # Report the alternative whose shape the value has (a list for list[...]), else the last one.
    shaped = [f for m, f in zip(options, tried, strict=True) if _shape_fits(m, value)]
    problems.extend(shaped[0] if shaped else tried[-1])
    return _BAD


def _tagged(members: tuple[Any, ...], tag: str, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    """A union of records told apart by one Literal field, e.g. a NIC's `type`."""
    by_tag = {typing.get_args(m.fields()[tag].annotation)[0]: m for m in members}
    if not isinstance(value, dict):
        return _bad(problems, loc, f"{value!r} is not a table", "write it as a table with a type")
    if tag not in value:
        return _bad(problems, loc, f"has no {tag}", f"add {tag} = {_either(tuple(by_tag))}")
    model = by_tag.get(value[tag])
    if model is None:
        return _bad(problems, loc, f"{tag} {value[tag]!r} is unknown", f"use one of {_either(tuple(by_tag))}")
    return _check(model, value, loc, problems)


def _scalar(tp: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if tp is Any or (isinstance(tp, type) and isinstance(value, tp) and not isinstance(value, bool)):
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        return _bad(problems, loc, f"{value!r} is not true or false", "write true or false, without quotes")
    if tp is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)  # table keys are strings in TOML: `vcpus = { "0" = "2" }`
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _bad(problems, loc, f"{value!r} is not a whole number", "write digits only, e.g. 4")
    if tp is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _bad(problems, loc, f"{value!r} is not a number", "write a number, e.g. 1250")
    if tp is str:
        return _bad(problems, loc, f"{value!r} is not text", "write it in quotes")
    if tp is Secret:
        if isinstance(value, str):
            return Secret(value)
        return _bad(problems, loc, "is not text", "write it in quotes")
    parsers: dict[Any, tuple[Callable[[Any], Any], str]] = {
        UUID: (UUID, "write it like '2b1a6f3c-5d0e-4f8a-9c1b-7e2d3a4b5c6d'"),
        IPv4Address: (IPv4Address, "write it like '10.0.0.1'"),
        Path: (Path, "write a path in quotes"),
    }
    if tp in parsers:
        make, fix = parsers[tp]
        if isinstance(value, str):
            try:
                return make(value)
            except ValueError:
                pass
        return _bad(problems, loc, f"{value!r} is not a valid {tp.__name__}", fix)
    raise TypeError(f"virtnet.record cannot check {tp!r}")  # a declaration this module does not support


def _shape_fits(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if origin is typing.Annotated:
        return _shape_fits(typing.get_args(tp)[0], value)
    if origin is list:
        return isinstance(value, list | tuple)
    if isinstance(origin, type):
        return isinstance(value, origin) and not (origin is int and isinstance(value, bool))
    return False


def _dump(tp: Any, value: Any, exclude_defaults: bool, exclude: dict[str, Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, Record):
        return value.dump(exclude_defaults=exclude_defaults, exclude=exclude)
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = [m for m in typing.get_args(tp) if m is not type(None)]
        tp = next((m for m in options if _shape_fits(m, value)), options[0])
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        parser = next((item for item in meta if isinstance(item, Parse)), None)
        if parser is not None and parser.dump is not None:
            return parser.dump(value)
        return _dump(base, value, exclude_defaults, exclude)
    if isinstance(value, list):
        item_type = (typing.get_args(tp) or (Any,))[0]
        every = _as_dict(exclude.get("__all__"))
        return [_dump(item_type, v, exclude_defaults, every) for v in value]
    if isinstance(value, dict):
        key_type, value_type = typing.get_args(tp) or (Any, Any)
        return {
            str(_dump(key_type, k, exclude_defaults, {})): _dump(value_type, v, exclude_defaults, {})
            for k, v in value.items()
        }
    if isinstance(value, Secret):
        return Secret.MASK
    if isinstance(value, UUID | IPv4Address | Path):
        return str(value)
    return value


def _as_dict(exclude: Any) -> dict[str, Any]:
    if isinstance(exclude, set):
        return dict.fromkeys(exclude, True)
    return exclude if isinstance(exclude, dict) else {}


def _bad(problems: list[Problem], loc: Loc, problem: str, fix: str) -> Any:
    problems.append(Problem(loc, problem, fix))
    return _BAD


def _either(values: tuple[Any, ...]) -> str:
    """ "'a', 'b' or 'c'"."""
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _did_you_mean(name: str, fields: dict[str, FieldInfo]) -> str:
    import difflib  # only mistakes need it

    close = difflib.get_close_matches(name, list(fields), n=1)
    return f"did you mean {close[0]!r}?" if close else f"remove it (known: {', '.join(fields)})"


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value
