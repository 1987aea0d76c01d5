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
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class MessageRef:
    """A message the writer created; ``id`` is set once its batch is written."""

    id: int | None = None


@dataclass(slots=True)
class _KeyState:
    entries: deque[MessageRef] = field(default_factory=deque)
    base: int = 0
    """Sequence number of ``entries[0]`` (entries forgotten from the front so far)."""
    cursors: dict[Hashable, int] = field(default_factory=dict)
    """Per queue: sequence number of the earliest message it has not taken."""


class Matcher:
    """Pairs deliveries and returns with the publishes they came from."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._keys: dict[Hashable, _KeyState] = {}
        self._order: deque[Hashable] = deque()
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._order)

    def _append(self, key: Hashable, ref: MessageRef) -> _KeyState:
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _KeyState()
        st.entries.append(ref)
        self._order.append(key)
        if len(self._order) > self.limit:
            self._forget_oldest()
        return st

    def _forget_oldest(self) -> None:
        key = self._order.popleft()
        st = self._keys[key]
        st.entries.popleft()
        st.base += 1
        self.forgotten += 1
        if not st.entries:
            del self._keys[key]

    def publish(self, key: Hashable, ref: MessageRef) -> None:
        """A publish: a new message any queue may take."""
        self._append(key, ref)

    def take(
        self, key: Hashable, queue: Hashable, *, redelivered: bool = False
    ) -> MessageRef | None:
        """The message a delivery from ``queue`` belongs to, or None (no publish seen)."""
        st = self._keys.get(key)
        if st is None:
            return None
        cursor = max(st.cursors.get(queue, st.base), st.base)
        if redelivered and cursor > st.base:
            return st.entries[cursor - 1 - st.base]
        if cursor - st.base < len(st.entries):
            st.cursors[queue] = cursor + 1
            return st.entries[cursor - st.base]
        return None

    def orphan(self, key: Hashable, queue: Hashable, ref: MessageRef) -> None:
        """A delivery with no publish seen: its own message, already taken by ``queue``."""
        st = self._append(key, ref)
        if key in self._keys:
            st.cursors[queue] = st.base + len(st.entries)
