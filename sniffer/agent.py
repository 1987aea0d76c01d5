"""The firehose capture agent: read ``amq.rabbitmq.trace`` and hand records to a sink.

Theory of operation
-------------------
One *tap* per (broker URL, vhost): its own AMQP connection (a connection is bound to one
vhost, and tracing is per node, so a cluster is several URLs), its own queue, named
``busdoc.firehose.<host>.<pid>.<token>``, exclusive and auto-delete, bounded with
``x-max-length-bytes`` and ``x-overflow: drop-head`` so a slow or stuck agent can never
fill the broker's memory, bound to the trace exchange with ``#``. With ``queue=NAME`` the
tap uses that queue instead (``NAME.<n>`` when there are several taps), durable and kept
when the agent goes: what it had not stored when it stopped or failed stays there, unacked
deliveries go back to it, and the next run with the same name starts with them. The kept
queue counts as a listener, so tracing stays on for it between runs.

Everything runs on one thread: each turn of the loop lets every connection dispatch what
arrived (pika's ``BlockingConnection``), and when enough trace messages are pending, or
the oldest has waited ``batch_seconds``, they are decoded (``firehose.trace_to_records``),
handed to ``sink(records)``, which returns only once they are durably stored, and only
then acknowledged, ``multiple=True`` up to the last delivery tag of each tap. If the sink
raises, nothing is acked and the error leaves ``run()``.

Passivity: the agent never touches an application queue or message; the only things it
declares, binds, consumes and acks are its own queue and its trace copies.

Gaps: the broker does not count what ``drop-head`` throws away. Every ``depth_interval``
the agent passively re-declares its queue; when the ready messages times the mean trace
body size reach 90% of the bound (RabbitMQ counts body bytes of ready messages against
``x-max-length-bytes``), a gap opens, and it closes at the first poll below. A lost
connection is a gap too, from the moment it is noticed until the tap is back. Every
``trace_check_interval`` the agent also reads the tracing switch back: another client's
switch can undo ours (the broker does not serialise them, see ``tracing``), and an
operator may turn it off. Tracing found off is turned on again and recorded as a gap from
the last check that saw it on.

Failures: while starting, a broker that is down, refuses the credentials, lacks the
vhost or denies a permission is a ``BrokerError`` with one line (passwords masked). Once
running, a lost connection is retried with exponential backoff; on reconnect the queue is
declared again and tracing re-enabled (a restarted node forgets it). What was received
before the loss is still handed to the sink (it cannot be acked, the queue died with the
connection); with a kept queue it is dropped instead, since the broker puts it back in the
queue and delivers it again. SIGINT/SIGTERM (when run on the main thread), ``stop()``,
``stop_event``, ``duration`` or ``max_messages`` end the loop: pending records are
flushed, connections closed, and tracing turned off where we turned it on and no other
queue listens. A sink that raises (a full disk, a store locked too long) ends the run
rather than being retried: until the store can be written again, unstored trace messages
are better off in a kept queue on the broker than in the agent's memory.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pika
import pika.exceptions

from busdoc.errors import BrokerError
from busdoc.sniffer.firehose import TRACE_EXCHANGE, trace_to_records
from busdoc.sniffer.records import Notice, Record
from busdoc.sniffer.tracing import TracingControl, TracingMode, TracingState, mask_url

log = logging.getLogger(__name__)

Sink = Callable[[list[Record]], None]
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
GAP_FILL_RATIO = 0.9
GAP_REASONS = {
    "queue_full": "trace queue full",
    "disconnected": "disconnected",
    "tracing_off": "tracing was off",
}
"""A gap's reason code and the words the CLI says it with."""

_CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionClosed,
    pika.exceptions.StreamLostError,
    pika.exceptions.ChannelClosed,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.ConnectionWrongStateError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class Gap:
    """A time span in which trace messages may have been lost."""

    url: str
    """The broker URL, password masked."""
    vhost: str
    reason: str
    """``queue_full`` (the bound was reached, the broker dropped the oldest),
    ``disconnected`` (no connection, nothing traced reached us) or ``tracing_off``
    (tracing was found switched off, nothing was traced)."""
    start: float
    end: float | None = None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the CLI's live status line shows."""

    total: int
    """Trace messages handed to the sink so far."""
    rate: float
    """Trace messages per second over the last status interval."""
    gaps: int
    queued: int
    """Trace messages waiting in the agent's queues at the last depth poll."""
    pending: int
    """Received but not yet stored (the store lag)."""
    connected: int
    taps: int
    tracing: tuple[str, ...]
    """``vhost: method`` for each tap (``management``, ``rabbitmqctl``, ``assume``)."""

    def line(self) -> str:
        """One line for the CLI's live status (and the log of a service)."""
        parts = [
            f"{self.total:,} messages",
            f"{self.rate:,.0f}/s",
            f"{self.gaps} gap{'s' if self.gaps != 1 else ''}",
            f"lag {self.queued + self.pending:,}",
        ]
        if self.connected < self.taps:
            parts.append(f"{self.taps - self.connected} of {self.taps} connections down")
        if self.tracing:
            parts.append("tracing " + ", ".join(self.tracing))
        return " · ".join(parts)


@dataclass(slots=True)
class StatusLines:
    """Which lines a CLI shows about a running agent, and when; it prints nothing itself.

    ``announce`` gives the "capturing" line once, when every tap first consumes. ``due``
    gives the status line at most every ``every`` seconds, for a service's journal (a
    terminal's live display shows every update instead).
    """

    every: float = 30.0
    announced: bool = False
    last: float | None = None
    """When ``due`` last gave a line (the caller's clock)."""

    def announce(self, status: AgentStatus) -> str | None:
        if self.announced or status.connected != status.taps:
            return None
        self.announced = True
        return "capturing; tracing " + ", ".join(status.tracing)

    def due(self, status: AgentStatus, now: float) -> str | None:
        if self.last is not None and now - self.last < self.every:
            return None
        self.last = now
        return status.line()


@dataclass(eq=False)
class _Tap:
    url: str
    vhost: str
    params: pika.URLParameters
    control: TracingControl
    base_queue: str
    queue: str = ""
    kept: bool = False
    """The queue is named by the user and outlives the agent (durable, not exclusive)."""
    connects: int = 0
    state: TracingState | None = None
    connection: pika.BlockingConnection | None = None
    channel: Any = None
    pending: list[tuple[int, Any, Any, bytes, float]] = field(default_factory=list)
    mean_body: float = 0.0
    depth: int = 0
    full_gap: Gap | None = None
    down_gap: Gap | None = None
    backoff: float = 0.0
    next_attempt: float = 0.0
    traced_at: float = 0.0
    """When tracing was last known to be on (epoch seconds)."""
    off_since: float | None = None
    """Tracing was found off and is not known to be back on: the open gap's start."""

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    @property
    def user(self) -> str:
        return str(self.params.credentials.username)


