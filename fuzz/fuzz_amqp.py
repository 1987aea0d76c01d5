"""atheris target: the AMQP 0-9-1 connection decoder on arbitrary bytes of one direction.

The first byte picks the direction (client or server) and whether the stream starts
mid-connection; the rest is fed in chunks whose sizes come from the data too. Contract:
records only, never an exception (the recovering decoder turns garbage into notices).

    .venv/bin/python fuzz/fuzz_amqp.py -max_total_time=60 fuzz/corpus/amqp
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from busdoc.sniffer.amqp import AmqpConnection


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags, stream = data[0], data[1:]
    conn = AmqpConnection("fuzz", mid_stream=bool(flags & 2))
    step = 16 + (flags >> 2) * 61
    for i in range(0, len(stream), step):
        conn.feed(stream[i : i + step], from_client=bool(flags & 1), time=float(i))
    conn.finish(float(len(stream)))


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from _seeds import write_corpus

    args = [a for a in sys.argv if a.startswith("-")]
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")] or ["fuzz/corpus/amqp"]
    write_corpus(dirs[0], "amqp")
    atheris.Setup([sys.argv[0], *args, *dirs], test_one_input)
    atheris.Fuzz()
