"""Switching firehose tracing on the real broker, both ways it can be done."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request

import pika
import pytest
from brokerutil import rabbitmqctl, temp_vhost, tracing_on, url_for

from busdoc.errors import BrokerError
from busdoc.sniffer.tracing import TracingControl, mask_url

pytestmark = pytest.mark.broker


def management_up() -> bool:
    try:
        urllib.request.urlopen("http://127.0.0.1:15672/api/overview", timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


needs_management = pytest.mark.skipif(
    not management_up(), reason="rabbitmq_management is not enabled"
)
RABBITMQCTL = pytest.param("rabbitmqctl", marks=pytest.mark.slow)
"""Each rabbitmqctl call starts an Erlang VM (one to two seconds on a busy machine)."""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:s3cret@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("amqps://u:p%40ss@broker/v", "amqps://u:***@broker/v"),
        ("amqp://localhost/", "amqp://localhost/"),
        ("amqp://u:pa:ss@h:notaport/v", "amqp://u:***@h:notaport/v"),
        ("amqp://u:p@ss@h/v", "amqp://u:***@h/v"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    "mode", [RABBITMQCTL, pytest.param("management", marks=needs_management)]
)
def test_enable_then_restore_turns_tracing_back_off(mode: str) -> None:
    with temp_vhost() as vhost:
        control = TracingControl(url_for(vhost), mode=mode)  # type: ignore[arg-type]

        state = control.enable(vhost)
        assert state.method == mode
        assert state.turned_on and not state.was_on
        assert tracing_on(vhost)

        assert control.restore(state) is True
        assert not tracing_on(vhost)


@pytest.mark.parametrize(
    "mode", [RABBITMQCTL, pytest.param("management", marks=needs_management)]
)
def test_tracing_that_was_on_before_is_left_on(mode: str) -> None:
    with temp_vhost() as vhost:
        rabbitmqctl("trace_on", "-p", vhost)
        control = TracingControl(url_for(vhost), mode=mode)  # type: ignore[arg-type]

        state = control.enable(vhost)
        assert state.was_on and not state.turned_on
        assert control.restore(state) is False
        assert tracing_on(vhost)


@pytest.mark.parametrize(
    "mode", [RABBITMQCTL, pytest.param("management", marks=needs_management)]
)
def test_tracing_stays_on_while_another_queue_listens(mode: str) -> None:
    with temp_vhost() as vhost:
        control = TracingControl(url_for(vhost), mode=mode)  # type: ignore[arg-type]
        state = control.enable(vhost)
        conn = pika.BlockingConnection(pika.URLParameters(url_for(vhost)))
        try:
            ch = conn.channel()
            ch.queue_declare("someone-else", auto_delete=False)
            ch.queue_bind("someone-else", "amq.rabbitmq.trace", "#")
            ch.queue_declare("mine")
            ch.queue_bind("mine", "amq.rabbitmq.trace", "#")

            assert control.trace_bindings(vhost) == ["mine", "someone-else"]
            assert control.restore(state, own_queues={"mine"}) is False
            assert tracing_on(vhost)

            ch.queue_delete("someone-else")
            assert control.restore(state, own_queues={"mine"}) is True
            assert not tracing_on(vhost)
        finally:
            conn.close()


@pytest.mark.parametrize(
    "mode", [RABBITMQCTL, pytest.param("management", marks=needs_management)]
)
def test_switches_at_once_for_different_vhosts_all_stay_on(mode: str) -> None:
    # The broker switches by read-modify-write of one list of vhosts; unserialised,
    # six switches at once left one vhost off in each of three rounds.
    with contextlib.ExitStack() as stack:
        vhosts = [stack.enter_context(temp_vhost()) for _ in range(6)]
        start = threading.Barrier(len(vhosts))
        errors: list[BaseException] = []

        def switch(vhost: str) -> None:
            control = TracingControl(url_for(vhost), mode=mode)  # type: ignore[arg-type]
            start.wait()
            try:
                control.enable(vhost)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)

        threads = [threading.Thread(target=switch, args=(v,)) for v in vhosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert [v for v in vhosts if not tracing_on(v)] == []


@needs_management
def test_management_switch_keeps_vhost_description_and_tags() -> None:
    # RabbitMQ 3.10 treats PUT /api/vhosts/<v> as a full update: a body with only
    # "tracing" would wipe the description and tags.
    with temp_vhost() as vhost:
        rabbitmqctl("trace_off", "-p", vhost)
        rabbitmqctl("delete_vhost", vhost)
        rabbitmqctl("add_vhost", vhost, "--description", "billing bus", "--tags", "prod,eu")
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        control = TracingControl(url_for(vhost), mode="management")

        control.restore(control.enable(vhost))

        rows = json.loads(
            rabbitmqctl("list_vhosts", "name", "description", "tags", "--formatter", "json")
        )
        (row,) = [r for r in rows if r["name"] == vhost]
        assert row["description"] == "billing bus"
        assert sorted(row["tags"]) == ["eu", "prod"]


@pytest.mark.parametrize(
    "mode", [RABBITMQCTL, pytest.param("management", marks=needs_management)]
)
def test_missing_vhost_is_a_broker_error(mode: str) -> None:
    control = TracingControl(url_for("no-such-vhost-busdoc"), mode=mode)  # type: ignore[arg-type]

    with pytest.raises(BrokerError, match="no-such-vhost-busdoc"):
        control.enable("no-such-vhost-busdoc")


def test_assume_mode_touches_nothing() -> None:
    with temp_vhost() as vhost:
        control = TracingControl(url_for(vhost), mode="assume")

        state = control.enable(vhost)

        assert state.method == "assume" and not state.turned_on
        assert not tracing_on(vhost)
        assert control.restore(state) is False


def test_unreachable_management_and_remote_host_is_one_clear_error() -> None:
    control = TracingControl(
        "amqp://guest:hunter2@192.0.2.1:5672/%2F",
        management_url="http://127.0.0.1:1",
        timeout=1.0,
    )

    with pytest.raises(BrokerError) as caught:
        control.enable("/")

    message = str(caught.value)
    assert "hunter2" not in message
    assert "--tracing=assume" in message
    assert "\n" not in message


@needs_management
@pytest.mark.slow
def test_user_without_administrator_tag_cannot_switch_through_management() -> None:
    with temp_vhost() as vhost:
        user = "busdoc-monitor-" + vhost[-8:]
        rabbitmqctl("add_user", user, "monitorpw")
        try:
            rabbitmqctl("set_user_tags", user, "monitoring")
            rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            control = TracingControl(
                url_for(vhost, user=user, password="monitorpw"), mode="management"
            )
            with pytest.raises(BrokerError) as caught:
                control.enable(vhost)
            auto_method = TracingControl(
                url_for(vhost, user=user, password="monitorpw"), mode="auto"
            ).method
        finally:
            rabbitmqctl("delete_user", user)

        message = str(caught.value)
        assert "administrator" in message and user in message
        assert "monitorpw" not in message
        assert "--tracing=assume" in message
        assert not tracing_on(vhost)
        # In auto mode the same user falls back to the local rabbitmqctl.
        assert auto_method == "rabbitmqctl"
