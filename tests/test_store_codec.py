"""The JSON-safe encoding of properties and header tables round-trips every AMQP value."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from busdoc.storage.codec import (
    decode_redactions,
    decode_table,
    encode_redactions,
    encode_table,
)
from busdoc.storage.records import Redaction

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.binary(max_size=40),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, max_value=10**9, min_value=-(10**9)
    ),
    st.datetimes(timezones=st.just(datetime.UTC)),
)
tag_like = st.sampled_from(["$bytes", "$decimal", "$datetime", "$dict", "plain"])
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), tag_like), children, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.one_of(st.text(max_size=10), tag_like), values, max_size=6))
def test_header_tables_round_trip(table: dict[str, Any]) -> None:
    assert decode_table(encode_table(table)) == table


def test_equal_tables_in_any_key_order_encode_to_equal_bytes() -> None:
    assert encode_table({"a": 1, "b": {"y": 2, "x": 1}}) == encode_table(
        {"b": {"x": 1, "y": 2}, "a": 1}
    )


def test_tagged_values_are_readable_json() -> None:
    raw = encode_table({"d": decimal.Decimal("1.50"), "b": b"\x00"})
    assert raw == b'{"b":{"$bytes":"AA=="},"d":{"$decimal":"1.50"}}'


def test_none_stays_none() -> None:
    assert encode_table(None) is None
    assert decode_table(None) is None


def test_redactions_round_trip_with_their_shape_hints() -> None:
    hints = (
        Redaction(path="/oslo.message/_context_auth_token", json_type="string",
                  format="fernet", length_class="128-255"),
        Redaction(path="/secret", json_type="integer"),
    )
    raw = encode_redactions(hints)
    assert decode_redactions(raw) == hints
    assert b"fernet" in raw and b"128-255" in raw


def test_version_1_redactions_read_back_with_the_length_as_its_class() -> None:
    old = b'[["/password","string",24],["/pin","integer",null],["/roles","array",3]]'
    assert decode_redactions(old) == (
        Redaction(path="/password", json_type="string", length_class="16-31"),
        Redaction(path="/pin", json_type="integer"),
        Redaction(path="/roles", json_type="array", length_class="1-7"),
    )
    assert decode_redactions(None) == ()
