import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtnet.units import GIB, KIB, MIB, format_cpuset, format_size, parse_cpuset, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4GiB", 4 * GIB),
        ("4096MiB", 4 * GIB),
        ("2M", 2 * MIB),
        ("1G", GIB),
        ("512 KiB", 512 * KIB),
        ("10B", 10),
    ],
)
def test_parse_size_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("4GB", "ambiguous"),
        (4096, "no unit"),
        ("4096", "not a size"),
        ("4 parsecs", "unknown unit"),
        (True, "no unit"),
    ],
)
def test_parse_size_refuses_with_a_fix(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_size(value)


@given(st.integers(min_value=1, max_value=2**50))
def test_format_size_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,^2,8", {0, 1, 3, 8}), ("5", {5}), (3, {3}), (" 1 , 2 ", {1, 2}), ("0-1,0-1", {0, 1})],
)
def test_parse_cpuset(text: object, cpus: set[int]) -> None:
    assert parse_cpuset(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "3-1", "1-", "^1", "0-2,^0-2", "1,,2", None])
def test_parse_cpuset_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_cpuset(text)


@given(st.frozensets(st.integers(min_value=0, max_value=256), min_size=1))
def test_cpuset_round_trips_canonically(cpus: frozenset[int]) -> None:
    text = format_cpuset(cpus)
    assert parse_cpuset(text) == cpus
    assert format_cpuset(parse_cpuset(text)) == text


def test_format_cpuset_merges_runs() -> None:
    assert format_cpuset({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
