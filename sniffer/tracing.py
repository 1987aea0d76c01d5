"""Turn RabbitMQ's firehose tracing on and off for a vhost, and put it back as it was.

Tracing is a per-node, per-vhost switch kept in the node's memory (``trace_vhosts`` in the
``rabbit`` application environment): it is lost when the node restarts, and (measured on
3.10) it survives deleting and re-creating a vhost of the same name. Two ways to flip it:

* the management HTTP API, ``PUT /api/vhosts/<vhost>`` with ``"tracing"`` (needs the
  ``administrator`` tag). RabbitMQ 3.10 treats that PUT as a full update of the vhost:
  a body with only ``tracing`` wipes its description and tags, so the current
  description, tags and default queue type are read first and sent back;
* ``rabbitmqctl trace_on|trace_off -p <vhost>``, when the broker runs on this machine
  and we may talk to it (root or the rabbitmq user).

``assume`` touches nothing: an operator turned tracing on and the agent runs with a
least-privilege user that can only declare, bind and read its own queue.

On exit, tracing is turned off only if we turned it on and no queue other than ours is
still bound to ``amq.rabbitmq.trace`` in that vhost (another agent, the rabbitmq_tracing
plugin, an operator's debugging session).

Concurrent switches lose each other. The node keeps one list of traced vhosts and a switch
reads it, changes it and writes it back with nothing serialising two switches (3.10
``rabbit_trace:update_config``): two switches at once, even for different vhosts, can
leave one of them undone (measured: 6 threads switching 6 vhosts on at once, one vhost
stayed off in each of 3 rounds). So the switches of this process are serialised, ``enable``
reads the state back and switches again if it did not stick, and the agent checks again
while it runs, for the race with another process that lands after the read-back.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from busdoc.errors import BrokerError

TracingMode = Literal["auto", "management", "rabbitmqctl", "assume"]
TRACE_EXCHANGE = "amq.rabbitmq.trace"
MANAGEMENT_PORT = 15672
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
_SWITCH_TRIES = 3
_switch_lock = threading.Lock()
"""One switch at a time from this process: the broker does not serialise them."""


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for messages and logs.

    Works on the text of the authority, so even a URL urllib cannot fully parse (a bad
    port) is masked.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{tail}"


@dataclass(frozen=True, slots=True)
class TracingState:
    """What we found and did for one vhost, so exit can undo exactly that."""

    vhost: str
    method: str
    """``management``, ``rabbitmqctl`` or ``assume``: how tracing was checked and switched."""
    was_on: bool
    turned_on: bool


class TracingControl:
    """Check and switch tracing on the broker an AMQP URL points at."""

    def __init__(
        self,
        amqp_url: str,
        *,
        mode: TracingMode = "auto",
        management_url: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        parts = urllib.parse.urlsplit(amqp_url)
        self._masked = mask_url(amqp_url)
        self._user = urllib.parse.unquote(parts.username or "guest")
        self._password = urllib.parse.unquote(parts.password or "guest")
        self._host = parts.hostname or "localhost"
        if management_url is None:
            host = f"[{self._host}]" if ":" in self._host else self._host
            management_url = f"http://{host}:{MANAGEMENT_PORT}"
        self._api = management_url.rstrip("/") + "/api"
        self._timeout = timeout
        self._requested = mode
        self._method: str | None = "assume" if mode == "assume" else None

    # -- which way ---------------------------------------------------------------------

    @property
    def method(self) -> str:
        """How tracing is switched; probes the broker the first time it is asked."""
        if self._method is None:
            self._method = self._probe()
        return self._method

    def _probe(self) -> str:
        problems: list[str] = []
        if self._requested in ("auto", "management"):
            problem = self._management_problem()
            if problem is None:
                return "management"
            problems.append(problem)
        if self._requested in ("auto", "rabbitmqctl"):
            problem = self._rabbitmqctl_problem()
            if problem is None:
                return "rabbitmqctl"
            problems.append(problem)
        raise BrokerError(
            f"cannot switch tracing on {self._masked}: {'; '.join(problems)} "
            "(turn it on yourself and use --tracing=assume)"
        )

    def _management_problem(self) -> str | None:
        try:
            me = self._http("GET", "/whoami")
        except _HttpError as e:
            if e.status in (401, 403):
                return f"the management API refuses user {self._user!r}"
            return f"management API: {e}"
        except OSError as e:
            return f"management API not reachable at {self._api} ({_reason(e)})"
        tags = me.get("tags", []) if isinstance(me, dict) else []
        if isinstance(tags, str):
            tags = tags.split(",")
        if "administrator" not in tags:
            # Only administrators may PUT a vhost; a local rabbitmqctl may still do it.
            return (
                f"user {self._user!r} lacks the administrator tag the management API "
                "needs to switch tracing"
            )
        return None

    def _rabbitmqctl_problem(self) -> str | None:
        if not self._is_local():
            return f"rabbitmqctl only works for a local broker, not {self._host}"
        if shutil.which("rabbitmqctl") is None:
            return "rabbitmqctl is not installed here"
        try:
            self._ctl("list_vhosts", "name")
        except BrokerError as e:
            return str(e)
        return None

    def _is_local(self) -> bool:
        if self._host in _LOCAL_HOSTS:
            return True
        try:
            return self._host in {socket.gethostname(), socket.getfqdn()}
        except OSError:
            return False

    # -- operations --------------------------------------------------------------------

    def is_on(self, vhost: str) -> bool:
        """Whether tracing is on for ``vhost``; ``BrokerError`` when the vhost is missing."""
        method = self.method
        if method == "management":
            info = self._vhost_info(vhost)
            return bool(info.get("tracing"))
        if method == "rabbitmqctl":
            for row in self._ctl_json("list_vhosts", "name", "tracing"):
                if row.get("name") == vhost:
                    return bool(row.get("tracing"))
            raise BrokerError(f"vhost {vhost!r} does not exist on {self._masked}")
        raise BrokerError("tracing state is unknown in assume mode")

    def set(self, vhost: str, on: bool) -> None:
        """Switch tracing for ``vhost`` (idempotent on the broker side)."""
        method = self.method
        with _switch_lock:
            if method == "management":
                info = self._vhost_info(vhost)
                body: dict[str, Any] = {"tracing": on}
                for key in ("description", "tags", "default_queue_type"):
                    value = info.get(key)
                    if value not in (None, "undefined"):
                        body[key] = value
                self._http("PUT", f"/vhosts/{_quote(vhost)}", body)
            elif method == "rabbitmqctl":
                self._ctl("trace_on" if on else "trace_off", "-p", vhost)
            else:
                raise BrokerError("tracing is not switched in assume mode")

    def enable(self, vhost: str) -> TracingState:
        """Make sure tracing is on, remembering whether it already was."""
        if self._requested == "assume":
            return TracingState(vhost=vhost, method="assume", was_on=True, turned_on=False)
        was_on = self.is_on(vhost)
        if not was_on:
            for _ in range(_SWITCH_TRIES):
                self.set(vhost, True)
                if self.is_on(vhost):
                    break
            else:
                raise BrokerError(
                    f"tracing for vhost {vhost!r} on {self._masked} did not stay on after "
                    f"{_SWITCH_TRIES} tries: something else keeps switching it"
                )
        return TracingState(
            vhost=vhost, method=self.method, was_on=was_on, turned_on=not was_on
        )

    def trace_bindings(self, vhost: str) -> list[str]:
        """Names of the queues bound to ``amq.rabbitmq.trace`` in ``vhost``."""
        method = self.method
        if method == "management":
            path = f"/exchanges/{_quote(vhost)}/{TRACE_EXCHANGE}/bindings/source"
            rows = self._http("GET", path) or []
            return sorted(
                {r["destination"] for r in rows if r.get("destination_type") == "queue"}
            )
        if method == "rabbitmqctl":
            rows = self._ctl_json(
                "list_bindings", "-p", vhost, "source_name", "destination_name",
                "destination_kind",
            )
            return sorted(
                {
                    r["destination_name"]
                    for r in rows
                    if r.get("source_name") == TRACE_EXCHANGE
                    and r.get("destination_kind") == "queue"
                }
            )
        raise BrokerError("bindings are not listed in assume mode")

    def restore(self, state: TracingState, own_queues: Collection[str] = ()) -> bool:
        """Turn tracing off if we turned it on and nobody else listens; True if turned off."""
        if not state.turned_on or state.method == "assume":
            return False
        others = [q for q in self.trace_bindings(state.vhost) if q not in own_queues]
        if others:
            return False
        self.set(state.vhost, False)
        return True

    # -- transports --------------------------------------------------------------------

    def _vhost_info(self, vhost: str) -> dict[str, Any]:
        try:
            info = self._http("GET", f"/vhosts/{_quote(vhost)}")
        except _HttpError as e:
            if e.status == 404:
                raise BrokerError(f"vhost {vhost!r} does not exist on {self._masked}") from e
            raise
        return info if isinstance(info, dict) else {}

    def _http(self, verb: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._api + path, data=data, method=verb)
        token = base64.b64encode(f"{self._user}:{self._password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            if e.code in (401, 403) and self._method == "management":
                raise BrokerError(
                    f"user {self._user!r} may not switch tracing through the management "
                    f"API of {self._masked} (needs the administrator tag)"
                ) from e
            raise _HttpError(e.code, f"{verb} {path}: HTTP {e.code}") from e
        except http.client.HTTPException as e:  # a reply cut short or malformed
            raise BrokerError(f"management API of {self._masked}: {verb} {path}: {e!r}") from e
        try:
            return json.loads(payload) if payload else None
        except ValueError as e:
            raise BrokerError(
                f"management API of {self._masked}: {verb} {path} answered something "
                "that is not JSON"
            ) from e

    def _ctl(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["rabbitmqctl", "-q", *args],
                capture_output=True, text=True, timeout=60, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BrokerError(f"rabbitmqctl {args[0]} failed: {e}") from e
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            line = lines[0] if lines else f"exit status {done.returncode}"
            if "does not exist" in (done.stderr or "") or "no_such_vhost" in (done.stderr or ""):
                raise BrokerError(f"vhost does not exist: {line}")
            raise BrokerError(f"rabbitmqctl {args[0]} failed: {line}")
        return done.stdout

    def _ctl_json(self, *args: str) -> Sequence[dict[str, Any]]:
        out = self._ctl(*args, "--formatter", "json")
        try:
            rows = json.loads(out) if out.strip() else []
        except ValueError as e:
            raise BrokerError(f"rabbitmqctl {args[0]} printed something unexpected") from e
        return rows if isinstance(rows, list) else []


# -- doctor ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``busdoc doctor``."""

    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


