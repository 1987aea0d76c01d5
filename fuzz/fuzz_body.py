"""atheris target: body decoding and redaction, the code every captured body goes through
before it is stored.

The first byte picks the content encoding; the body is decompressed (bounded), parsed
as JSON (depth-bounded), unwrapped from an oslo envelope and redacted. Contract: the
body codecs raise only ``InputError``; redaction never raises and, whenever its output
parses, no value under a secret key survives.

    .venv/bin/python fuzz/fuzz_body.py -max_total_time=60 fuzz/corpus/body
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import orjson

    from busdoc.errors import InputError
    from busdoc.sniffer.body import decode_content, parse_json, unwrap_oslo
    from busdoc.storage.redact import REDACTED, Redactor

ENCODINGS = (None, "gzip", "deflate", "bzip2", "identity", "utf-8")
REDACTOR = Redactor()
SECRET_KEYS = ("password", "auth_token", "admin_password", "new_pass", "secret")


def _check_redacted(value: object) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SECRET_KEYS and v is not None and not isinstance(v, bool):
                assert v == REDACTED, (k, v)
            else:
                _check_redacted(v)
    elif isinstance(value, list):
        for v in value:
            _check_redacted(v)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    encoding = ENCODINGS[data[0] % len(ENCODINGS)]
    body = data[1:]
    try:
        plain = decode_content(body, encoding, max_output=1 << 20)
        unwrap_oslo(parse_json(plain))
    except InputError:
        pass
    out = REDACTOR.redact_body(body, content_encoding=encoding)
    if out is body:
        return
    try:
        doc = orjson.loads(decode_content(out, encoding, max_output=1 << 22))
    except (InputError, orjson.JSONDecodeError):
        return
    _check_redacted(doc)


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from _seeds import write_corpus

    args = [a for a in sys.argv if a.startswith("-")]
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")] or ["fuzz/corpus/body"]
    write_corpus(dirs[0], "body")
    atheris.Setup([sys.argv[0], *args, *dirs], test_one_input)
    atheris.Fuzz()
