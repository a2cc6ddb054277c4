"""Field types of the spec: each parses the user's text once and serializes back canonically."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, SecretStr

from virtnet.units import format_cpuset, format_size, parse_cpuset, parse_size


def _mac(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", value):
        raise ValueError(f"{value!r} is not a MAC address; write six hex pairs like '52:54:00:12:34:56'")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast MAC; the first octet must be even, e.g. '52:54:00:...'")
    return value.lower()


def _name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", value):
        raise ValueError(
            f"{value!r} is not a usable name; use 1-64 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    return value


def _absolute_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value or "," in value:
        raise ValueError(f"{value!r} is not an absolute path without commas; write e.g. '/var/lib/virtnet/x'")
    return value


# What XML 1.0 cannot carry at all: control characters but tab, newline and CR; surrogates; FFFE/FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text; write a string")
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"contains {bad.group()!r}, which XML cannot hold; remove it")
    return value


def _secret(value: object) -> str:
    # The value never appears in the message: errors are printed and logged.
    if not isinstance(value, str):
        raise ValueError("must be a string; write it in quotes")
    if _NOT_XML.search(value):
        raise ValueError("contains a control character, which XML cannot hold; remove it")
    return value


def _title(value: object) -> str:
    # libvirt's schema wants one non-empty line: virt-manager's list shows it in place of the name.
    text = _text(value)
    if not text.strip() or "\n" in text or "\r" in text or len(text) > 200:
        raise ValueError(f"{text!r} is not a title; write one line of 1-200 characters")
    return text


# Sizes are bytes in Python and canonical binary strings ('4GiB') in TOML/JSON.
Size = Annotated[int, BeforeValidator(parse_size), PlainSerializer(format_size, return_type=str)]
# CPU sets are frozensets in Python and canonical libvirt cpusets ('0-2,5') in TOML/JSON.
CpuSet = Annotated[
    frozenset[int], BeforeValidator(parse_cpuset), PlainSerializer(format_cpuset, return_type=str)
]
Mac = Annotated[str, BeforeValidator(_mac)]
Name = Annotated[str, BeforeValidator(_name)]
AbsolutePath = Annotated[str, BeforeValidator(_absolute_path)]
Title = Annotated[str, BeforeValidator(_title)]
Text = Annotated[str, BeforeValidator(_text)]
Secret = Annotated[SecretStr, BeforeValidator(_secret)]