class FirehoseAgent:
    """Capture the firehose of one or more brokers and vhosts into ``sink``."""

    def __init__(
        self,
        urls: Sequence[str],
        vhosts: Sequence[str],
        sink: Sink,
        *,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        duration: float | None = None,
        max_messages: int | None = None,
        stop_event: threading.Event | None = None,
        tracing: TracingMode = "auto",
        management_url: str | None = None,
        status: Callable[[AgentStatus], None] | None = None,
        status_interval: float = 1.0,
        batch_size: int = 500,
        batch_seconds: float = 0.2,
        prefetch: int = 2000,
        depth_interval: float = 1.0,
        trace_check_interval: float = 10.0,
        reconnect_max: float = 30.0,
        ssl_options: pika.SSLOptions | None = None,
        queue: str | None = None,
    ) -> None:
        if not urls:
            raise BrokerError("no broker URL given")
        self._sink = sink
        self._max_queue_bytes = max_queue_bytes
        self._duration = duration
        self._max_messages = max_messages
        self._stop_event = stop_event or threading.Event()
        self._tracing = tracing
        self._status = status
        self._status_interval = status_interval
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        self._prefetch = prefetch
        self._depth_interval = depth_interval
        self._trace_check_interval = trace_check_interval
        self._last_trace_check = time.monotonic()
        self._reconnect_max = reconnect_max
        self._seen: set[tuple[str, str | None, str | None, str | None]] = set()
        self._orphans: list[tuple[int, Any, Any, bytes, float]] = []
        self._notices: list[Record] = []
        self._last_depth = 0.0
        self.gaps: list[Gap] = []
        self.total = 0
        self.taps: list[_Tap] = []
        token = secrets.token_hex(4)
        host = socket.gethostname().split(".")[0]
        for url in urls:
            try:
                params = pika.URLParameters(url)
            except Exception as e:  # pika raises several types for a bad URL
                raise BrokerError(f"bad AMQP URL {mask_url(url)}: {_scrub(str(e), url)}") from None
            control = TracingControl(url, mode=tracing, management_url=management_url)
            url_vhost = params.virtual_host
            for vhost in vhosts or [url_vhost]:
                tap_params = pika.URLParameters(url)
                tap_params.virtual_host = vhost
                tap_params.connection_attempts = 1
                if ssl_options is not None:
                    tap_params.ssl_options = ssl_options
                tap_params.client_properties = {"connection_name": "busdoc firehose agent"}
                base = f"busdoc.firehose.{host}.{os.getpid()}.{token}.{len(self.taps)}"
                self.taps.append(
                    _Tap(url=url, vhost=vhost, params=tap_params, control=control,
                         base_queue=base, queue=base, kept=queue is not None)
                )
        if queue is not None:
            for n, tap in enumerate(self.taps):
                tap.base_queue = tap.queue = queue if len(self.taps) == 1 else f"{queue}.{n}"
        # Private queues only: a kept queue is a listener that outlives this run.
        self._own_queues = {t.queue for t in self.taps if not t.kept}

    # -- public ------------------------------------------------------------------------

    @property
    def queue_names(self) -> list[str]:
        """The agent's current trace queues (one per tap)."""
        return [t.queue for t in self.taps]

    def status(self) -> AgentStatus:
        """The current figures (rate 0); safe to read from another thread for display."""
        return self._snapshot(0.0)

    def stop(self) -> None:
        """Ask the loop to flush and return (thread-safe)."""
        self._stop_event.set()

    def run(self) -> AgentStatus:
        """Capture until stopped; returns the final status."""
        previous = self._install_signal_handlers()
        try:
            for tap in self.taps:
                self._start_tap(tap)
            self._loop()
            self._flush()
            self._end_gaps()
            if self._notices:  # theirs, without another depth poll that could open one
                self._sink(list(self._notices))
                self._notices.clear()
            if self._status is not None:
                self._status(self._snapshot(0.0))
        except BaseException:
            self._restore_signal_handlers(previous)
            self._shutdown(quiet=True)
            raise
        self._restore_signal_handlers(previous)
        self._shutdown(quiet=False)
        return self._snapshot(0.0)

    # -- loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        started = time.monotonic()
        last_status = started
        last_total = 0
        while not self._stop_event.is_set():
            now = time.monotonic()
            if self._duration is not None and now - started >= self._duration:
                break
            if self._max_messages is not None and self.total >= self._max_messages:
                break
            live = [t for t in self.taps if t.connection is not None]
            slice_ = 0.05 / max(1, len(live))
            for tap in self.taps:
                if tap.connection is None:
                    if now >= tap.next_attempt:
                        self._reconnect(tap)
                    continue
                try:
                    tap.connection.process_data_events(time_limit=slice_)
                except _CONNECTION_ERRORS as e:
                    self._lost(tap, e)
            if not live:
                self._stop_event.wait(0.05)
            pending = self._pending_count()
            if self._notices or pending and (
                pending >= self._batch_size
                or self._remaining() <= pending
                or time.time() - self._oldest_pending() >= self._batch_seconds
            ):
                self._flush()
            now = time.monotonic()
            if now - self._last_depth >= self._depth_interval:
                self._poll_depths()
            if now - self._last_trace_check >= self._trace_check_interval:
                self._check_tracing()
            if self._status is not None and now - last_status >= self._status_interval:
                rate = (self.total - last_total) / (now - last_status)
                last_status, last_total = now, self.total
                self._status(self._snapshot(rate))

    def _remaining(self) -> int:
        if self._max_messages is None:
            return 1 << 62
        return max(0, self._max_messages - self.total)

    def _pending_count(self) -> int:
        return len(self._orphans) + sum(len(t.pending) for t in self.taps)

    def _oldest_pending(self) -> float:
        times = [t.pending[0][4] for t in self.taps if t.pending]
        if self._orphans:
            times.append(self._orphans[0][4])
        return min(times) if times else time.time()

    def _flush(self) -> None:
        """Decode, sink, then ack: the order that makes "acked" mean "stored"."""
        remaining = self._remaining()
        batches: list[tuple[_Tap | None, list[tuple[int, Any, Any, bytes, float]]]] = []
        if self._orphans:
            take = self._orphans[:remaining]
            del self._orphans[: len(take)]
            remaining -= len(take)
            batches.append((None, take))
        for tap in self.taps:
            if tap.pending and remaining > 0:
                take = tap.pending[:remaining]
                remaining -= len(take)
                batches.append((tap, take))
        if not batches and not self._notices:
            return
        records: list[Record] = list(self._notices)
        count = 0
        for _, items in batches:
            for _tag, method, props, body, when in items:
                records.extend(
                    trace_to_records(method, props, body, time=when, seen_connections=self._seen)
                )
                count += 1
        self._sink(records)
        self._notices.clear()
        self.total += count
        # Stored: out of pending before anything can notice a lost connection, which
        # would otherwise hand them to the sink a second time as orphans.
        for owner, items in batches:
            if owner is not None:
                del owner.pending[: len(items)]
        # The queue fills while the sink works; look before acking lets the broker
        # move up to ``prefetch`` ready messages to us and hide how full it got.
        if time.monotonic() - self._last_depth >= self._depth_interval:
            self._poll_depths()
        for owner, items in batches:
            if owner is None or owner.channel is None:
                continue
            try:
                owner.channel.basic_ack(delivery_tag=items[-1][0], multiple=True)
            except _CONNECTION_ERRORS as e:
                self._lost(owner, e)

    def _on_message(self, tap: _Tap) -> Callable[..., None]:
        def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            tap.pending.append((method.delivery_tag, method, properties, body, time.time()))
            if tap.mean_body:
                tap.mean_body += (len(body) - tap.mean_body) * 0.05
            else:
                tap.mean_body = float(len(body)) or 1e-9

        return on_message

    # -- depth and gaps ----------------------------------------------------------------

    def _poll_depths(self) -> None:
        self._last_depth = time.monotonic()
        for tap in self.taps:
            if tap.channel is None:
                continue
            try:
                ok = tap.channel.queue_declare(tap.queue, passive=True)
            except _CONNECTION_ERRORS as e:
                self._lost(tap, e)
                continue
            tap.depth = ok.method.message_count
            self._check_bound(tap, time.time())

    def _check_tracing(self) -> None:
        """Turn tracing back on where it went off behind our back, and record the gap."""
        self._last_trace_check = time.monotonic()
        for tap in self.taps:
            if tap.connection is None or tap.state is None or tap.state.method == "assume":
                continue
            checked = time.time()
            try:
                if not tap.control.is_on(tap.vhost):
                    if tap.off_since is None:
                        tap.off_since = tap.traced_at
                        log.warning("tracing for vhost %s on %s was switched off; turning it "
                                    "on again", tap.vhost, tap.masked)
                    state = tap.control.enable(tap.vhost)
                    tap.state = replace(
                        tap.state, turned_on=tap.state.turned_on or state.turned_on
                    )
            except Exception as e:  # noqa: BLE001 - a failed check must not end the capture
                # Found off and not turned on again: the gap stays open for the next try.
                log.warning("could not check tracing for vhost %s on %s: %s",
                            tap.vhost, tap.masked, e)
                continue
            if tap.off_since is None:
                tap.traced_at = checked
            else:
                self._tracing_back(tap)

    def _tracing_back(self, tap: _Tap) -> None:
        """Tracing is known to be on again: the gap since it was found off ends now."""
        now = time.time()
        self._close_gap(_off_gap(tap, now))
        tap.traced_at = now

    def _check_bound(self, tap: _Tap, now: float) -> None:
        full = tap.depth * tap.mean_body >= GAP_FILL_RATIO * self._max_queue_bytes
        if full and tap.full_gap is None:
            tap.full_gap = Gap(url=tap.masked, vhost=tap.vhost, reason="queue_full", start=now)
            log.warning("trace queue for vhost %s reached its bound: messages may be dropped",
                        tap.vhost)
        elif not full and tap.full_gap is not None:
            self._close_gap(replace(tap.full_gap, end=now))
            tap.full_gap = None

    def _end_gaps(self) -> None:
        """End the gaps still open when the run ends, with notices the sink still takes
        (``_shutdown`` only records them, for a run that ends in an error)."""
        now = time.time()
        for tap in self.taps:
            for gap in _take_open_gaps(tap, now):
                self._close_gap(gap)

    def _close_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        self._notices.append(_gap_notice(gap))

    # -- connections -------------------------------------------------------------------

    def _start_tap(self, tap: _Tap) -> None:
        """First connection: every failure is fatal and said in one line."""
        try:
            self._connect(tap)
        except BrokerError:
            raise
        except pika.exceptions.ProbableAuthenticationError:
            raise BrokerError(
                f"RabbitMQ at {tap.masked} refused the credentials of user {tap.user!r}"
            ) from None
        except pika.exceptions.ProbableAccessDeniedError as e:
            raise BrokerError(
                f"user {tap.user!r} may not open vhost {tap.vhost!r} on {tap.masked}: "
                f"{_reply_text(e)}"
            ) from None
        except pika.exceptions.ChannelClosedByBroker as e:
            raise BrokerError(
                f"RabbitMQ at {tap.masked} refused vhost {tap.vhost!r} setup for user "
                f"{tap.user!r}: {e.reply_text}"
            ) from None
        except pika.exceptions.AuthenticationError:
            raise BrokerError(
                f"RabbitMQ at {tap.masked} refused the credentials of user {tap.user!r}"
            ) from None
        except _CONNECTION_ERRORS as e:
            raise BrokerError(f"cannot reach RabbitMQ at {tap.masked}: {_reply_text(e)}") from None

    def _connect(self, tap: _Tap) -> None:
        connection = pika.BlockingConnection(tap.params)
        if not tap.kept:
            # A fresh name after a loss: the broker may not have noticed yet that the old
            # connection is dead, and would refuse the old exclusive queue (RESOURCE_LOCKED).
            tap.queue = (
                tap.base_queue if tap.connects == 0 else f"{tap.base_queue}.r{tap.connects}"
            )
            self._own_queues.add(tap.queue)
        tap.connects += 1
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.queue_declare(
                tap.queue,
                durable=tap.kept,
                exclusive=not tap.kept,
                auto_delete=not tap.kept,
                arguments={"x-max-length-bytes": self._max_queue_bytes, "x-overflow": "drop-head"},
            )
            channel.queue_bind(tap.queue, TRACE_EXCHANGE, routing_key="#")
            # Bound before tracing goes on, so nothing traced in between is missed.
            state = tap.control.enable(tap.vhost)
            if tap.state is None:
                tap.state = state
            else:
                tap.state = replace(tap.state, turned_on=tap.state.turned_on or state.turned_on)
            channel.basic_consume(tap.queue, self._on_message(tap), auto_ack=False)
        except BaseException:
            _close_quietly(connection)
            raise
        tap.connection, tap.channel = connection, channel
        if tap.off_since is not None:  # found off before the connection was lost
            self._tracing_back(tap)
        tap.traced_at = time.time()
        log.info("capturing vhost %s on %s (tracing: %s)", tap.vhost, tap.masked, tap.state.method)

    def _lost(self, tap: _Tap, error: BaseException) -> None:
        if tap.connection is None:
            return
        now = time.time()
        log.warning("lost vhost %s on %s: %s; reconnecting", tap.vhost, tap.masked,
                    _reply_text(error))
        _close_quietly(tap.connection)
        tap.connection = tap.channel = None
        if not tap.kept:
            # Received but unacked: the queue died with the connection, store them anyway.
            self._orphans.extend(tap.pending)
        # A kept queue takes them back, and delivers them again after the reconnect.
        tap.pending.clear()
        if tap.full_gap is not None:
            self._close_gap(replace(tap.full_gap, end=now))
            tap.full_gap = None
        tap.down_gap = Gap(url=tap.masked, vhost=tap.vhost, reason="disconnected", start=now)
        tap.backoff = 0.5
        tap.next_attempt = time.monotonic() + tap.backoff

    def _reconnect(self, tap: _Tap) -> None:
        try:
            self._connect(tap)
        except (BrokerError, *_CONNECTION_ERRORS) as e:
            tap.backoff = min(self._reconnect_max, max(0.5, tap.backoff * 2))
            tap.next_attempt = time.monotonic() + tap.backoff
            log.info("vhost %s on %s still unreachable (%s); next try in %.1fs", tap.vhost,
                     tap.masked, _reply_text(e), tap.backoff)
            return
        if tap.down_gap is not None:
            self._close_gap(replace(tap.down_gap, end=time.time()))
            tap.down_gap = None
        tap.backoff = 0.0

    def _shutdown(self, *, quiet: bool) -> None:
        """Close our connections (private queues go with them), then put tracing back."""
        now = time.time()
        for tap in self.taps:
            self.gaps.extend(_take_open_gaps(tap, now))
            if tap.connection is not None:
                _close_quietly(tap.connection)
                tap.connection = tap.channel = None
        own = set(self._own_queues)
        problems: list[str] = []
        for tap in self.taps:
            if tap.state is None:
                continue
            try:
                if tap.control.restore(tap.state, own):
                    log.info("tracing turned off again for vhost %s", tap.vhost)
            except (BrokerError, OSError) as e:
                problems.append(f"vhost {tap.vhost!r}: {e}")
            tap.state = replace(tap.state, turned_on=False)
        if problems and not quiet:
            raise BrokerError("could not turn tracing off again: " + "; ".join(problems))
        for problem in problems:
            log.warning("could not turn tracing off again: %s", problem)

    def _snapshot(self, rate: float) -> AgentStatus:
        return AgentStatus(
            total=self.total,
            rate=rate,
            gaps=len(self.gaps) + sum(
                (t.full_gap is not None) + (t.down_gap is not None) + (t.off_since is not None)
                for t in self.taps
            ),
            queued=sum(t.depth for t in self.taps),
            pending=self._pending_count(),
            connected=sum(1 for t in self.taps if t.connection is not None),
            taps=len(self.taps),
            tracing=tuple(
                f"{t.vhost}: {t.state.method if t.state else 'starting'}" for t in self.taps
            ),
        )

    # -- signals -----------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            self._stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _off_gap(tap: _Tap, end: float) -> Gap:
    """The tracing-off gap open on ``tap``, ended at ``end`` (and no longer open)."""
    start = tap.traced_at if tap.off_since is None else tap.off_since
    tap.off_since = None
    return Gap(url=tap.masked, vhost=tap.vhost, reason="tracing_off", start=start, end=end)


