"""Shape hints of redacted values: the format named, and the length class kept instead of
the length."""

from __future__ import annotations

import base64
import json
import string
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from busdoc.storage.records import LENGTH_CLASSES, class_bounds, class_label, length_class
from busdoc.storage.redact import secret_format

FORMATS = {"fernet", "jwt", "pki", "pkiz", "pem", "ssh-public-key", "url", "uuid", "hex",
           "base64", "base64url"}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fernet_token(timestamp: int, iv: bytes, blocks: bytes, hmac: bytes) -> str:
    """A token laid out as the Fernet spec says, padding stripped as Keystone does."""
    return b64url(b"\x80" + struct.pack(">Q", timestamp) + iv + blocks + hmac)


def jws(header: dict[str, str], claims: dict[str, object], signature: bytes) -> str:
    def part(doc: object) -> str:
        return b64url(json.dumps(doc, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


# -- length classes ---------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=1 << 20))
def test_a_length_lies_in_the_bounds_of_its_class(n: int) -> None:
    low, high = class_bounds(length_class(n))
    assert low <= n and (high is None or n <= high)


def test_classes_cover_every_length_once_in_order() -> None:
    (first_low, _), *_ = LENGTH_CLASSES
    assert first_low == 0 and LENGTH_CLASSES[-1][1] is None
    for (_, high), (low, _) in zip(LENGTH_CLASSES, LENGTH_CLASSES[1:], strict=False):
        assert high is not None and low == high + 1


@pytest.mark.parametrize(
    ("n", "label"),
    [(0, "0"), (1, "1-7"), (7, "1-7"), (8, "8-15"), (24, "16-31"), (100, "64-127"),
     (183, "128-255"), (255, "128-255"), (256, "256+"), (9000, "256+")],
)
def test_length_class_labels(n: int, label: str) -> None:
    assert length_class(n) == label


@given(st.sampled_from(LENGTH_CLASSES))
def test_labels_read_back_to_their_bounds(bounds: tuple[int, int | None]) -> None:
    assert class_bounds(class_label(*bounds)) == bounds


@pytest.mark.parametrize("label", ["", "x", "1-", "-3", "8-15-31"])
def test_a_label_that_is_no_class_is_a_value_error(label: str) -> None:
    with pytest.raises(ValueError):
        class_bounds(label)


# -- formats ----------------------------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=1 << 35),  # any second up to the year 3058
    st.binary(min_size=16, max_size=16),
    st.integers(min_value=1, max_value=12).flatmap(
        lambda k: st.binary(min_size=16 * k, max_size=16 * k)),
    st.binary(min_size=32, max_size=32),
)
def test_keystone_fernet_tokens_are_named_fernet(
    timestamp: int, iv: bytes, blocks: bytes, hmac: bytes
) -> None:
    token = fernet_token(timestamp, iv, blocks, hmac)
    assert token.startswith("gAAAAA")
    assert secret_format(token) == "fernet"
    assert secret_format(token + "=" * (-len(token) % 4)) == "fernet"  # padded too


@given(st.text(min_size=1, max_size=20), st.binary(min_size=0, max_size=96))
def test_jws_compact_tokens_are_named_jwt(subject: str, signature: bytes) -> None:
    token = jws({"alg": "ES256", "typ": "JWT"}, {"sub": subject, "exp": 1795551006}, signature)
    assert secret_format(token) == "jwt"


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        (str(uuid.UUID(int=0x1234_5678_9ABC_4DEF_8123_4567_89AB_CDEF)), "uuid"),
        (uuid.UUID(int=0x1234_5678_9ABC_4DEF_8123_4567_89AB_CDEF).hex, "hex"),
        ("MIIBxgYJKoZIhvcNAQcCoIIBtzCCAbMCAQExCTAHBgUrDgMCGjCB" + "-" * 4 + "AA==", "pki"),
        ("PKIZ_eJxtkNFygjAQRf-FZx6SgBV90ykFHaUdKZX60gkhQFSIQ_Z", "pkiz"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "pem"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 nova@compute-1", "ssh-public-key"),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=", "ssh-public-key"),
        ("rabbit://nova:<redacted>@10.0.0.5:5672/nova_cell1", "url"),
        (base64.b64encode(bytes(range(200, 233))).decode(), "base64"),
        (b64url(bytes(range(200, 233))), "base64url"),
        # Passwords people choose: no format, whatever their length.
        ("Tr0ub4dor&3-busdoc-admin", None),
        ("correct horse battery staple", None),
        ("N0vaCellRabbitS3cret", None),  # alphanumeric, but under 32 characters
        ("CorrectHorseBatteryStapleAndMoreWords", None),  # letters only: not base64
        ("ssh-rsa", None),
        ("gAAAAA-too-short", None),
        ("eyJ.only-two", None),
        ("http://h", None),  # shorter than 16 characters
    ],
)
def test_formats_recognised_from_the_value(value: str, fmt: str | None) -> None:
    assert secret_format(value) == fmt


def test_non_strings_have_no_format_and_bytes_are_read_as_ascii() -> None:
    assert secret_format(12345678901234567890) is None
    assert secret_format({"a": "b"}) is None
    assert secret_format(str(uuid.UUID(int=7)).encode()) == "uuid"
    assert secret_format(b"\xff" * 40) is None


@given(st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ",
               max_size=31))
def test_nothing_typed_by_hand_under_32_characters_gets_an_alphabet_format(value: str) -> None:
    # hex and base64 name only the alphabet, which would narrow a guess at a password.
    assert secret_format(value) not in ("hex", "base64", "base64url")


@given(st.text(max_size=300))
def test_any_string_gets_a_documented_format_or_none(value: str) -> None:
    fmt = secret_format(value)
    assert fmt is None or fmt in FORMATS
    if len(value) < 16:
        assert fmt is None
