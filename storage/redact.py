"""Redaction at the write boundary: secrets never reach the store.

A rule is a case-insensitive regular expression searched in a *key name* (a JSON object
member, an AMQP header, a nested header table entry). The value under a matching key
becomes the string ``"<redacted>"``, whatever its type, and a ``Redaction`` keeps a shape
hint, what inference needs to document the field (below). ``null`` and
booleans are left alone: they carry no secret, and a ``"password_set": true`` stays
useful. Besides key rules, a URL with credentials anywhere in a string value
(``rabbit://nova:s3cret@ctl:5672/``) has its password part redacted, and JSON held in a
string (oslo.messaging's ``oslo.message``, and any other JSON-in-JSON string) is searched
at every depth and written back re-encoded.

The default rules are substrings: ``password``, ``passwd``, ``secret``, ``token``
(which covers oslo's ``_context_auth_token`` and ``_context_auth_token_info``),
``credential``, ``private_key``, ``key_data``, ``api_key``/``apikey``/``api-key``,
``authorization``, and ``pass`` as a word of its own (``new_pass``, ``adminPass``).
There is deliberately no rule on a bare ``key``: ``routing_key``, ``keypair_name``,
``key_name``, ``public_key`` and ``os-keypair`` fields stay visible. ``token`` does catch
a few innocent names (``max_tokens``); a false positive costs one documented field,
a false negative a leaked credential.

Shape hints: ``Redaction(path, json_type, format, length_class)``. The exact length is
not kept (a password's length narrows a guess): ``length_class`` is its power-of-two
class, ``"0"``, ``"1-7"``, ``"8-15"`` … ``"128-255"``, ``"256+"`` (characters of a
string, items of an array or object; ``busdoc.storage.records.LENGTH_CLASSES`` says
why). ``format`` names what the string looked like, decided from the value before it
is dropped, and only for values of 16 characters or more:

==================  ==============================================================
``fernet``          Keystone's default token: base64url, no padding, starting
                    ``gAAAAA`` (version byte 0x80 and a 64-bit timestamp), 98+ chars
``jwt``             JWS compact form, three base64url parts, header ``eyJ…``
                    (Keystone's ``jws`` provider issues ES256 ones)
``pki`` / ``pkiz``  Keystone's retired PKI tokens (CMS in base64, ``MII…``) and
                    their compressed form (``PKIZ_…``)
``pem``             ``-----BEGIN …`` (certificates, private keys)
``ssh-public-key``  ``ssh-rsa AAAA…``, ``ssh-ed25519``, ``ecdsa-sha2-…`` and ``sk-…``
``url``             ``scheme://…`` with no whitespace (transport URLs)
``uuid``            8-4-4-4-12 hex digits
``hex``             hex digits only (Keystone's retired UUID tokens: 32 of them)
``base64``          the standard alphabet (``+/``, padded to a multiple of 4)
``base64url``       the URL-safe alphabet (``-_``, or unpadded)
==================  ==============================================================

The first ones have a fixed prefix or structure, public knowledge that says nothing
about the secret inside. ``hex`` and the base64 forms only say which alphabet a value
is drawn from, and a password's alphabet narrows a guess: they are named only from 32
characters up (random keys and tokens, not passwords people type), and the base64
forms only for a value mixing upper case, lower case and digits, as random encodings
do, never for one mixing both alphabets. Anything else has no format.

Speed: the default path runs on every message of an import. A body is parsed only when
its lower-cased bytes contain one of the rule literals (or ``://``), so a body with
nothing to redact costs a few ``bytes.__contains__`` calls and is returned as the same
object, byte-exact. Non-literal rules (``--redact 'x-.*-pass'``) are searched as a
regex over the raw bytes, anchors dropped, for the same pre-check. A hit ends the
pre-check, so ``token`` (in every oslo context) is looked for first, in the bytes as
they are, before a lower-cased copy is made. The walk of a parsed body dispatches on
the exact type of each value, strings first, and makes one ``Redaction`` per distinct
path and shape (the token sits at the same path in every call).

Compressed bodies (``content_encoding`` gzip/deflate/bzip2) are decompressed for the check
and, when something was redacted, compressed again with the same codec. A body that is
not JSON only has URL passwords redacted (path ``""``, the whole body).
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from busdoc.errors import InputError
from busdoc.sniffer.body import compression_of, decode_content, encode_content
from busdoc.sniffer.records import Observation
from busdoc.storage.codec import compact
from busdoc.storage.records import Redaction, length_class

REDACTED = "<redacted>"

_PASS = r"(?<![a-z])pass(?![a-z])"
"""``pass`` as a word of its own (``new_pass``, ``pass``, ``admin-pass``), not ``passive``,
``bypass`` or ``compass``: Nova's ``changePassword`` action sends ``new_pass``."""
_CAMEL_PASS = r"(?-i:[a-z]Pass(?![a-z]))"
"""``adminPass``, ``newPass``: Nova's server create and rebuild use camelCase."""
_PRECHECK_HINTS = {_PASS: "pass", _CAMEL_PASS: "pass"}
"""Literals that every match of a non-literal default rule contains: the raw-bytes
pre-check looks for them instead of running the regex over every body."""

