"""python-ovs's incremental JSON parser, over the standard library's C decoder.

python-ovs parses JSON-RPC with its C extension when it was built with libopenvswitch; the PyPI
package installs without it (Debian 12 has no libopenvswitch-dev to build it against), and its
pure-Python fallback reads one character per call: 60% of the time of a 100-port transaction and
most of a connection's set-up (bench/ovs_ports.py). `install()` gives python-ovs this parser instead,
with the same interface (feed/is_done/finish, errors returned by finish as strings).

Each feed retries the C decoder on everything received so far, which is quadratic in a message's
size: negligible for the messages virtnet's narrow replica receives (kilobytes; a few hundred KB for
thousands of ports still parses far faster than python-ovs's parser) and never wrong, because the
decoder decides where a value ends.
"""

from __future__ import annotations

import json
import re
from typing import Any

import ovs.json

PYTHON_OVS_PARSER = ovs.json.Parser  # python-ovs's own, before install(): the tests compare with it
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_FRAGMENT = re.compile(r"[ \t\n\r]*[\w.+\-]*")


class Parser:
    """One JSON value from a stream of chunks, as ovs.json.Parser reads it."""

    def __init__(self, check_trailer: bool = False) -> None:
        self.check_trailer = check_trailer
        self.text = ""
        self.value: Any = None
        self.end = 0
        self.error: str | None = None
        self.done = False

    def feed(self, chunk: str) -> int:
        """Take `chunk`; return how many of its characters belong to this value (all until it ends)."""
        if self.done:
            return 0
        before = len(self.text)
        self.text += chunk
        start = _SPACE.match(self.text).end()  # type: ignore[union-attr]
        if start == len(self.text):
            return len(chunk)
        try:
            self.value, self.end = _DECODER.raw_decode(self.text, start)
        except json.JSONDecodeError as err:
            if not _cut_short(self.text, err):
                self.error = f"line {err.lineno}, column {err.colno}: {err.msg}"
                self.done = True
            return len(chunk)
        self.done = True
        return self.end - before

    def is_done(self) -> bool:
        return self.done

    def finish(self) -> Any:
        """The value, or a string saying why there is none (python-ovs's convention)."""
        if self.error is not None:
            return self.error
        if not self.done:
            return "empty input stream" if not self.text.strip() else "unexpected end of input"
        if self.check_trailer and self.text[self.end :].strip():
            return "trailing garbage at end of input"
        return self.value


def _cut_short(text: str, err: json.JSONDecodeError) -> bool:
    """Whether the decoder stopped because the value goes on in a later chunk, not at a mistake.

    The chunk may end inside a string (the decoder names where it started), a \\u escape, a number
    ("2.", "-", "1e") or a literal ("tru"): then nothing but that fragment follows the error.
    """
    if err.msg.startswith("Unterminated string"):
        return True
    if err.msg.startswith("Invalid \\uXXXX escape"):
        return len(text) - err.pos <= 6
    return _FRAGMENT.fullmatch(text, err.pos) is not None


def install() -> None:
    """Make python-ovs parse with this module, unless it has its own C parser."""
    if ovs.json.PARSER == ovs.json.PARSER_PY:
        ovs.json.Parser = Parser
