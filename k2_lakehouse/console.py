"""What `k2` prints: plain-text tables on stdout, progress on stderr.

Kept apart from the commands so `k2 ingest`, `k2 sql` and the demo print alike, and so the demo needs
nothing from the CLI module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k2_lakehouse.ingest.load import IngestSummary

INGEST_COLUMNS = ("file", "format", "status", "messages", "trades", "duplicates", "skipped", "dlq", "seconds")


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, a rule under the header; None prints as an empty cell."""
    cells = [[str(c) for c in columns], *[[("" if v is None else str(v)) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def progress(path: Path, messages: int) -> None:
    """An ingest's running message count, rewritten in place on stderr (stdout keeps only the tables)."""
    print(f"\r  {path.name}: {messages:,} messages", end="", file=sys.stderr, flush=True)


def print_ingest_summary(summaries: Sequence[IngestSummary]) -> None:
    """One row per file with its status (ok, warning or failed), then each file's warnings and error.

    A failed file's row shows the messages inserted before it failed; what became of them was not counted.
    """
    rows = [(Path(s.path).name, s.source_format, s.status, s.messages,
             *(("-",) * 4 if s.error else (s.trades, s.duplicates, s.skipped,
                                           ", ".join(f"{k}={v}" for k, v in s.dlq.items()) or "-")),
             f"{s.seconds:.2f}") for s in summaries]
    print(format_table(INGEST_COLUMNS, rows))
    for summary in summaries:
        for warning in summary.warnings:
            print(f"warning: {warning}")
        if summary.error:
            print(f"failed: {summary.error}")
