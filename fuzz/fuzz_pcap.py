"""atheris target: the capture reader and the whole decode pipeline (link, IP, TCP
reassembly, AMQP, records) on arbitrary file bytes.

Contract: records or ``CaptureFormatError``; nothing else escapes.

    .venv/bin/python fuzz/fuzz_pcap.py -max_total_time=60 fuzz/corpus/pcap
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from busdoc.errors import CaptureFormatError
    from busdoc.sniffer.capture import CaptureDecoder
    from busdoc.sniffer.pcap import CaptureReader


def test_one_input(data: bytes) -> None:
    decoder = CaptureDecoder()
    try:
        for rec in CaptureReader(io.BytesIO(data)):
            decoder.feed(rec)
    except CaptureFormatError:
        return
    decoder.finish()


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from _seeds import write_corpus

    args = [a for a in sys.argv if a.startswith("-")]
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")] or ["fuzz/corpus/pcap"]
    write_corpus(dirs[0], "pcap")
    atheris.Setup([sys.argv[0], *args, *dirs], test_one_input)
    atheris.Fuzz()
