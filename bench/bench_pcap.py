"""pcap benchmark: busdoc against tshark, on the same generated capture, in one run.

Stages measured (DESIGN.md, "Performance targets"):

* ``tshark``: the same job done by tshark, ``-Y amqp -T fields`` with exchange, routing
  key and payload; its start-up time (the same command on a tiny capture) is subtracted.
* ``decode``: ``busdoc.sniffer.pcap.open_capture`` + ``busdoc.sniffer.capture.CaptureDecoder``,
  timed in-process (in a child process, so its peak RSS is its own); target >= 40k msgs/s.
* ``import``: ``busdoc capture pcap F --db fresh.db`` (SQLite, redaction on) as a
  subprocess, minus the same command on the tiny capture (as for tshark); target >= 3x
  tshark's msgs/s in this run.
* peak RSS of the import for 10k messages and the full capture (``--rss-sizes`` adds
  others, 1M for instance); target: flat.

Every stage is checked against the generator's sidecar (decoded == generated): tshark's
message count, the decoder's count and (kind, exchange, routing key) and body digests, the
import's observation counts and distinct messages. A mismatch makes the run exit 1.

Usage::

    python bench/bench_pcap.py                 # 100k messages
    python bench/bench_pcap.py --quick         # 10k, a smoke run
    python bench/bench_pcap.py --messages 1000000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_pcap  # noqa: E402  (the sibling generator, run from any directory)

TSHARK_FIELDS = [
    "amqp.method.arguments.exchange",
    "amqp.method.arguments.routing_key",
    "amqp.payload",
]
DECODE_TARGET = 40_000
IMPORT_RATIO_TARGET = 3.0
RSS_FLAT_TOLERANCE = 1.25
"""The largest peak RSS of the imports may be at most this times the smallest to be flat."""


@dataclass
class Stage:
    """One row of the result table."""

    name: str
    messages: int
    seconds: float
    file_bytes: int
    peak_rss_mb: float | None = None
    ok: bool = True
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float | None = None
    """user + system CPU time: less sensitive than wall time to other load on the box."""

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    @property
    def msgs_per_cpu_s(self) -> float | None:
        if self.cpu_seconds is None:
            return None
        return self.messages / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def mb_per_s(self) -> float:
        return self.file_bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["msgs_per_s"] = round(self.msgs_per_s, 1)
        out["mb_per_s"] = round(self.mb_per_s, 2)
        out["seconds"] = round(self.seconds, 3)
        if self.cpu_seconds is not None:
            out["cpu_seconds"] = round(self.cpu_seconds, 3)
            out["msgs_per_cpu_s"] = round(self.msgs_per_cpu_s or 0.0, 1)
        return out


@dataclass
class Run:
    """The result of one child process: wall and CPU seconds, peak RSS, exit, output."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(cmd: list[str], stdout_path: Path | None = None) -> Run:
    """Run ``cmd`` and return its wall time and its own peak RSS.

    ``os.wait4`` gives the rusage of exactly this child, where RUSAGE_CHILDREN would be
    the maximum over every child this process has waited for (tshark included)."""
    out_fh = open(stdout_path, "wb") if stdout_path else subprocess.PIPE  # noqa: SIM115
    err_path = Path(tempfile.mkstemp(prefix="bench-stderr-")[1])
    try:
        with open(err_path, "wb") as err_fh:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out_fh, stderr=err_fh)
            stdout = b""
            if out_fh is subprocess.PIPE:
                assert proc.stdout is not None
                stdout = proc.stdout.read()
                proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = err_path.read_text(errors="replace")
    finally:
        if stdout_path:
            out_fh.close()  # type: ignore[union-attr]
        err_path.unlink(missing_ok=True)
    # ru_maxrss is in KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, proc.returncode, stdout.decode(), stderr)


def best_of(cmd: list[str], times: int = 3) -> tuple[float, float]:
    """Start-up cost of a command, wall and CPU seconds: the fastest of a few runs."""
    runs = [run_measured(cmd) for _ in range(times)]
    return min(r.seconds for r in runs), min(r.cpu_seconds for r in runs)


# --- tshark ----------------------------------------------------------------------------


