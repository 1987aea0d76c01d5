"""The one error tree of busdoc.

::

    BusdocError                 anything busdoc reports as one line, exit 2
    ├── InputError              a capture file or body busdoc cannot read
    │   ├── CaptureFormatError  not a pcap/pcapng file, unknown link type, truncated header
    │   └── FrameError          an AMQP frame that does not validate (channel, offset)
    ├── StoreError              the database cannot be opened, written or migrated
    └── BrokerError             RabbitMQ is unreachable, refuses us, or lacks permissions

This module imports nothing, so every stage (sniffer, storage, inference, reports)
may import it without pulling in the others. The CLI catches ``BusdocError`` once
and prints ``error: <message>``.
"""


class BusdocError(Exception):
    """Root of every error busdoc reports to a user."""

    exit_code = 2


class InputError(BusdocError):
    """Input that busdoc cannot use (a file, a stream, a body)."""


class CaptureFormatError(InputError):
    """A capture file that is not pcap/pcapng, or whose headers are broken."""


class FrameError(InputError):
    """An AMQP frame that fails validation; carries where it was found."""

    def __init__(self, message: str, *, channel: int | None = None, offset: int | None = None):
        where = []
        if channel is not None:
            where.append(f"channel {channel}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.channel = channel
        self.offset = offset


class StoreError(BusdocError):
    """The store cannot be opened, written or migrated."""


class BrokerError(BusdocError):
    """RabbitMQ cannot be reached or refuses what busdoc needs."""
