"""`k2 demo | ingest | sql`: the platform from a terminal.

Only the commands live here: what they print is console.py's, the Dagster instance instance.py's, the demo
demo.py's. Nothing imports this module, so a command may import anything.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from k2_lakehouse.console import format_table, print_ingest_summary, progress
from k2_lakehouse.instance import ensure_dagster_instance
from k2_lakehouse.settings import ConfigurationError, Settings, load_settings
from k2_lakehouse.warm.client import WarmStoreBusy
from k2_lakehouse.warm.schema import open_store

EXIT_USAGE, EXIT_FAILED, EXIT_BUSY = 2, 1, 3


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    client = open_store(settings)
    result = client.query(args.query)
    print(format_table(result.column_names, result.result_rows))
    print(f"({len(result.result_rows)} rows)")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from k2_lakehouse.ingest.formats import FormatError
    from k2_lakehouse.ingest.load import ingest_file

    client = open_store(settings)
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"k2 ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    summaries, failed = [], 0
    for path in paths:
        try:
            summaries.append(ingest_file(client, path, args.format, args.symbol, progress=progress))
            print(file=sys.stderr)
        except FormatError as exc:
            print(f"k2 ingest: {exc}", file=sys.stderr)
            failed += 1
    print_ingest_summary(summaries)
    return EXIT_FAILED if failed else 0


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


if __name__ == "__main__":
    sys.exit(main())