AGENT_QUEUE_PREFIX = "busdoc.firehose."


def broker_checks(
    amqp_url: str,
    vhosts: Sequence[str] = (),
    *,
    mode: TracingMode = "auto",
    management_url: str | None = None,
    fix: bool = False,
    connection_factory: Any = None,
) -> list[Check]:
    """Everything the firehose agent needs from the broker, each as a ``Check``.

    Connection and credentials; whether tracing can be switched (and how); per vhost:
    tracing on or off, who is bound to ``amq.rabbitmq.trace`` (busdoc agents, the
    rabbitmq_tracing plugin, others); whether the user may declare and bind its own
    trace queue. With ``fix``, tracing that is on with no queue bound at all (what an
    agent killed with ``kill -9`` leaves behind) is turned off.
    """
    import pika
    import pika.exceptions

    masked = mask_url(amqp_url)
    checks: list[Check] = []
    try:
        params = pika.URLParameters(amqp_url)
    except Exception:  # pika raises several types for a bad URL
        return [Check("broker", "fail", f"bad AMQP URL {masked}", "check the URL")]
    user = params.credentials.username
    url_vhost = params.virtual_host
    params.connection_attempts = 1
    params.client_properties = {"connection_name": "busdoc doctor"}
    factory = connection_factory or pika.BlockingConnection
    try:
        factory(params).close()
    except pika.exceptions.ProbableAuthenticationError:
        return [Check("broker", "fail", f"{masked} refused the credentials of user {user!r}",
                      "check the user name and password (BUSDOC_AMQP_URL or --url-file)")]
    except pika.exceptions.ProbableAccessDeniedError:
        checks.append(Check("broker", "warn",
                            f"user {user!r} may not open vhost {url_vhost!r} on {masked}",
                            f"rabbitmqctl set_permissions -p {url_vhost} {user} ..."))
    except (pika.exceptions.AMQPError, OSError) as e:
        return [Check("broker", "fail", f"cannot reach RabbitMQ at {masked}: {_why(e)}",
                      "is the broker running, and is the host/port right?")]
    else:
        checks.append(Check("broker", "ok", f"connected to {masked} as {user!r}"))

    control = TracingControl(amqp_url, mode=mode, management_url=management_url)
    method: str | None
    try:
        method = control.method
    except BrokerError as e:
        method = None
        checks.append(Check("tracing switch", "warn", str(e),
                            "give the user the administrator tag, run the agent on the broker "
                            "host as root, or turn tracing on yourself and use --tracing=assume"))
    else:
        detail = ("tracing is assumed on (not checked)" if method == "assume"
                  else f"tracing can be switched through {method}")
        checks.append(Check("tracing switch", "ok", detail))

    names = list(vhosts) or _listed_vhosts(control, method) or [url_vhost]
    for vhost in names:
        checks.extend(_vhost_checks(control, method, vhost, fix))
        checks.append(_queue_check(factory, amqp_url, vhost, user))
    return checks


