"""Message identity: which stored message a delivery, get-ok or return belongs to.

The rules (DESIGN.md, "Observation"):

* every publish is its own message, even when byte-identical to another;
* a delivery (basic.deliver, basic.get-ok) belongs to the earliest publish with the same
  exchange, routing key, properties (headers included) and body hash that has had no
  delivery yet *from that queue*: a publish routed to three queues gets three deliveries;
* a redelivery (``redelivered`` set) belongs to the most recent such message already
  delivered from that queue: it is the same message coming back;
* a delivery with no matching publish is a message of its own, and is itself matchable, so
  the other queues' copies of an unseen fanout publish join it;
* a basic.return belongs to the matching publish (returns count as one more "queue").

Because a queue always takes the earliest message it has not taken yet, the messages a
queue took form a prefix of the key's sequence; one integer cursor per (key, queue) is all
the state a queue needs, and matching is O(1). The state is bounded: past ``limit``
remembered messages the oldest are forgotten (a delivery arriving after that becomes a
message of its own).

The vhost is not part of the key: it is unknown on a connection whose handshake happened
before the capture began, and an identical message on the same exchange, routing key and
queue name in two vhosts at the same moment is the rarer case. Queue names are paired with
the delivering connection's vhost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(slots=True, eq=False)
class MessageRef:
    """A message the writer created; ``id`` is set once its batch is written."""

    id: int | None = None


class _KeyState:
    """The remembered messages of a key that holds several, or one taken by several queues."""

    __slots__ = ("entries", "head", "base", "cursors")

    def __init__(self) -> None:
        self.entries: list[MessageRef] = []
        self.head = 0
        """Index in ``entries`` of the oldest message still remembered."""
        self.base = 0
        """Sequence number of ``entries[head]`` (messages forgotten so far)."""
        self.cursors: dict[Hashable, int] = {}
        """Per queue: sequence number of the earliest message it has not taken."""

    def live(self) -> int:
        return len(self.entries) - self.head

    def at(self, seq: int) -> MessageRef:
        return self.entries[self.head + seq - self.base]

    def drop_oldest(self) -> None:
        self.head += 1
        self.base += 1
        if self.head > 32 and self.head * 2 > len(self.entries):
            del self.entries[: self.head]
            self.head = 0


class _TakenOnce(NamedTuple):
    """One remembered message that exactly one queue has taken."""

    ref: MessageRef
    queue: Hashable


_Entry = MessageRef | _TakenOnce | _KeyState
"""What the matcher keeps per key. Almost every key holds one message that one queue
takes, so that case costs a 2-tuple; a bare ``MessageRef`` is a message no queue took yet.
Anything else (a second publish with the same key, a second queue) is a ``_KeyState``."""


def _promote(entry: MessageRef | _TakenOnce) -> _KeyState:
    st = _KeyState()
    if type(entry) is _TakenOnce:
        st.entries.append(entry.ref)
        st.cursors[entry.queue] = 1
    else:
        st.entries.append(entry)  # type: ignore[arg-type]
    return st


class Matcher:
    """Pairs deliveries and returns with the publishes they came from.

    Memory: about 200 bytes per remembered message in the usual shape (a 16-byte key, its
    ``MessageRef``, a ``_TakenOnce`` and the ordering deque's slot), so the default limit
    holds some 10 MB however long the capture.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._keys: dict[Hashable, _Entry] = {}
        self._order: deque[Hashable] = deque()
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._order)

    def _remember(self, key: Hashable) -> None:
        self._order.append(key)
        if len(self._order) > self.limit:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        key = self._order.popleft()
        entry = self._keys[key]
        self.forgotten += 1
        if type(entry) is _KeyState:
            entry.drop_oldest()
            if entry.live():
                return
        del self._keys[key]

    def publish(self, key: Hashable, ref: MessageRef) -> None:
        """A publish: a new message any queue may take."""
        entry = self._keys.get(key)
        if entry is None:
            self._keys[key] = ref
        else:
            if type(entry) is not _KeyState:
                entry = self._keys[key] = _promote(entry)
            entry.entries.append(ref)
        self._remember(key)

    def take(
        self, key: Hashable, queue: Hashable, *, redelivered: bool = False
    ) -> MessageRef | None:
        """The message a delivery from ``queue`` belongs to, or None (no publish seen)."""
        entry = self._keys.get(key)
        if entry is None:
            return None
        kind = type(entry)
        if kind is MessageRef:
            self._keys[key] = _TakenOnce(entry, queue)  # type: ignore[arg-type]
            return entry  # type: ignore[return-value]
        if kind is _TakenOnce:
            if entry.queue == queue:  # type: ignore[union-attr]
                # Taken already: only a redelivery comes back to it.
                return entry.ref if redelivered else None  # type: ignore[union-attr]
            entry = self._keys[key] = _promote(entry)  # type: ignore[arg-type]
        st: _KeyState = entry  # type: ignore[assignment]
        cursors = st.cursors
        cursor = max(cursors.get(queue, st.base), st.base)
        if redelivered and cursor > st.base:
            return st.at(cursor - 1)
        if cursor - st.base < st.live():
            cursors[queue] = cursor + 1
            return st.at(cursor)
        return None

    def orphan(self, key: Hashable, queue: Hashable, ref: MessageRef) -> None:
        """A delivery with no publish seen: its own message, already taken by ``queue``."""
        entry = self._keys.get(key)
        if entry is None:
            self._keys[key] = _TakenOnce(ref, queue)
        else:
            st = entry if type(entry) is _KeyState else _promote(entry)  # type: ignore[arg-type]
            self._keys[key] = st
            st.entries.append(ref)
            st.cursors[queue] = st.base + st.live()
        self._remember(key)