def tshark_command(pcap: Path) -> list[str]:
    cmd = ["tshark", "-r", str(pcap), "-Y", "amqp", "-T", "fields", "-E", "occurrence=a"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    return cmd


def count_tshark_messages(tsv: Path) -> int:
    """Messages tshark found: routing-key occurrences (basic.publish and basic.deliver
    carry one each; the generator never sends an empty routing key, while the default
    exchange is the empty string and so cannot be counted)."""
    count = 0
    with open(tsv, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > 1 and parts[1]:
                count += parts[1].count(",") + 1
    return count


def bench_tshark(pcap: Path, tiny: Path, expected: int, workdir: Path) -> Stage:
    startup, startup_cpu = best_of(tshark_command(tiny))
    out = workdir / "tshark.tsv"
    run = run_measured(tshark_command(pcap), stdout_path=out)
    found = count_tshark_messages(out) if run.returncode == 0 else 0
    out.unlink(missing_ok=True)
    stage = Stage(
        "tshark fields",
        found,
        max(run.seconds - startup, 1e-9),
        pcap.stat().st_size,
        run.peak_rss_mb,
        cpu_seconds=max(run.cpu_seconds - startup_cpu, 1e-9),
        extra={"startup_s": round(startup, 3), "raw_seconds": round(run.seconds, 3)},
    )
    if run.returncode != 0:
        stage.ok, stage.detail = False, f"tshark exit {run.returncode}: {run.stderr[-200:]}"
    elif found != expected:
        stage.ok, stage.detail = False, f"found {found} of {expected}"
    return stage


# --- busdoc decode only ------------------------------------------------------------------


def _decode(pcap: str, tally: gen_pcap.Tally | None) -> tuple[int, int, dict[str, int]]:
    """Read and decode ``pcap``; count observations, and add them to ``tally`` if given."""
    from busdoc.sniffer.capture import CaptureDecoder
    from busdoc.sniffer.pcap import open_capture
    from busdoc.sniffer.records import Notice, Observation

    observations = 0
    notices: dict[str, int] = {}
    reader = open_capture(pcap)
    decoder = CaptureDecoder(source="pcap", server_ports=(5672,))

    def take(records: list[Any]) -> None:
        nonlocal observations
        for rec in records:
            if isinstance(rec, Observation):
                observations += 1
                if tally is not None:
                    tally.add(rec.kind, rec.exchange, rec.routing_key, rec.body)
            elif isinstance(rec, Notice):
                notices[rec.code] = notices.get(rec.code, 0) + rec.count

    try:
        for packet in reader:
            take(decoder.feed(packet))
        take(decoder.finish())
        bytes_read = reader.bytes_read
    finally:
        reader.close()
    return observations, bytes_read, notices


def decode_only(pcap: str) -> dict[str, Any]:
    """Decode ``pcap`` twice in this process: once timed, counting only, then once more
    untimed to digest every observation for the comparison with the sidecar (hashing
    bodies inside the timed pass would bill the check to the decoder)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    observations, bytes_read, notices = _decode(pcap, None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    tally = gen_pcap.Tally()
    _decode(pcap, tally)
    return {
        "observations": observations,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "bytes_read": bytes_read,
        "notices": notices,
        "checked_observations": tally.messages,
        "routing_digest": f"{tally.routing_digest:016x}",
        "body_digest": f"{tally.body_digest:016x}",
    }


def bench_decode(pcap: Path, sidecar: dict[str, Any]) -> Stage:
    run = run_measured([sys.executable, __file__, "--decode-only", str(pcap)])
    size = pcap.stat().st_size
    if run.returncode != 0:
        last = run.stderr.strip().splitlines()[-1:] or [""]
        return Stage("busdoc decode", 0, 0.0, size, run.peak_rss_mb, False, last[0][:200])
    result = json.loads(run.stdout)
    stage = Stage(
        "busdoc decode",
        result["observations"],
        result["seconds"],
        size,
        run.peak_rss_mb,
        cpu_seconds=result["cpu_seconds"],
        extra={"notices": result["notices"]},
    )
    problems = []
    if result["observations"] != sidecar["messages"]:
        problems.append(f"decoded {result['observations']} of {sidecar['messages']}")
    if result["routing_digest"] != sidecar["routing_digest"]:
        problems.append("kind/exchange/routing key differ")
    if result["body_digest"] != sidecar["body_digest"]:
        problems.append("bodies differ")
    if problems:
        stage.ok, stage.detail = False, "; ".join(problems)
    return stage


# --- busdoc full import ------------------------------------------------------------------


def busdoc_command() -> list[str]:
    script = Path(sys.executable).with_name("busdoc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "busdoc"]


def import_startup(tiny: Path, workdir: Path, times: int = 3) -> tuple[float, float]:
    """Start-up cost of the import, measured as tshark's is: the same command on the
    10-message capture, into a fresh store each time (wall and CPU, fastest of a few).
    This bills the interpreter, imports and store creation to start-up, not to the
    messages, on both sides."""
    db = workdir / "startup.db"
    cmd = [*busdoc_command(), "capture", "pcap", str(tiny), "--db", str(db), "--json"]
    runs = []
    for _ in range(times):
        for leftover in workdir.glob("startup.db*"):
            leftover.unlink()
        run = run_measured(cmd)
        if run.returncode != 0:
            raise SystemExit(f"busdoc import of {tiny} failed: {run.stderr.strip()[-200:]}")
        runs.append(run)
    for leftover in workdir.glob("startup.db*"):
        leftover.unlink()
    return min(r.seconds for r in runs), min(r.cpu_seconds for r in runs)


def _short(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n % 1_000_000 == 0
        else (f"{n // 1000}k" if n % 1000 == 0 else str(n))
    )


def bench_import(
    pcap: Path, sidecar: dict[str, Any], workdir: Path, startup: tuple[float, float]
) -> Stage:
    db = workdir / f"{pcap.stem}.db"
    for leftover in workdir.glob(f"{pcap.stem}.db*"):
        leftover.unlink()
    cmd = [*busdoc_command(), "capture", "pcap", str(pcap), "--db", str(db), "--json"]
    run = run_measured(cmd)
    name = f"busdoc import {_short(sidecar['messages'])}"
    size = pcap.stat().st_size
    if run.returncode != 0:
        last = run.stderr.strip().splitlines()[-1:] or [""]
        return Stage(
            name, 0, 0.0, size, run.peak_rss_mb, False, f"exit {run.returncode}: " + last[0][:200]
        )
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    observations = sum(summary.get("observations", {}).values())
    stage = Stage(
        name,
        observations,
        max(run.seconds - startup[0], 1e-9),
        size,
        run.peak_rss_mb,
        cpu_seconds=max(run.cpu_seconds - startup[1], 1e-9),
        extra={
            "raw_seconds": round(run.seconds, 3),
            "startup_s": round(startup[0], 3),
            "stored_messages": summary.get("messages"),
            "notices": summary.get("notices", {}),
            "db_mb": round(
                sum(p.stat().st_size for p in workdir.glob(f"{pcap.stem}.db*")) / 1e6, 1
            ),
        },
    )
    problems = []
    if observations != sidecar["messages"]:
        problems.append(f"stored {observations} of {sidecar['messages']} observations")
    if summary.get("messages") != sidecar["distinct_messages"]:
        problems.append(
            f"{summary.get('messages')} distinct messages, expected {sidecar['distinct_messages']}"
        )
    if problems:
        stage.ok, stage.detail = False, "; ".join(problems)
    return stage


# --- driver ----------------------------------------------------------------------------


def best_in_rounds(
    times: int, measures: dict[str, Callable[[], Stage]], log: Callable[[str], None]
) -> dict[str, Stage]:
    """The fastest of ``times`` runs of each stage, run in rounds (tshark, decode, import,
    then again), so that a slow spell of a shared machine falls on every stage alike
    rather than on whichever ran through it. A failed run ends its stage at once."""
    kept: dict[str, Stage] = {}
    failed: set[str] = set()
    rounds = max(1, times)
    for n in range(rounds):
        for name, measure in measures.items():
            if name in failed:
                continue
            log(f"{name} ..." if rounds == 1 else f"{name} (round {n + 1} of {rounds}) ...")
            stage = measure()
            if not stage.ok:
                kept[name] = stage
                failed.add(name)
            elif name not in kept or stage.seconds < kept[name].seconds:
                kept[name] = stage
    for name, stage in kept.items():
        if name not in failed:
            stage.extra["runs"] = rounds
    return kept


def bench_other_size(
    size: int, seed: int, workdir: Path, startup: tuple[float, float], log: Any
) -> Stage:
    """An import of another message count, for the peak RSS comparison."""
    log(f"generating {size:,} messages ...")
    pcap, sidecar = generate(workdir, size, seed)
    log(f"busdoc import {size:,} ...")
    stage = bench_import(pcap, sidecar, workdir, startup)
    for path in workdir.glob(f"{pcap.stem}.db*"):
        path.unlink()
    return stage


def generate(workdir: Path, messages: int, seed: int) -> tuple[Path, dict[str, Any]]:
    path = workdir / f"oslo-{messages}.pcap"
    sidecar_file = gen_pcap.sidecar_path(path)
    if path.exists() and sidecar_file.exists():
        sidecar = json.loads(sidecar_file.read_text())
        if sidecar.get("seed") == seed and sidecar.get("messages") == messages:
            return path, sidecar
    return path, gen_pcap.generate(path, messages, seed)


def render_table(stages: list[Stage], tshark: Stage | None) -> str:
    """msgs/s and the ratio are on wall time; "cpu s" is user + system time of the stage."""
    head = (
        f"{'stage':<18} {'messages':>9} {'seconds':>8} {'cpu s':>7} {'msgs/s':>8} "
        f"{'MB/s':>6} {'peak RSS MB':>11} {'vs tshark':>9}  check"
    )
    lines = [head, "-" * len(head)]
    for s in stages:
        ratio = ""
        if tshark is not None and tshark.ok and s is not tshark and s.messages:
            ratio = f"{s.msgs_per_s / tshark.msgs_per_s:.2f}x"
        rss = f"{s.peak_rss_mb:.0f}" if s.peak_rss_mb is not None else "-"
        cpu = f"{s.cpu_seconds:.2f}" if s.cpu_seconds is not None and s.messages else "-"
        rate = f"{s.msgs_per_s:,.0f}" if s.messages else "-"
        mbs = f"{s.mb_per_s:.1f}" if s.messages else "-"
        check = "ok" if s.ok else f"FAIL {s.detail}"
        lines.append(
            f"{s.name:<18} {s.messages:>9,} {s.seconds:>8.2f} {cpu:>7} {rate:>8} {mbs:>6} "
            f"{rss:>11} {ratio:>9}  {check}"
        )
    return "\n".join(lines)


def targets(stages: dict[str, Stage]) -> dict[str, Any]:
    """The DESIGN.md targets, each with the measured figure and whether it was met."""
    out: dict[str, Any] = {}
    decode = stages.get("decode")
    if decode and decode.ok:
        out["decode_msgs_per_s"] = {
            "target": DECODE_TARGET,
            "measured": round(decode.msgs_per_s),
            "met": decode.msgs_per_s >= DECODE_TARGET,
        }
        if decode.msgs_per_cpu_s:
            out["decode_msgs_per_cpu_s"] = {
                "target": DECODE_TARGET,
                "measured": round(decode.msgs_per_cpu_s),
                "met": decode.msgs_per_cpu_s >= DECODE_TARGET,
            }
    tshark, full = stages.get("tshark"), stages.get("import")
    if tshark and full and tshark.ok and full.ok:
        ratio = full.msgs_per_s / tshark.msgs_per_s
        out["import_vs_tshark"] = {
            "target": IMPORT_RATIO_TARGET,
            "measured": round(ratio, 2),
            "met": ratio >= IMPORT_RATIO_TARGET,
        }
        if tshark.msgs_per_cpu_s and full.msgs_per_cpu_s:
            # the same ratio on CPU time, for runs on a box that is busy with other work
            out["import_vs_tshark_cpu"] = {
                "target": IMPORT_RATIO_TARGET,
                "measured": round(full.msgs_per_cpu_s / tshark.msgs_per_cpu_s, 2),
                "met": full.msgs_per_cpu_s / tshark.msgs_per_cpu_s >= IMPORT_RATIO_TARGET,
            }
    imports = [s for k, s in stages.items() if k.startswith("import") and s.ok and s.peak_rss_mb]
    if len(imports) > 1:
        rss = [s.peak_rss_mb or 0.0 for s in imports]
        growth = max(rss) / min(rss)
        out["import_rss_growth"] = {
            "target": RSS_FLAT_TOLERANCE,
            "measured": round(growth, 2),
            "peak_rss_mb": {str(s.messages): round(s.peak_rss_mb or 0.0) for s in imports},
            "met": growth <= RSS_FLAT_TOLERANCE,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="busdoc vs tshark on a generated oslo pcap")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10k messages, a smoke run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated captures and databases (printed)"
    )
    parser.add_argument("--workdir", type=Path, help="use (and keep) this directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["tshark", "decode", "import", "rss"],
        help="leave out a stage (repeatable)",
    )
    parser.add_argument(
        "--rss-sizes",
        type=lambda v: [int(n) for n in v.split(",")],
        help="message counts of the extra imports compared for peak RSS "
        "(comma-separated; default 10000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run tshark, decode and the full import this many times, in rounds (one of "
        "each, then again), and keep the fastest of each (a busy machine only ever makes a "
        "run slower, and rounds spread a slow spell over all three)",
    )
    parser.add_argument("--decode-only", metavar="PCAP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.decode_only:
        print(json.dumps(decode_only(args.decode_only)))
        return 0

    messages = 10_000 if args.quick else args.messages
    default_small = 10_000 if messages > 10_000 else max(1_000, messages // 10)
    rss_sizes = sorted(set(args.rss_sizes or [default_small]) - {messages})
    keep = args.keep or args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="busdoc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print

    stages: dict[str, Stage] = {}
    load_before = os.getloadavg()
    try:
        log(f"generating {messages:,} messages in {workdir} ...")
        pcap, sidecar = generate(workdir, messages, args.seed)
        tiny, _ = generate(workdir, 10, args.seed)
        log(
            f"  {sidecar['pcap_bytes'] / 1e6:.1f} MB, {sidecar['packets']:,} packets, "
            f"{sidecar['publish']:,} publish + {sidecar['deliver']:,} deliver"
        )

        measures: dict[str, Callable[[], Stage]] = {}
        if "tshark" not in args.skip:
            if shutil.which("tshark"):
                measures["tshark"] = lambda: bench_tshark(
                    pcap, tiny, sidecar["messages"], workdir
                )
            else:
                log("tshark not found: skipped")
        if "decode" not in args.skip:
            measures["decode"] = lambda: bench_decode(pcap, sidecar)
        if "import" not in args.skip:
            startup = import_startup(tiny, workdir)
            for size in [n for n in rss_sizes if n < messages] if "rss" not in args.skip else []:
                stages[f"import_{size}"] = bench_other_size(size, args.seed, workdir, startup, log)
            measures["import"] = lambda: bench_import(pcap, sidecar, workdir, startup)
        stages.update(best_in_rounds(args.repeat, measures, log))
        if "import" not in args.skip and "rss" not in args.skip:
            for size in [n for n in rss_sizes if n > messages]:
                stages[f"import_{size}"] = bench_other_size(size, args.seed, workdir, startup, log)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)

    order = ["tshark", "decode"]
    order += sorted(
        (k for k in stages if k.startswith("import")), key=lambda k: stages[k].file_bytes
    )
    rows = [stages[k] for k in order if k in stages]
    result = {
        "messages": messages,
        "pcap_mb": round(sidecar["pcap_bytes"] / 1e6, 1),
        "packets": sidecar["packets"],
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        # 1-minute load average before and after: a busy machine makes wall times noisy
        "load_before": round(load_before[0], 2),
        "load_after": round(os.getloadavg()[0], 2),
        "stages": {k: stages[k].as_dict() for k in order if k in stages},
        "targets": targets(stages),
        "ok": all(s.ok for s in rows),
    }
    if keep:
        result["workdir"] = str(workdir)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print(render_table(rows, stages.get("tshark")))
        print()
        for name, t in result["targets"].items():
            print(
                f"{name}: {t['measured']} (target {t['target']}) {'met' if t['met'] else 'NOT met'}"
            )
        print(
            f"load average before/after: {result['load_before']} / {result['load_after']}"
            f" on {result['cpus']} CPUs"
        )
        if keep:
            print(f"files kept in {workdir}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