def _why(error: BaseException) -> str:
    """pika nests the socket error a few levels deep; the innermost text says most."""
    while True:
        inner = getattr(error, "exception", None)
        if not isinstance(inner, BaseException) and error.args:
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            break
        error = inner
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _listed_vhosts(control: TracingControl, method: str | None) -> list[str]:
    try:
        if method == "management":
            rows = control._http("GET", "/vhosts") or []
            return sorted(r["name"] for r in rows)
        if method == "rabbitmqctl":
            return sorted(r["name"] for r in control._ctl_json("list_vhosts", "name"))
    except (BrokerError, OSError, KeyError):
        pass
    return []


def _vhost_checks(
    control: TracingControl, method: str | None, vhost: str, fix: bool
) -> list[Check]:
    if method not in ("management", "rabbitmqctl"):
        return []
    name = f"vhost {vhost}"
    try:
        on = control.is_on(vhost)
        bound = control.trace_bindings(vhost)
    except (BrokerError, OSError) as e:
        return [Check(name, "warn", f"cannot read the tracing state: {e}")]
    agents = [q for q in bound if q.startswith(AGENT_QUEUE_PREFIX)]
    others = [q for q in bound if not q.startswith(AGENT_QUEUE_PREFIX)]
    listeners = []
    if agents:
        listeners.append(f"{len(agents)} busdoc agent queue{'s' if len(agents) != 1 else ''}")
    if others:
        listeners.append("other queues: " + ", ".join(others))
    who = "; ".join(listeners) or "no queue bound to amq.rabbitmq.trace"
    if on and not bound:
        if fix:
            try:
                control.set(vhost, False)
            except (BrokerError, OSError) as e:
                return [Check(name, "fail", f"tracing on, nobody listening; turning it off "
                              f"failed: {e}")]
            return [Check(name, "ok", "tracing was on with nobody listening: turned off")]
        return [Check(name, "warn",
                      "tracing is on and nobody listens (an agent killed with kill -9?): "
                      "the broker pays for tracing for nothing",
                      "busdoc doctor --fix turns it off")]
    return [Check(name, "ok", f"tracing {'on' if on else 'off'}; {who}")]