DEFAULT_RULES: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "private_key",
    "key_data",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    _PASS,
    _CAMEL_PASS,
)

_LITERAL = re.compile(r"[A-Za-z0-9_\-. ]+")
_JSON_ESCAPE_B = re.compile(rb"\\[u/]")
_JSON_ESCAPE_S = re.compile(r"\\[u/]")
"""A JSON string may spell any character as ``\\uXXXX`` and ``/`` as ``\\/``: a key or a
URL written so (``"p\\u0061ssword"``, ``amqp:\\/\\/u:p@h``) is not found by a search of the raw
text, so the pre-checks treat either escape as a possible hit and let the parser decide."""
# scheme://user:password@ — the password may hold anything but the separators.
# scheme:// and the authority (up to the path): user:password@host, possibly several
# comma-separated hosts (oslo's rabbit://u1:p1@h1,u2:p2@h2/), and a password may hold
# an unescaped "@" (the last "@" of a part ends the userinfo).
_URL_CREDS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/\"'<>?#]*@[^\s/\"'<>?#]*)")
_NO_CHANGE: Any = object()

# Shape hints (secret_format): every pattern is matched against the whole value.
_FERNET = re.compile(r"gAAAAA[A-Za-z0-9_\-]{92,}={0,2}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_PKI = re.compile(r"MII[A-Za-z0-9+/\-]+={0,2}")
_PKIZ = re.compile(r"PKIZ_[A-Za-z0-9_\-]+={0,2}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*")
_SSH_KEY = re.compile(
    r"(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) AAAA[A-Za-z0-9+/]+={0,2}(?: [^\n]*)?"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64ISH = re.compile(r"([A-Za-z0-9+/_\-]+)={0,2}")
_DIGIT = re.compile(r"[0-9]")
_MIN_ALPHABET_ONLY = 32
"""``hex`` and the base64 forms say only which alphabet a value uses: named from 32
characters up, where no human password lives and the alphabet narrows nothing."""
_SCALARS = frozenset({bool, int, float})
_WHITESPACE = frozenset(" \t\r\n")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WITHHELD = orjson.dumps(REDACTED)
"""What is stored for a JSON document too deep to walk or to write back whole."""
_JSON_HEADS = frozenset("{[ \t\r\n")
_KEY_CACHE = 4096
_SHAPE_CACHE = 4096
_FORMAT_CACHE = 256
_UNKNOWN: Any = object()
_BODY_CACHE = 512
_CACHEABLE = 64 << 10


class RedactedParts(NamedTuple):
    """What the store writes for one observation, after redaction.

    A named tuple rather than a frozen dataclass: one is made per observation, and a
    tuple is built in one step where a frozen dataclass sets each field in turn.
    """

    body: bytes
    headers: Mapping[str, Any] | None
    properties: Mapping[str, Any]
    redactions: tuple[Redaction, ...]


_parts = tuple.__new__
"""Makes a ``RedactedParts`` from a 4-tuple, without the generated ``__new__`` (a Python
function) that the class's own constructor runs: ``_parts(RedactedParts, (...))``."""
_UNCHANGED: tuple[None, tuple[Redaction, ...]] = (None, ())


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | decimal.Decimal):
        return "number"
    if isinstance(value, dict | Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if value is None:
        return "null"
    return "string"  # str, bytes, datetime: all strings once stored as JSON


def _redaction(path: str, value: Any) -> Redaction:
    """The shape hint kept for ``value``: type, format, length class; never the value."""
    return Redaction(
        path=path,
        json_type=_json_type(value),
        format=secret_format(value),
        length_class=_length_class(value),
    )


def _length_class(value: Any) -> str | None:
    if isinstance(value, str | bytes | Mapping | list | tuple):
        return length_class(len(value))
    return None


def secret_format(value: Any) -> str | None:
    """The format of a secret string (module docstring, "Shape hints"), or None.

    Decided from the value alone and only its name is kept. Prefix checks come first
    and decide most tokens without a regular expression.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) < 16:
        return None
    head = value[:6]
    if head == "gAAAAA":
        return "fernet" if _FERNET.fullmatch(value) else None
    if head.startswith("eyJ"):
        return "jwt" if _JWT.fullmatch(value) else None
    if head == "-----B":
        return "pem" if value.startswith("-----BEGIN ") else None
    if head.startswith("MII"):
        return "pki" if _PKI.fullmatch(value) else None
    if head.startswith("PKIZ_"):
        return "pkiz" if _PKIZ.fullmatch(value) else None
    if "://" in value:
        return "url" if _URL.fullmatch(value) else None
    if " " in value:
        return "ssh-public-key" if _SSH_KEY.fullmatch(value) else None
    if _UUID.fullmatch(value):
        return "uuid"
    if len(value) < _MIN_ALPHABET_ONLY:
        return None
    if _HEX.fullmatch(value):
        return "hex"
    return _base64_format(value)


def _base64_format(value: str) -> str | None:
    """``base64`` or ``base64url`` for a value drawn from all three character groups
    (upper, lower, digits), as random encodings are; a word or a name is not."""
    m = _BASE64ISH.fullmatch(value)
    if m is None:
        return None
    chars = m[1]
    if chars.lower() == chars or chars.upper() == chars or _DIGIT.search(chars) is None:
        return None
    standard = "+" in chars or "/" in chars
    url_safe = "-" in chars or "_" in chars
    if standard and url_safe:
        return None
    if standard:
        return "base64"
    if url_safe:
        return "base64url"
    return "base64" if len(value) % 4 == 0 else "base64url"


def _escape(key: str) -> str:
    """RFC 6901 escaping, so a key holding ``/`` keeps the path unambiguous."""
    return key.replace("~", "~0").replace("/", "~1")


class Redactor:
    """Replaces secret values in bodies, headers and string properties."""

    def __init__(self, rules: Sequence[str] = DEFAULT_RULES, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.rules = tuple(rules)
        for rule in self.rules:
            try:
                re.compile(rule)
            except re.error as exc:
                raise InputError(f"redaction rule {rule!r} is not a valid regex: {exc}") from exc
        joined = "|".join(f"(?:{r})" for r in self.rules) or r"(?!x)x"
        self._key = re.compile(joined, re.IGNORECASE)
        self._key_cache: dict[str, bool] = {}
        self._plain_keys: set[str] = set()
        """Keys known not to be secret: a mapping made of them only is passed in one
        C-level ``issuperset`` (see ``_keys_mapping``)."""
        self._shapes: dict[tuple[Any, str, str | None, str | None], Redaction] = {}
        self._formats: dict[str, str | None] = {}
        self._dominant = 1 << 62
        # A publish and its deliveries carry the same body: redact it once. Two
        # generations (see _remember).
        self._body_cache: dict[
            tuple[bytes, str | None], tuple[bytes | None, tuple[Redaction, ...]]
        ] = {}
        self._body_cache_old = self._body_cache
        literals = _precheck_literals(
            _PRECHECK_HINTS.get(r, r).lower()
            for r in self.rules
            if _LITERAL.fullmatch(r) or r in _PRECHECK_HINTS
        )
        self._literals_b = tuple(lit.encode() for lit in literals)
        self._literals_s = tuple(literals)
        self._likeliest_b = self._literals_b[0] if self._literals_b else None
        patterns = [
            _unanchor(r)
            for r in self.rules
            if not _LITERAL.fullmatch(r) and r not in _PRECHECK_HINTS
        ]
        self._pattern_b = (
            re.compile("|".join(f"(?:{p})" for p in patterns).encode(), re.IGNORECASE)
            if patterns
            else None
        )
        self._pattern_s = (
            re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None
        )

    # -- pre-checks: cheap, and a superset of what the walk finds -------------------------

    def _may_hit_bytes(self, raw: bytes) -> bool:
        # Secret keys are mostly written in lower case (``_context_auth_token``): the
        # likeliest literal is looked for in the body as it is, before paying for a
        # lower-cased copy of it. ``find`` rather than ``in``: on Python 3.11
        # ``lit in raw`` first tries ``lit`` as an integer (``5 in b"..."`` is valid) and
        # formats a TypeError that it then drops, which costs more than a miss's scan.
        find = raw.find
        if self._likeliest_b is not None and find(self._likeliest_b) >= 0:
            return True
        find_low = raw.lower().find
        for lit in self._literals_b:
            if find_low(lit) >= 0:
                return True
        if find(b"://") >= 0 or _JSON_ESCAPE_B.search(raw) is not None:
            return True
        if self._pattern_b is not None and self._pattern_b.search(raw) is not None:
            return True
        # UTF-16 and UTF-32 text, which Python's json reads, puts NUL bytes beside every
        # ASCII letter: none of the searches above can see a key or a URL in it.
        return _maybe_wide(raw)

    def _may_hit_str(self, text: str) -> bool:
        low = text.lower()
        for lit in self._literals_s:
            if lit in low:
                return True
        if "://" in text or _JSON_ESCAPE_S.search(text) is not None:
            return True
        return self._pattern_s is not None and self._pattern_s.search(text) is not None

    # -- public API ------------------------------------------------------------------------

    def redact(self, obs: Observation) -> RedactedParts:
        """Body, headers and properties of ``obs`` with secrets replaced.

        Unchanged parts are the very objects ``obs`` holds (``is``-identical), so a body
        with nothing to redact is stored byte-exact.
        """
        properties = obs.properties
        if not self.enabled:
            return _parts(RedactedParts, (obs.body, obs.headers, properties, ()))
        encoding = properties.get("content_encoding") if properties else None
        body, hints = self._body(obs.body, encoding)
        if body is None:
            body = obs.body
        found: list[Redaction] = []
        headers = obs.headers
        if headers:
            self._dominant = 1 << 62
            try:
                new = self._walk_mapping(headers, "headers", found)
            except RecursionError:  # a value nested too deep to look into: none is kept
                found.append(_redaction("headers", headers))
                new = {}
            if new is not _NO_CHANGE:
                headers = new
        if properties:
            new = self._properties(properties, found)
            if new is not _NO_CHANGE:
                properties = new
        if found:
            hints += tuple(found)
        return _parts(RedactedParts, (body, headers, properties, hints))

    def redact_body(
        self,
        body: bytes,
        found: list[Redaction] | None = None,
        *,
        content_encoding: str | None = None,
    ) -> bytes:
        """The body with secrets replaced; the same object when there were none."""
        if not self.enabled:
            return body
        new, hints = self._body(body, content_encoding)
        if found is not None:
            found.extend(hints)
        return body if new is None else new

    def _body(
        self, body: bytes, content_encoding: str | None
    ) -> tuple[bytes | None, tuple[Redaction, ...]]:
        """``(redacted body, its redactions)``; None for a body left as it is.

        None rather than the body itself: a delivery carries its own copy of its
        publish's body, and the caller keeps its own object (byte-exact). The cache holds
        these very pairs, so a delivery costs one lookup.
        """
        if not body:
            return _UNCHANGED
        cacheable = len(body) <= _CACHEABLE
        if cacheable:
            key = (body, content_encoding)
            cached = self._body_cache.get(key) or self._body_cache_old.get(key)
            if cached is not None:
                return cached
        compressed = compression_of(content_encoding) is not None
        if compressed:
            try:
                plain = decode_content(body, content_encoding)
            except InputError:
                return _UNCHANGED  # neither readable by us nor by a schema: kept as captured
        else:
            plain = body
        if not self._may_hit_bytes(plain):
            if cacheable:
                # Remember misses too: the deliveries of this body skip the scan.
                self._remember(body, content_encoding, _UNCHANGED)
            return _UNCHANGED
        local: list[Redaction] = []
        new = self._redact_plain(plain, local)
        if new is plain:
            outcome: tuple[bytes | None, tuple[Redaction, ...]] = (None, tuple(local))
        else:
            outcome = (encode_content(new, content_encoding) if compressed else new, tuple(local))
        if cacheable:
            self._remember(body, content_encoding, outcome)
        return outcome

    def _remember(
        self,
        body: bytes,
        encoding: str | None,
        outcome: tuple[bytes | None, tuple[Redaction, ...]],
    ) -> None:
        # A delivery follows its publish closely, so recent bodies are the ones worth
        # keeping. Two generations of up to _BODY_CACHE bodies: when the young one is
        # full it becomes the old one. Dropping the oldest entry of one dict instead costs
        # half a microsecond per insert, as the dict must skip the deleted slots before
        # its first live entry.
        cache = self._body_cache
        if len(cache) >= _BODY_CACHE:
            self._body_cache_old = cache
            self._body_cache = cache = {}
        cache[(body, encoding)] = outcome

    # -- the walk --------------------------------------------------------------------------

    def _redact_plain(self, plain: bytes, found: list[Redaction]) -> bytes:
        self._dominant = len(plain) // 2
        # Only for UTF-8, which orjson alone reads: its raw bytes show every "\\" and "://".
        keys_only = b"\\" not in plain and b"://" not in plain
        try:
            doc = orjson.loads(plain)
            dumps: Callable[[Any], bytes] = _orjson_dumps
        except orjson.JSONDecodeError:
            # Python's json reads NaN, >64-bit integers and UTF-16/32, which orjson refuses.
            keys_only = False
            try:
                doc = json.loads(plain)
                dumps = _stdlib_dumps
            except RecursionError:
                return self._withhold(plain, found)
            except ValueError:
                return self._redact_opaque(plain, found)
        try:
            new = self._keys_only(doc, "", found) if keys_only else self._walk(doc, "", found)
        except RecursionError:
            return self._withhold(plain, found)
        if new is _NO_CHANGE:
            return plain
        out = _write_back(new, dumps)
        return self._withhold(plain, found) if out is None else out

    def _withhold(self, plain: bytes, found: list[Redaction]) -> bytes:
        """A JSON document nested too deep to walk or to write back: a secret may sit
        anywhere in it, so none of it is kept."""
        head = plain.lstrip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff")[:1]  # UTF-16/32, BOMs
        kind = "array" if head == b"[" else "object" if head == b"{" else "string"
        found.append(Redaction(path="", json_type=kind, length_class=length_class(len(plain))))
        return _WITHHELD

    def _redact_opaque(self, plain: bytes, found: list[Redaction]) -> bytes:
        """URL passwords in a body that is not JSON: read as UTF-8 (else Latin-1), and
        first as UTF-16/32 where it holds NUL bytes (text, or binary with text inside)."""
        out = plain
        if _maybe_wide(out):
            for encoding in dict.fromkeys((json.detect_encoding(out), "utf-16-le", "utf-16-be")):
                out = _replace_urls(out, encoding)
        out = _replace_urls(out, None)
        if out is not plain:
            found.append(
                Redaction(path="", json_type="string", length_class=length_class(len(plain)))
            )
        return out

    def _is_secret_key(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            hit = self._key.search(key) is not None
            if len(self._key_cache) < _KEY_CACHE:
                self._key_cache[key] = hit
                if not hit:
                    self._plain_keys.add(key)
        return hit

    def _walk(self, value: Any, path: Any, found: list[Redaction]) -> Any:
        kind = type(value)
        if kind is str:
            return self._walk_string(value, path, found)
        if kind is dict:
            return self._walk_mapping(value, path, found)
        if kind is list or kind is tuple:
            return self._walk_sequence(value, path, found)
        if isinstance(value, bytes):
            try:
                text = value.decode()
            except UnicodeDecodeError:
                return _NO_CHANGE
            new = self._walk_string(text, path, found)
            return new if new is _NO_CHANGE else new.encode()
        if isinstance(value, Mapping):
            return self._walk_mapping(value, path, found)
        if isinstance(value, str):
            return self._walk_string(value, path, found)
        return _NO_CHANGE

    def _walk_sequence(self, value: Sequence[Any], path: Any, found: list[Redaction]) -> Any:
        changed: list[Any] | None = None
        for i, item in enumerate(value):
            kind = type(item)
            if kind is str:
                if len(item) < 8 or (
                    item[0] not in _JSON_HEADS and (":" not in item or "://" not in item)
                ):
                    continue
                new = self._walk_string(item, (path, i), found)
            elif kind is dict:
                new = self._walk_mapping(item, (path, i), found)
            elif item is None or kind in _SCALARS:
                continue
            else:
                new = self._walk(item, (path, i), found)
            if new is not _NO_CHANGE:
                if changed is None:
                    changed = list(value)
                changed[i] = new
        return _NO_CHANGE if changed is None else changed

    def _walk_mapping(self, value: Mapping[str, Any], path: Any, found: list[Redaction]) -> Any:
        # Branches in order of frequency (strings, then containers); a string or a
        # container is passed to the walker of its type directly. ``":" in item`` before
        # ``"://" in item``: a one-character search is a memchr, and most long strings
        # (UUIDs, hex ids, prose) hold no colon at all.
        changed: dict[str, Any] | None = None
        cache = self._key_cache
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                secret = cache.get(key)
                if secret is None:
                    secret = self._is_secret_key(str(key))
                if secret:
                    new: Any = REDACTED
                    self._record((path, key), item, found)
                elif len(item) < 8 or (
                    item[0] not in _JSON_HEADS and (":" not in item or "://" not in item)
                ):
                    continue  # the common case, decided without a call
                else:
                    new = self._walk_string(item, (path, key), found)
                    if new is _NO_CHANGE:
                        continue
            elif item is None or kind is bool:
                continue  # nothing secret in them, whatever the key says
            else:
                secret = cache.get(key)
                if secret is None:
                    secret = self._is_secret_key(str(key))
                if secret:
                    new = REDACTED
                    self._record((path, key), item, found)
                elif kind is dict:
                    new = self._walk_mapping(item, (path, key), found)
                elif kind is int or kind is float:
                    continue
                elif kind is list:
                    new = self._walk_sequence(item, (path, key), found)
                else:
                    new = self._walk(item, (path, key), found)
                if new is _NO_CHANGE:
                    continue
            if changed is None:
                changed = dict(value)
            changed[key] = new
        return _NO_CHANGE if changed is None else changed

    # -- the walk of a document whose text holds no backslash and no "://" -----------------
    #
    # In such a text no string, at any depth, can need redaction: a URL with credentials
    # needs "://" (or "\/" escapes), and a string holding a JSON document with a string
    # or a key in it needs escaped quotes. Only keys are left to check: strings are passed
    # without a look, and a mapping whose keys are all known plain in one C-level
    # ``issuperset``. Keys and values are otherwise decided as ``_walk_mapping`` decides
    # them, in the same order (tests/test_redact_keys_only.py holds the two walks equal).

    def _keys_only(self, doc: Any, path: Any, found: list[Redaction]) -> Any:
        kind = type(doc)
        if kind is dict:
            return self._keys_mapping(doc, path, found)
        if kind is list:
            return self._keys_sequence(doc, path, found)
        return _NO_CHANGE  # a bare string or number

    def _keys_mapping(self, value: dict[str, Any], path: Any, found: list[Redaction]) -> Any:
        changed: dict[str, Any] | None = None
        if self._plain_keys.issuperset(value):
            for key, item in value.items():
                kind = type(item)
                if kind is dict:
                    new = self._keys_mapping(item, (path, key), found)
                elif kind is list:
                    new = self._keys_sequence(item, (path, key), found)
                else:
                    continue
                if new is not _NO_CHANGE:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return _NO_CHANGE if changed is None else changed
        cache = self._key_cache
        for key, item in value.items():
            # Decided for every key, so that keys with null or boolean values are learnt
            # as plain too and the mapping takes the short way next time.
            secret = cache.get(key)
            if secret is None:
                secret = self._is_secret_key(str(key))
            kind = type(item)
            if item is None or kind is bool:
                continue  # nothing secret in them, whatever the key says
            if secret:
                new: Any = REDACTED
                self._record((path, key), item, found)
            elif kind is dict:
                new = self._keys_mapping(item, (path, key), found)
            elif kind is list:
                new = self._keys_sequence(item, (path, key), found)
            else:
                continue
            if new is not _NO_CHANGE:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return _NO_CHANGE if changed is None else changed

    def _keys_sequence(self, value: list[Any], path: Any, found: list[Redaction]) -> Any:
        changed: list[Any] | None = None
        for i, item in enumerate(value):
            kind = type(item)
            if kind is dict:
                new = self._keys_mapping(item, (path, i), found)
            elif kind is list:
                new = self._keys_sequence(item, (path, i), found)
            else:
                continue
            if new is not _NO_CHANGE:
                if changed is None:
                    changed = list(value)
                changed[i] = new
        return _NO_CHANGE if changed is None else changed

    def _record(self, path: Any, value: Any, found: list[Redaction]) -> None:
        """Add the shape hint of ``value``: one ``Redaction`` per distinct path and shape,
        made once (an oslo context carries its token at the same path in every call)."""
        kind = type(value)
        if kind is str:
            # A service sends the same token with many calls: its format (a fullmatch
            # over the whole token) is decided once. Kept in memory only, as the bodies
            # in _body_cache are.
            formats = self._formats
            fmt = formats.get(value, _UNKNOWN)
            if fmt is _UNKNOWN:
                fmt = secret_format(value)
                if len(formats) >= _FORMAT_CACHE:
                    formats.clear()  # a new set of tokens: the old one is rarely seen again
                formats[value] = fmt
            shape = (path, "string", fmt, length_class(len(value)))
        else:
            shape = (path, _json_type(value), secret_format(value), _length_class(value))
        hint = self._shapes.get(shape)
        if hint is None:
            hint = Redaction(
                path=_render(path), json_type=shape[1], format=shape[2], length_class=shape[3]
            )
            if len(self._shapes) < _SHAPE_CACHE:
                self._shapes[shape] = hint
        found.append(hint)

    def _walk_string(self, value: str, path: Any, found: list[Redaction]) -> Any:
        if len(value) < 8:
            return _NO_CHANGE
        head = value[0]
        if head in _WHITESPACE:
            head = value.lstrip()[:1]
        # A string holding most of the body (oslo.message) is what made the body's
        # pre-check hit: checking it again would only repeat that scan.
        if head in ("{", "[") and (len(value) > self._dominant or self._may_hit_str(value)):
            dumps: Callable[[Any], bytes] = orjson.dumps
            try:
                inner = orjson.loads(value)
            except orjson.JSONDecodeError:
                # oslo serialises with Python's json: NaN, Infinity and integers past
                # 64 bits are valid there, and the secrets beside them must still go.
                try:
                    inner = json.loads(value)
                    dumps = _stdlib_dumps
                except RecursionError:  # too deep to look into: none of it is kept
                    self._record(path, value, found)
                    return REDACTED
                except ValueError:
                    inner = None
            kind = type(inner)
            if kind is dict or kind is list:  # what both JSON parsers make
                if "\\" in value or "://" in value:
                    new = self._walk(inner, path, found)
                else:
                    new = self._keys_only(inner, path, found)
                if new is _NO_CHANGE:
                    return new
                out = _write_back(new, dumps)
                if out is None:
                    self._record(path, value, found)
                    return REDACTED
                return out.decode()
        if "://" in value:
            new_text = _URL_CREDS.sub(_url_sub, value)
            if new_text != value:
                self._record(path, value, found)
                return new_text
        return _NO_CHANGE

    def _properties(self, props: Mapping[str, Any], found: list[Redaction]) -> Any:
        """Only URL credentials: property names are AMQP's own, never secrets."""
        changed: dict[str, Any] | None = None
        for key, value in props.items():
            if not isinstance(value, str) or "://" not in value or key == "headers":
                continue
            new_text = _URL_CREDS.sub(_url_sub, value)
            if new_text != value:
                found.append(_redaction(f"properties/{key}", value))
                if changed is None:
                    changed = dict(props)
                changed[key] = new_text
        return _NO_CHANGE if changed is None else changed


_CORES = ("passw", "key")
"""Shorter substrings that stand in for several rules in the raw-bytes pre-check
(``password``/``passwd``; ``private_key``/``key_data``/``api_key``…): each ``in`` over a
body costs the same, so fewer, shorter literals make the common miss cheaper."""


_LIKELY_FIRST = ("token", "pass", "secret", "key")
"""Pre-check order: a hit ends the scan, so the literal most bodies carry goes first.
oslo.messaging puts ``_context_auth_token`` in every request and notification context,
and the URL check, the slowest scan (``:`` is everywhere in JSON), comes after them."""


def _precheck_literals(literals: Iterable[str]) -> list[str]:
    reduced = {next((c for c in _CORES if c in lit), lit) for lit in literals}
    kept = [lit for lit in reduced if not any(o != lit and o in lit for o in reduced)]
    rank = {lit: i for i, lit in enumerate(_LIKELY_FIRST)}
    return sorted(kept, key=lambda lit: (rank.get(lit, len(rank)), lit))


def _url_sub(m: re.Match[str]) -> str:
    """Replace the password of every ``user:password@`` in one URL authority."""
    parts = []
    for part in m[2].split(","):
        userinfo, at, host = part.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        parts.append(f"{user}:{REDACTED}@{host}" if at and colon else part)
    return m[1] + ",".join(parts)


def _render(path: Any) -> str:
    """Turn the ``(parent, key)`` chain the walk builds into ``/a/0/b`` (or ``headers/a``).

    The chain is only rendered when something is redacted, so the walk allocates no
    strings for the keys it merely passes.
    """
    segments: list[str] = []
    while isinstance(path, tuple):
        path, seg = path
        segments.append(_escape(str(seg)))
    segments.reverse()
    return f"{path}/{'/'.join(segments)}" if path else "/" + "/".join(segments)


def _unanchor(rule: str) -> str:
    """A key rule made usable on raw bytes: ``^`` and ``$`` anchor a key, not a body."""
    if rule.startswith("^"):
        rule = rule[1:]
    if rule.endswith("$") and not rule.endswith("\\$"):
        rule = rule[:-1]
    return rule


def _maybe_wide(raw: bytes) -> bool:
    """Whether ``raw`` may be UTF-16 or UTF-32 text: a NUL byte anywhere (beside every
    ASCII character there), or a byte-order mark."""
    return raw.find(b"\x00") >= 0 or raw[:2] in _UTF16_BOMS


def _replace_urls(raw: bytes, encoding: str | None) -> bytes:
    """``raw`` with URL passwords replaced, read as ``encoding`` (None: UTF-8, else
    Latin-1); the very object when there were none or it does not read so."""
    if encoding is None:
        try:
            text, encoding = raw.decode(), "utf-8"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "latin-1"
        tail = b""
    else:
        # Wide text as it comes: a lone surrogate kept, an odd last byte set aside.
        cut = len(raw) % (4 if "32" in encoding else 2)
        tail = raw[len(raw) - cut :]
        try:
            text = raw[: len(raw) - cut].decode(encoding, "surrogatepass")
        except UnicodeDecodeError:
            return raw
    if "://" not in text:
        return raw
    new = _URL_CREDS.sub(_url_sub, text)
    return raw if new == text else new.encode(encoding, "surrogatepass") + tail


def _write_back(doc: Any, dumps: Callable[[Any], bytes]) -> bytes | None:
    """``dumps(doc)``; Python's json where orjson's nesting limit (254) stops it; None
    when neither can write it."""
    try:
        return dumps(doc)
    except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        try:
            return _stdlib_dumps(doc)
        except (TypeError, ValueError, RecursionError):
            return None


def _orjson_dumps(doc: Any) -> bytes:
    # Redacted bodies wait in batches: keep a tight copy, not orjson's buffer.
    return compact(orjson.dumps(doc))


def _stdlib_dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def redaction_rules(extra: Iterable[str] = ()) -> list[str]:
    """The default rules plus ``--redact`` patterns."""
    return [*DEFAULT_RULES, *extra]
