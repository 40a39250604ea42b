"""`k2 init | demo | ingest | sql | doctor`: the platform from a terminal.

Only the commands live here: what they print is console.py's, the Dagster instance instance.py's, the demo
demo.py's. Nothing imports this module, so a command may import anything.

Every command but `k2 doctor` first prepares the home (instance.prepare_home: the Dagster instance, the cold
tables, the warm schema); `k2 init` does only that and prints what it did.

Errors a user can fix end in one line naming the object and the cause, never a traceback: a bad configuration, a
store another process holds, a server that cannot be reached, Ctrl-C. `k2 ingest` goes on past a file it cannot
ingest, and its summary reports every file with its status, so one bad file never hides what became of the others.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from k2_lakehouse.console import format_table, print_ingest_summary, progress
from k2_lakehouse.instance import prepare_home
from k2_lakehouse.settings import ConfigurationError, ServiceUnreachable, Settings, load_settings
from k2_lakehouse.warm.client import WarmStoreBusy, unreachable
from k2_lakehouse.warm.schema import open_store

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from k2_lakehouse.ingest.load import IngestSummary

EXIT_USAGE, EXIT_FAILED, EXIT_BUSY = 2, 1, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    client = open_store(settings)
    result = client.query(args.query)
    print(format_table(result.column_names, result.result_rows))
    print(f"({len(result.result_rows)} rows)")
    return 0


def _end_progress(messages: int) -> str:
    """What ends the progress line before a message: a newline if one was printed."""
    return "\n" if messages else ""


def _refuse_paths(paths: Sequence[Path]) -> str:
    """Why `paths` cannot be ingested at all ('' if each is a file), checked before anything is opened."""
    problems = [f"{path} is a directory; pass the files in it (k2 ingest {path}/*)" if path.is_dir()
                else f"no such file: {path}" for path in paths if not path.is_file()]
    return "; ".join(problems)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    paths = [Path(p) for p in args.paths]
    if refused := _refuse_paths(paths):
        print(f"k2 ingest: {refused}", file=sys.stderr)
        return EXIT_USAGE
    client = open_store(settings)
    # The ingest logs a file's warnings (data before K2_PARTITIONS_START) after its last insert: each starts a line of
    # its own after the progress line, and the newline printed once the file is done ends it.
    warning_lines = logging.StreamHandler(sys.stderr)
    warning_lines.setFormatter(logging.Formatter("\nk2 ingest: %(levelname)s: %(message)s"))
    warning_lines.terminator = ""
    logging.getLogger("k2_lakehouse.ingest").addHandler(warning_lines)
    try:
        return _ingest_files(client, paths, args, settings)
    finally:
        logging.getLogger("k2_lakehouse.ingest").removeHandler(warning_lines)


def _ingest_files(client: Client, paths: Sequence[Path], args: argparse.Namespace, settings: Settings) -> int:
    """Ingest each file in turn, going on past those that fail; print the summary of all of them."""
    from k2_lakehouse.ingest.formats import FormatError
    from k2_lakehouse.ingest.load import IngestError, IngestSummary, ingest_file

    summaries: list[IngestSummary] = []
    inserted: dict[Path, int] = {}

    def count_and_show(path: Path, messages: int) -> None:
        inserted[path] = messages
        progress(path, messages)

    for path in paths:
        started, inserted[path] = time.perf_counter(), 0
        try:
            summaries.append(ingest_file(client, path, args.format, args.symbol, progress=count_and_show,
                                         partitions_start=settings.partitions_start))
            print(file=sys.stderr)
        # The file's own faults: the others are still ingested, and the summary reports this one as failed.
        except (FormatError, IngestError, OSError) as exc:
            print(f"{_end_progress(inserted[path])}k2 ingest: {exc}", file=sys.stderr)
            summaries.append(IngestSummary(path=str(path.resolve()), source_format=args.format or "-",
                                           messages=inserted[path], error=str(exc),
                                           seconds=time.perf_counter() - started))
        except KeyboardInterrupt:
            print(f"{_end_progress(inserted[path])}k2 ingest: interrupted during {path}, after {len(summaries)} of "
                  f"{len(paths)} files and at least {inserted[path]:,} of its messages; what was inserted is kept. "
                  "Running the same command again is safe: a re-ingest deduplicates", file=sys.stderr)
            return EXIT_INTERRUPTED
    print_ingest_summary(summaries)
    return EXIT_FAILED if any(s.error for s in summaries) else 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """The home is prepared before any command runs (see main): say what that did."""
    for line in args.prepared:
        print(line)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from k2_lakehouse.demo import run_demo

    return run_demo(settings, hours=args.hours, trades_per_hour=args.trades_per_hour)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from k2_lakehouse.doctor import check_profile

    checks = check_profile(settings)
    print(format_table(("part", "configured", "status"),
                       [(c.part, c.configured, "ok" if c.ok else f"FAILED: {c.problem}") for c in checks]))
    for check in checks:
        if not check.ok:
            print(f"fix the {check.part}: {check.fix}")
    return 0 if all(c.ok for c in checks) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k2", description="k2_lakehouse: crypto trades, warm and cold.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="prepare K2_HOME: the Dagster instance (dagster.yaml), the cold tables, the warm "
                                "schema (every command does this first)")
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
    sub.add_parser("doctor", help="print the configured profile and check each part is reachable and writable")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # clickhouse-connect warns of a failed HTTP request before it raises; k2 reports the error itself, in one line.
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        settings = load_settings()
        handler = {"init": cmd_init, "demo": cmd_demo, "doctor": cmd_doctor, "ingest": cmd_ingest,
                   "sql": cmd_sql}[args.command]
        # The doctor diagnoses the home as it is: preparing it first would fail on what it is meant to report.
        args.prepared = [] if args.command == "doctor" else prepare_home(settings, force=args.command == "init")
        code = handler(args, settings)
    except ConfigurationError as exc:
        print(f"k2: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarmStoreBusy as exc:
        print(f"k2: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except ServiceUnreachable as exc:
        print(f"k2 {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        if args.command != "ingest":
            raise
        print("\nk2 ingest: interrupted; what was inserted is kept. Running the same command again is safe: "
              "a re-ingest deduplicates", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from clickhouse_connect.driver.exceptions import OperationalError

        if isinstance(exc, OperationalError):  # the server went away after it answered once
            print(f"k2 {args.command}: {unreachable(load_settings().clickhouse_url, exc)}", file=sys.stderr)
            return EXIT_FAILED
        if args.command == "sql":
            print(f"k2 sql: {str(exc).splitlines()[0]}", file=sys.stderr)
            return EXIT_FAILED
        raise
    if args.command not in ("sql", "init", "doctor") and code != EXIT_INTERRUPTED:
        print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
