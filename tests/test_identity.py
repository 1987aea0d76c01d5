"""The matcher behind message identity, case by case (storage/identity.py).

The store tests cover it through real captures; these pin each transition of its
compact per-key states (untaken, taken once, several) to the rule it implements.
"""

from __future__ import annotations

from busdoc.storage.identity import Matcher, MessageRef

Q1 = ("/", "q1")
Q2 = ("/", "q2")


def test_a_publish_is_taken_once_per_queue() -> None:
    m = Matcher()
    ref = MessageRef()
    m.publish(b"k", ref)
    assert m.take(b"k", Q1) is ref
    assert m.take(b"k", Q1) is None  # q1 took it: a second copy is a message of its own
    assert m.take(b"k", Q2) is ref  # another queue gets its own copy of the same message
    assert m.take(b"k", Q2) is None
    assert m.take(b"other", Q1) is None


def test_a_redelivery_goes_back_to_the_message_that_queue_took_last() -> None:
    m = Matcher()
    first, second = MessageRef(), MessageRef()
    m.publish(b"k", first)
    assert m.take(b"k", Q1, redelivered=True) is first  # nothing taken yet: an ordinary take
    assert m.take(b"k", Q1, redelivered=True) is first
    m.publish(b"k", second)
    assert m.take(b"k", Q1) is second
    assert m.take(b"k", Q1, redelivered=True) is second
    assert m.take(b"k", Q2, redelivered=True) is first


def test_identical_publishes_go_to_each_queue_in_publish_order() -> None:
    m = Matcher()
    refs = [MessageRef() for _ in range(3)]
    for ref in refs:
        m.publish(b"k", ref)
    assert [m.take(b"k", Q1) for _ in range(4)] == [*refs, None]
    assert [m.take(b"k", Q2) for _ in range(3)] == refs


def test_an_orphan_delivery_is_matchable_by_the_other_queues_only() -> None:
    m = Matcher()
    orphan = MessageRef()
    m.orphan(b"k", Q1, orphan)
    assert m.take(b"k", Q1) is None  # q1 already has it
    assert m.take(b"k", Q2) is orphan  # q2's copy of the unseen fanout publish joins it
    later = MessageRef()
    m.orphan(b"k", Q2, later)
    assert m.take(b"k", Q1) is later


def test_the_oldest_messages_are_forgotten_past_the_limit() -> None:
    m = Matcher(limit=2)
    a, b, c = MessageRef(), MessageRef(), MessageRef()
    m.publish(b"a", a)
    m.publish(b"k", b)
    m.publish(b"k", c)
    assert len(m) == 2 and m.forgotten == 1
    assert m.take(b"a", Q1) is None
    assert m.take(b"k", Q1) is b
    m.publish(b"z", MessageRef())  # forgets b; c is still there for both queues
    assert m.take(b"k", Q2) is c
    assert m.take(b"k", Q1) is c
    m.publish(b"y", MessageRef())  # forgets c, and with it the key
    assert m.take(b"k", Q2, redelivered=True) is None
