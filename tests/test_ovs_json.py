"""virtnet.ovs.fastjson reads JSON-RPC streams as python-ovs's own parser does, wherever chunks split."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager

import ovs.json
import pytest

from virtnet.ovs import connection, fastjson

MESSAGES = [
    '{"id":1,"result":[{"uuid":["uuid","a{b}c"],"s":"q\\"}x","n":[1,2.5,-3e2,true,false,null]}]}',
    '{"method":"update3","params":[null,"0",{"Port":{"x":{"insert":{"name":"p\\u00e9 \\\\"}}}}]}',
    "[]",
    '{"a":"\\\\","b":{}}',
]
STREAM = "\n".join(MESSAGES) + " "


def read(parser: type, chunks: list[str]) -> list[object]:
    """What python-ovs's jsonrpc loop makes of a stream: feed, and take each finished value."""
    values: list[object] = []
    parser_now = None
    for chunk in chunks:
        while chunk:
            parser_now = parser_now or parser()
            chunk = chunk[parser_now.feed(chunk) :]
            if not parser_now.is_done():
                break
            values.append(parser_now.finish())
            parser_now = None
    return values


@contextmanager
def python_ovs_parser() -> Iterator[None]:
    """python-ovs's parser names its class through the module (super(Parser, cls)): put it back."""
    ovs.json.Parser = fastjson.PYTHON_OVS_PARSER
    try:
        yield
    finally:
        fastjson.install()


@pytest.mark.parametrize("seed", range(40))
def test_any_split_reads_like_python_ovs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(0, 15)))
        chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        expected = [json.loads(m) for m in MESSAGES]
        assert read(fastjson.Parser, chunks) == expected, chunks
        with python_ovs_parser():
            assert read(fastjson.PYTHON_OVS_PARSER, chunks) == expected


def test_every_single_character_split() -> None:
    chunks = list(STREAM)
    assert read(fastjson.Parser, chunks) == [json.loads(m) for m in MESSAGES]


@pytest.mark.parametrize("broken", ['{"a": ]', '{"a" 1}', '{"a":tru }'])
def test_broken_json_is_an_error_string_as_in_python_ovs(broken: str) -> None:
    parser = fastjson.Parser()
    parser.feed(broken)
    assert parser.is_done()
    assert isinstance(parser.finish(), str)


def test_end_of_input_is_an_error_string() -> None:
    parser = fastjson.Parser()
    parser.feed('{"a": [1, 2')
    assert not parser.is_done()
    assert parser.finish() == "unexpected end of input"
    assert fastjson.Parser().finish() == "empty input stream"


def test_installed_where_python_ovs_has_no_c_parser() -> None:
    assert connection.fastjson is fastjson
    if ovs.json.PARSER == ovs.json.PARSER_PY:
        assert ovs.json.Parser is fastjson.Parser