def _take_open_gaps(tap: _Tap, now: float) -> list[Gap]:
    """The gaps still open on ``tap``, ended at ``now`` (and no longer open)."""
    gaps = []
    if tap.full_gap is not None:
        gaps.append(replace(tap.full_gap, end=now))
        tap.full_gap = None
    if tap.down_gap is not None:
        gaps.append(replace(tap.down_gap, end=now))
        tap.down_gap = None
    if tap.off_since is not None:
        gaps.append(_off_gap(tap, now))
    return gaps


def _gap_notice(gap: Gap) -> Notice:
    """A gap travels to the sink as a ``Notice`` so it is stored with the capture run."""
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(gap.start))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(gap.end or gap.start))
    reason = GAP_REASONS.get(gap.reason, gap.reason)
    return Notice(
        code=f"firehose_gap_{gap.reason}",
        message=f"{reason}, messages may be missing: vhost {gap.vhost} on {gap.url} "
        f"from {start} to {end}",
    )


def _scrub(text: str, url: str) -> str:
    """Remove the URL's password from text that may quote it."""
    password = urllib.parse.urlsplit(url).password
    if password:
        text = text.replace(password, "***").replace(urllib.parse.unquote(password), "***")
    return text


def _reply_text(error: BaseException) -> str:
    text = getattr(error, "reply_text", None)
    if text:
        return str(text)
    args = getattr(error, "args", ())
    if args and isinstance(args[0], BaseException):
        return _reply_text(args[0])
    return str(error) or type(error).__name__


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # closing a dead connection may fail in many ways
        log.debug("closing connection failed", exc_info=True)


__all__ = [
    "AgentStatus", "FirehoseAgent", "Gap", "GAP_REASONS", "Sink", "StatusLines",
    "DEFAULT_MAX_QUEUE_BYTES",
]
