"""``quick_init``: the protocol's frozen values get an ``__init__`` that fills their slots
directly — and must behave exactly as the one ``dataclass(frozen=True)`` writes: the same
parameters in the same order, the same defaults, ``__post_init__`` called, the instance
frozen. (Applied at import, so these tests apply it to classes of their own.)"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from immodel.protocol.messages import quick_init


def _pair():
    """The same class twice: with the generated ``__init__`` and with quick_init's."""

    def make():
        @dataclass(frozen=True, slots=True)
        class Value:
            """A value."""

            a: int
            b: str
            c: float = 2.5
            d: tuple = ()

        return Value

    return make(), quick_init(make())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1, "x"), {}), ((1, "x", 3.0), {}), ((1,), {"b": "y", "d": (4,)}), ((), {"a": 7, "b": "z"})],
)
def test_it_builds_what_the_generated_init_builds(args, kwargs):
    plain, quick = _pair()
    want, got = plain(*args, **kwargs), quick(*args, **kwargs)
    assert dataclasses.astuple(got) == dataclasses.astuple(want)
    assert [f.name for f in dataclasses.fields(quick)] == ["a", "b", "c", "d"]


def test_missing_or_unknown_arguments_are_refused_as_before():
    plain, quick = _pair()
    for cls in (plain, quick):
        with pytest.raises(TypeError):
            cls(1)  # b has no default
        with pytest.raises(TypeError):
            cls(1, "x", e=3)  # no such field
        with pytest.raises(TypeError):
            cls(1, "x", 2.0, (), 5)  # one positional too many


def test_the_value_stays_frozen_and_keeps_its_name_and_doc():
    _, quick = _pair()
    v = quick(1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.a = 2  # type: ignore[misc]
    assert quick.__init__.__qualname__.endswith("Value.__init__")
    assert quick.__init__.__name__ == "__init__"
    assert quick.__init__.__module__ == quick.__module__ == __name__  # for tracebacks, pickling


def test_post_init_runs_after_every_field_is_set():
    seen = []

    @quick_init
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int
        b: int = 1

        def __post_init__(self):
            seen.append((self.a, self.b))

    Checked(3)
    Checked(4, 5)
    assert seen == [(3, 1), (4, 5)]


def test_fields_the_fast_init_cannot_fill_are_refused_at_decoration():
    with pytest.raises(TypeError, match="needs the generated __init__"):

        @quick_init
        @dataclass(frozen=True, slots=True)
        class WithFactory:
            a: list = field(default_factory=list)

    with pytest.raises(TypeError, match="needs the generated __init__"):

        @quick_init
        @dataclass(frozen=True, slots=True)
        class NotInInit:
            a: int = field(default=0, init=False)


def test_a_wide_value_is_filled_as_its_twin_and_comes_back_as_itself():
    # four fields or more: the instance is filled as a plain twin of its class
    plain, quick = _pair()
    v = quick(1, "x", 3.0, (4,))
    assert type(v) is quick
    assert dataclasses.astuple(v) == dataclasses.astuple(plain(1, "x", 3.0, (4,)))
    assert v == quick(1, "x", 3.0, (4,)) and hash(v) == hash(quick(1, "x", 3.0, (4,)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.d = ()  # type: ignore[misc]


def test_a_subclass_instance_keeps_its_class():
    _, quick = _pair()

    class Sub(quick):  # type: ignore[misc, valid-type]
        __slots__ = ()

    s = Sub(1, "x")
    assert type(s) is Sub and (s.a, s.b, s.c, s.d) == (1, "x", 2.5, ())
