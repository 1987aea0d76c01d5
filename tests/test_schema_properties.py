"""Property tests: whatever the traffic, the inferred schema accepts it, and optionality
and nullability are recovered once both cases were seen."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from busdoc.inference.schema import FieldSchema, infer, merge

SCALARS = ["integer", "number", "string", "boolean"]
NAMES = st.sampled_from(["id", "name", "host", "state", "size", "tags", "spec", "x_y", "a"])


def schemas(depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Random declared shapes: scalars, arrays, records with optional and nullable fields."""
    scalar = st.builds(lambda t, n: {"type": t, "nullable": n}, st.sampled_from(SCALARS),
                       st.booleans())
    if depth == 0:
        return scalar
    inner = schemas(depth - 1)
    record = st.builds(
        lambda props, n: {"type": "object", "props": props, "nullable": n},
        st.dictionaries(NAMES, st.tuples(inner, st.booleans()), min_size=1, max_size=5),
        st.booleans(),
    )
    array = st.builds(lambda item: {"type": "array", "item": item, "nullable": False}, inner)
    return st.one_of(scalar, record, array)


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A sample of a declared shape (the bool of each property says whether it may be absent)."""
    t = schema["type"]
    if t == "integer":
        base: st.SearchStrategy[Any] = st.integers(-(2**40), 2**40)
    elif t == "number":
        base = st.floats(allow_nan=False, allow_infinity=False)
    elif t == "string":
        base = st.text(max_size=12)
    elif t == "boolean":
        base = st.booleans()
    elif t == "array":
        base = st.lists(values(schema["item"]), max_size=3)
    else:
        base = st.fixed_dictionaries(
            {k: values(s) for k, (s, optional) in schema["props"].items() if not optional},
            optional={k: values(s) for k, (s, optional) in schema["props"].items() if optional},
        )
    return st.one_of(base, st.none()) if schema["nullable"] else base


@st.composite
def samples(draw: st.DrawFn) -> list[Any]:
    schema = draw(schemas())
    return draw(st.lists(values(schema), min_size=1, max_size=25))


@settings(max_examples=100)  # each example builds a nested shape and many samples
@given(samples())
def test_inferred_schema_accepts_every_observed_sample(sample):
    schema = infer(sample).to_json_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for value in sample:
        assert not list(validator.iter_errors(value)), value


@settings(max_examples=100)  # each example builds a nested shape and many samples
@given(samples(), st.integers(0, 25))
def test_merging_split_inference_gives_the_same_schema(sample, cut):
    whole = infer(sample).to_json_schema()
    assert merge(infer(sample[:cut]), infer(sample[cut:])).to_json_schema() == whole


@settings(max_examples=100)  # each example builds a nested shape and many samples
@given(samples())
def test_state_round_trip_gives_the_same_schema(sample):
    node = infer(sample)
    assert FieldSchema.from_state(node.to_state()).to_json_schema() == node.to_json_schema()


FEW_NAMES = st.sampled_from(["id", "name", "host", "state", "size"])  # below the map threshold


@given(st.lists(st.dictionaries(FEW_NAMES, st.one_of(st.none(), st.integers(0, 9)), max_size=6),
                min_size=1, max_size=30))
def test_required_and_nullable_are_recovered_exactly(records):
    schema = infer(records).to_json_schema()
    always = set.intersection(*(set(r) for r in records))
    assert set(schema["required"]) == always
    for key, prop in schema["properties"].items():
        saw_null = any(r.get(key, 0) is None and key in r for r in records)
        saw_int = any(type(r.get(key)) is int for r in records)
        assert ("null" in prop.get("type", []) or prop.get("type") == "null") == saw_null
        if saw_int:
            assert "integer" in prop["type"]


# A small pool, so values repeat: the accumulator takes shortcuts for a value already
# seen at a path, and those must hold after a merge and a state round trip too.
POOL = st.sampled_from([
    "active", "error", "", "x" * 130, "0b5a3a48-7c43-4a4e-9a48-2f6a5b1a9c11",
    "6f1d2c3b-4a59-4e8f-8a7b-1c2d3e4f5a6b", "2026-11-24T20:10:06Z",
    "2026-11-24 20:10:06.218414", "2026-11-25T01:00:00.5+01:00", "10.0.0.1", '{"a": 1}',
    "[1, 2]", "[", 0, 7, -3, 2.5, True, False, None,
])
REPEATING = st.recursive(
    POOL,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(FEW_NAMES, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=200)
@given(st.lists(REPEATING, max_size=12), st.lists(REPEATING, max_size=12),
       st.lists(REPEATING, max_size=12))
def test_adding_after_a_merge_or_a_reload_matches_adding_everything_at_once(a, b, c):
    whole = infer(a + b + c).to_json_schema()
    merged = merge(infer(a), infer(b))
    reloaded = FieldSchema.from_state(infer(a + b).to_state())
    for value in c:
        merged.add(value)
        reloaded.add(value)
    assert merged.to_json_schema() == whole
    assert reloaded.to_json_schema() == whole
