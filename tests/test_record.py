"""virtnet.record: the checks the spec and the hosts file rest on, each told apart from its neighbours."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest

from virtnet.record import Field, Invalid, Parse, Problem, Record, Secret


def _even(value: object) -> int:
    if not isinstance(value, int) or value % 2:
        raise ValueError(f"{value!r} is odd; use an even number")
    return value


Even = Annotated[int, Parse(_even, lambda n: f"{n}!")]


class Leaf(Record):
    size: Even
    kind: Literal["a", "b"] = "a"


class Cat(Record):
    type: Literal["cat"]
    lives: int = Field(default=9, ge=1, le=9)


class Dog(Record):
    type: Literal["dog"]
    good: bool = True


Pet = Annotated[Cat | Dog, Field(discriminator="type")]


class Root(Record):
    name: str
    count: int = Field(ge=1)
    spare: int | None = Field(default=None, ge=0)
    leaf: Leaf | None = None
    leaves: list[Leaf] = []
    pins: dict[Annotated[int, Field(ge=0)], str] = {}
    pets: list[Pet] = []
    sudo: bool | str = False
    password: Secret | None = None


def problems(data: object) -> list[Problem]:
    with pytest.raises(Invalid) as caught:
        Root.parse(data)
    return caught.value.problems


def test_every_problem_at_once_in_field_order_with_its_path() -> None:
    found = problems({"count": 0, "leaves": [{"size": 2}, {"size": 3, "kind": "c"}], "colour": 1})
    assert found == [
        Problem(("name",), "is required", "add it"),
        Problem(("count",), "0 is out of range", "use a value at least 1"),
        Problem(("leaves", 1, "size"), "3 is odd", "use an even number"),
        Problem(("leaves", 1, "kind"), "'c' is not allowed", "use one of 'a' or 'b'"),
        Problem(("colour",), "is not a known field", "remove it (known: name, count, spare, leaf, leaves, "
                "pins, pets, sudo, password)"),
    ]  # fmt: skip


def test_an_unknown_field_close_to_a_known_one_is_named() -> None:
    (found,) = problems({"name": "x", "count": 1, "leaf": {"size": 2, "knd": "a"}})
    assert found == Problem(("leaf", "knd"), "is not a known field", "did you mean 'kind'?")


def test_tagged_union_names_the_tag_problem_and_checks_the_member() -> None:
    found = problems(
        {"name": "x", "count": 1, "pets": [{"type": "cow"}, {"good": True}, {"type": "cat", "lives": 10}]}
    )
    assert found == [
        Problem(("pets", 0), "type 'cow' is unknown", "use one of 'cat' or 'dog'"),
        Problem(("pets", 1), "has no type", "add type = 'cat' or 'dog'"),
        Problem(("pets", 2, "lives"), "10 is out of range", "use a value at least 1 and at most 9"),
    ]
    root = Root.parse({"name": "x", "count": 1, "pets": [{"type": "dog"}, {"type": "cat"}]})
    assert [type(p) for p in root.pets] == [Dog, Cat] and root.pets[1].lives == 9


def test_scalars_are_not_coerced_across_kinds() -> None:
    found = problems({"name": 5, "count": True, "spare": "x", "sudo": 3})
    assert [(p.loc, p.problem) for p in found] == [
        (("name",), "5 is not text"),
        (("count",), "True is not a whole number"),
        (("spare",), "'x' is not a whole number"),
        (("sudo",), "3 is not text"),
    ]


def test_toml_table_keys_become_the_numbers_they_spell_and_keep_their_bounds() -> None:
    root = Root.parse({"name": "x", "count": 1, "pins": {"0": "a", "3": "b"}})
    assert root.pins == {0: "a", 3: "b"}
    assert problems({"name": "x", "count": 1, "pins": {"-1": "a"}}) == [
        Problem(("pins", "-1"), "'-1' is out of range", "use a value at least 0")
    ]


def test_optional_bounds_allow_none_and_unions_take_the_first_that_fits() -> None:
    root = Root.parse({"name": "x", "count": 1, "spare": None, "sudo": "ALL"})
    assert root.spare is None and root.sudo == "ALL"
    assert Root.parse({"name": "x", "count": 1, "sudo": True}).sudo is True


def test_dump_is_canonical_masks_secrets_and_leaves_out_what_it_is_told() -> None:
    root = Root.parse(
        {
            "name": "x",
            "count": 2,
            "leaf": {"size": 4},
            "leaves": [{"size": 2, "kind": "b"}],
            "password": "hunter2",
        }
    )
    assert root.password is not None and root.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(root) and "hunter2" not in str(root.dump())
    assert root.dump(exclude_defaults=True) == {
        "name": "x",
        "count": 2,
        "leaf": {"size": "4!"},
        "leaves": [{"size": "2!", "kind": "b"}],
        "password": Secret.MASK,
    }
    assert root.dump(exclude_defaults=True, exclude={"password": True, "leaves": {"__all__": {"kind"}}}) == {
        "name": "x",
        "count": 2,
        "leaf": {"size": "4!"},
        "leaves": [{"size": "2!"}],
    }


def test_records_are_immutable_values_and_replace_makes_a_changed_copy() -> None:
    one = Root.parse({"name": "x", "count": 1, "leaves": [{"size": 2}]})
    two = Root(name="x", count=1, leaves=[{"size": 2}])
    assert one == two and hash(one) == hash(two)
    with pytest.raises(AttributeError, match="immutable"):
        one.count = 3  # type: ignore[misc]
    three = one.replace(count=3)
    assert (one.count, three.count, three.leaves) == (1, 3, one.leaves)
    assert Root(name="x", count=1).leaves is not Root(name="y", count=1).leaves  # no shared default
    with pytest.raises(Invalid):
        Root(name="x", count=0)
