"""Which brokers to capture, and how to reach them over TLS.

Broker URLs carry passwords, so besides ``--url`` they come from places ``ps`` does not
show: a file (``--url-file``, one URL a line, ``#`` comments) or ``$BUSDOC_AMQP_URL``.
Options and the file add up; the environment and the local default apply only when
neither gave a URL. pika is imported only when TLS options are built, so the CLI's
``--help`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from busdoc.errors import InputError

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
URL_ENV = "BUSDOC_AMQP_URL"


def urls_in_text(text: str) -> list[str]:
    """The URLs of a ``--url-file``: one a line, blank lines and ``#`` comments skipped."""
    return [
        line.strip() for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def resolve_urls(
    urls: Sequence[str] | None,
    url_file: Path | None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """--url values, then the file's lines; else $BUSDOC_AMQP_URL; else the local default."""
    found = list(urls or [])
    if url_file is not None:
        try:
            text = url_file.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot read --url-file {url_file}: {e.strerror or e}") from None
        found += urls_in_text(text)
        if not found:
            raise InputError(f"--url-file {url_file} holds no URL")
    if not found:
        env = os.environ if environ is None else environ
        found = [env.get(URL_ENV) or DEFAULT_AMQP_URL]
    return found


def tls_options(
    urls: Sequence[str], ca_cert: Path | None, cert: Path | None, key: Path | None
) -> Any:
    """pika ``SSLOptions`` for amqps:// URLs (CA bundle, client certificate and key).

    None for plain amqp:// URLs without TLS files; the server name checked is the first
    URL's host.
    """
    if not any(u.startswith("amqps://") for u in urls) and not (ca_cert or cert or key):
        return None
    if not all(u.startswith("amqps://") for u in urls):
        raise InputError("--ca-cert/--cert/--key need amqps:// URLs (TLS), not amqp://")
    if (cert is None) != (key is None):
        raise InputError("--cert and --key go together (the client certificate and its key)")
    import ssl
    import urllib.parse

    import pika

    try:
        context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
        if cert is not None and key is not None:
            context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise InputError(f"cannot load TLS files: {getattr(e, 'strerror', None) or e}") from None
    host = urllib.parse.urlsplit(urls[0]).hostname
    return pika.SSLOptions(context, server_hostname=host)


__all__ = ["DEFAULT_AMQP_URL", "URL_ENV", "resolve_urls", "tls_options", "urls_in_text"]
