"""The agent's status line (no broker needed)."""

from __future__ import annotations

from busdoc.sniffer.agent import AgentStatus, StatusLines


def status(**overrides: object) -> AgentStatus:
    values: dict[str, object] = {
        "total": 12345, "rate": 812.4, "gaps": 1, "queued": 40, "pending": 2,
        "connected": 2, "taps": 2, "tracing": ("/: management", "nova: management"),
    }
    values.update(overrides)
    return AgentStatus(**values)  # type: ignore[arg-type]


def test_status_line_shows_rate_total_gaps_lag_and_tracing_method() -> None:
    assert status().line() == (
        "12,345 messages · 812/s · 1 gap · lag 42 · tracing /: management, nova: management"
    )


def test_status_line_says_when_connections_are_down() -> None:
    line = status(connected=1, gaps=2).line()

    assert "1 of 2 connections down" in line
    assert "2 gaps" in line


def test_capturing_is_announced_once_when_every_tap_is_connected() -> None:
    lines = StatusLines()

    assert lines.announce(status(connected=1)) is None
    assert lines.announce(status()) == "capturing; tracing /: management, nova: management"
    assert lines.announce(status()) is None
    assert lines.announce(status(connected=1)) is None


def test_status_lines_for_a_journal_come_at_most_every_interval() -> None:
    lines = StatusLines(every=30.0)

    assert lines.due(status(), 1000.0) == status().line()
    assert lines.due(status(total=1), 1029.9) is None
    assert lines.due(status(total=2), 1030.0) == status(total=2).line()
    assert lines.due(status(total=3), 1031.0) is None
