"""Which broker URLs the live commands use, and their TLS options (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from busdoc.errors import InputError
from busdoc.sniffer.urls import DEFAULT_AMQP_URL, URL_ENV, resolve_urls, urls_in_text


def test_url_file_text_skips_blank_lines_and_comments_and_trims() -> None:
    text = "# node 1\namqp://u:p@rabbit1/\n\n   \n  # indented comment\n  amqp://u:p@rabbit2/  \n"

    assert urls_in_text(text) == ["amqp://u:p@rabbit1/", "amqp://u:p@rabbit2/"]


def test_a_hash_inside_a_url_is_not_a_comment() -> None:
    assert urls_in_text("amqp://u:p#w@rabbit/\n") == ["amqp://u:p#w@rabbit/"]


def test_options_and_file_add_up_and_the_environment_is_not_used(tmp_path: Path) -> None:
    f = tmp_path / "urls"
    f.write_text("amqp://u:p@rabbit2/\n")

    assert resolve_urls(["amqp://a@r1/"], f, {URL_ENV: "amqp://env@rabbit/"}) == [
        "amqp://a@r1/", "amqp://u:p@rabbit2/"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({URL_ENV: "amqp://env@rabbit/"}, ["amqp://env@rabbit/"]),
        ({URL_ENV: ""}, [DEFAULT_AMQP_URL]),
        ({}, [DEFAULT_AMQP_URL]),
    ],
)
def test_without_options_the_environment_then_the_local_default(
    environ: dict[str, str], expected: list[str]
) -> None:
    assert resolve_urls(None, None, environ) == expected
    assert resolve_urls([], None, environ) == expected


def test_a_url_file_of_comments_only_is_an_error_even_with_the_environment_set(
    tmp_path: Path,
) -> None:
    f = tmp_path / "urls"
    f.write_text("# rabbit1 retired\n")

    with pytest.raises(InputError, match="holds no URL"):
        resolve_urls(None, f, {URL_ENV: "amqp://env@rabbit/"})
