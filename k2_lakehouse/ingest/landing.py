"""Landing sources: files under K2_LANDING_DIR that warm/trades_raw reloads hour by hour.

Materialising raw hour H with landing sources makes trades_raw's rows of H from those files equal the
files' messages of H, however often it runs: the file is staged, then the hour's rows are replaced.
A file's arrival time is its modification time, so a reload gives the same rows as the first load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange, in_hours
from k2_lakehouse.ingest.formats import FormatError
from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse.warm.client import as_int
from k2_lakehouse.warm.content import SEAL_SETTINGS

RAW_COLUMNS = ("exchange, source_format, source_name, source_partition, source_position, source_element, "
               "source_symbol, payload, received_at")
_IN_RANGE = in_hours("event_hour")


@dataclass(frozen=True)
class LandingLoad:
    files: int
    rows: int
    refused: dict[str, str]  # file -> why it was not loaded


def landing_files(landing_dir: Path) -> list[Path]:
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"K2_LANDING_DIR={landing_dir} is not a directory")
    return sorted(p for p in landing_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def reload_hours(client: Client, landing_dir: Path, hours: HourRange) -> LandingLoad:
    """Replace the range's raw rows that came from landing files with the files' current messages."""
    rows, refused, loaded = 0, {}, 0
    for path in landing_files(landing_dir):
        client.command("TRUNCATE TABLE k2.trades_raw_landing")
        arrived = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        try:
            ingest_file(client, path, received_at=arrived, table="k2.trades_raw_landing")
        except (FormatError, UnicodeDecodeError) as exc:
            refused[str(path)] = str(exc)
            continue
        loaded += 1
        parameters = {**hours.parameters, "name": str(path.resolve())}
        client.command(f"DELETE FROM k2.trades_raw WHERE {_IN_RANGE} AND source_name = {{name:String}}",
                       parameters=parameters)
        # Under the seal marker the live views stay quiet: the bronze seal of the same run derives from raw.
        client.command(f"INSERT INTO k2.trades_raw ({RAW_COLUMNS}) SELECT {RAW_COLUMNS} FROM k2.trades_raw_landing "
                       f"WHERE {_IN_RANGE}", parameters=parameters, settings=SEAL_SETTINGS)
        rows += as_int(client.command(f"SELECT count() FROM k2.trades_raw_landing WHERE {_IN_RANGE}",
                                   parameters=parameters))
    client.command("TRUNCATE TABLE k2.trades_raw_landing")
    return LandingLoad(loaded, rows, refused)
