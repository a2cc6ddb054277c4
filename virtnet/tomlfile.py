"""Reading a TOML file the user wrote (a spec, the hosts file): its table, or one input error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from virtnet.errors import InputError


def read(path: Path, what: str, error: type[InputError], *, missing: str | None = None) -> dict[str, Any]:
    """The file's top-level table; `error` naming the path and the fix when it cannot be had.

    `what` names the file in messages ("the spec"); `missing` replaces the message for a file that
    does not exist. TOML is UTF-8 by definition, whatever the locale says.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise error(missing or f"{path}: cannot read {what} ({err.strerror}); check the path") from None
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror}); check the path") from None
    except UnicodeDecodeError as err:
        raise error(
            f"{path}: not valid TOML (byte {err.object[err.start]:#04x} at offset {err.start} is not "
            "UTF-8 text); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML ({err}); fix the syntax there") from None
