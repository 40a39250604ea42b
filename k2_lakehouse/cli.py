"""`k2 demo | ingest | sql`: the platform from a terminal."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from k2_lakehouse.settings import ConfigurationError, Settings, dagster_home, load_settings
from k2_lakehouse.warm.client import WarmStoreBusy, connect, redact

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

EXIT_USAGE, EXIT_FAILED, EXIT_BUSY = 2, 1, 3


def _client(settings: Settings) -> Client:
    from k2_lakehouse.warm.schema import apply_schema

    client = connect(settings.clickhouse_url, settings.busy_timeout_s)
    apply_schema(client)
    return client


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in columns], *[[("" if v is None else str(v)) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings)
    result = client.query(args.query)
    print(format_table(result.column_names, result.result_rows))
    print(f"({len(result.result_rows)} rows)")
    return 0


def _progress(path: Path, messages: int) -> None:
    print(f"\r  {path.name}: {messages:,} messages", end="", file=sys.stderr, flush=True)


def print_ingest_summary(summaries: Sequence[object]) -> None:
    rows = [(Path(s.path).name, s.source_format, s.messages, s.trades, s.duplicates, s.skipped,
             ", ".join(f"{k}={v}" for k, v in s.dlq.items()) or "-", f"{s.seconds:.2f}") for s in summaries]
    print(format_table(("file", "format", "messages", "trades", "duplicates", "skipped", "dlq", "seconds"), rows))


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from k2_lakehouse.ingest.formats import FormatError
    from k2_lakehouse.ingest.load import ingest_file

    client = _client(settings)
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"k2 ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    summaries, failed = [], 0
    for path in paths:
        try:
            summaries.append(ingest_file(client, path, args.format, args.symbol, progress=_progress))
            print(file=sys.stderr)
        except FormatError as exc:
            print(f"k2 ingest: {exc}", file=sys.stderr)
            failed += 1
    print_ingest_summary(summaries)
    return EXIT_FAILED if failed else 0


INSTANCE_HEADER = "# Written by k2"
INSTANCE_CONFIG = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time. Runs tagged\n"
    "# dagster/max_retries (the offload job's) are launched again by the daemon when they fail.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "run_retries:\n  enabled: true\n"
    "telemetry:\n  enabled: false\n"
)


# What earlier versions of k2 wrote. Such a file, unedited, is replaced by INSTANCE_CONFIG.
EARLIER_INSTANCE_CONFIGS = (
    f"{INSTANCE_HEADER}: embedded ClickHouse admits one process, so runs queue one at a time.\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    "telemetry:\n  enabled: false\n",
)


def ensure_dagster_instance(settings: Settings) -> Path:
    """DAGSTER_HOME with k2's instance configuration (INSTANCE_CONFIG).

    A dagster.yaml exactly as an earlier k2 wrote it is brought up to date. Any other (an operator's, or k2's
    with an operator's edits: their storage, say) is left alone; if it does not enable run retries, a warning
    says that failed offloads will not be launched again.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in EARLIER_INSTANCE_CONFIGS:
        config.write_text(INSTANCE_CONFIG)
    elif "run_retries" not in config.read_text():
        print(f"k2: {config} does not enable run_retries: a failed offload_job run will not be launched again "
              f"(k2's own configuration would:\n{INSTANCE_CONFIG})", file=sys.stderr)
    return home


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from k2_lakehouse.demo import run_demo

    ensure_dagster_instance(settings)
    return run_demo(settings, hours=args.hours, trades_per_hour=args.trades_per_hour)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k2", description="k2_lakehouse: crypto trades, warm and cold.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate, ingest, seal and offload a few hours end to end")
    demo.add_argument("--hours", type=int, default=3)
    demo.add_argument("--trades-per-hour", type=int, default=2000)
    ingest = sub.add_parser("ingest", help="stream exchange-native files into k2.trades_raw")
    ingest.add_argument("paths", nargs="+")
    from k2_lakehouse.ingest.formats import FORMATS

    ingest.add_argument("--format", choices=sorted(FORMATS), help="skip detection")
    ingest.add_argument("--symbol", help="the exchange symbol, for CSV dumps not named SYMBOL-...")
    sql = sub.add_parser("sql", help="run a query and print a table")
    sql.add_argument("query")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        settings = load_settings()
        handler = {"demo": cmd_demo, "ingest": cmd_ingest, "sql": cmd_sql}[args.command]
        code = handler(args, settings)
    except ConfigurationError as exc:
        print(f"k2: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarmStoreBusy as exc:
        print(f"k2: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except Exception as exc:
        if args.command == "sql":
            print(f"k2 sql: {str(exc).splitlines()[0]}", file=sys.stderr)
            return EXIT_FAILED
        raise
    if args.command != "sql":
        print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return code


def closed_hours(hours: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours), end


__all__ = ["closed_hours", "format_table", "main", "redact"]

if __name__ == "__main__":
    sys.exit(main())