def _queue_check(factory: Any, amqp_url: str, vhost: str, user: str) -> Check:
    import secrets

    import pika
    import pika.exceptions

    params = pika.URLParameters(amqp_url)
    params.virtual_host = vhost
    params.connection_attempts = 1
    name = f"trace queue in {vhost}"
    queue = f"{AGENT_QUEUE_PREFIX}doctor.{secrets.token_hex(4)}"
    try:
        connection = factory(params)
    except pika.exceptions.ProbableAccessDeniedError:
        return Check(name, "fail", f"user {user!r} may not open vhost {vhost!r}",
                     f"rabbitmqctl set_permissions -p {vhost} {user} '^busdoc\\.' "
                     "'^busdoc\\.' '^(busdoc\\.|amq\\.rabbitmq\\.trace$)'")
    except (pika.exceptions.AMQPError, OSError) as e:
        return Check(name, "fail", f"cannot connect: {type(e).__name__}")
    try:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        channel.queue_bind(queue, TRACE_EXCHANGE, routing_key="#")
        channel.queue_delete(queue)
    except pika.exceptions.ChannelClosedByBroker as e:
        return Check(name, "fail",
                     f"user {user!r} cannot declare and bind a queue on {TRACE_EXCHANGE}: "
                     f"{e.reply_text}",
                     "the agent needs configure and write on ^busdoc\\. and read on "
                     f"{TRACE_EXCHANGE} and ^busdoc\\.")
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return Check(name, "ok", f"user {user!r} can declare and bind its own trace queue")


class _HttpError(OSError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _quote(vhost: str) -> str:
    return urllib.parse.quote(vhost, safe="")


def _reason(e: OSError) -> str:
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e)


__all__ = [
    "AGENT_QUEUE_PREFIX", "Check", "TracingControl", "TracingMode", "TracingState",
    "broker_checks", "mask_url",
]
