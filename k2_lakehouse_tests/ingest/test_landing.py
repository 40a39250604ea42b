"""Raw hours reload from landing files idempotently."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from k2_lakehouse.hours import HourRange
from k2_lakehouse.ingest.landing import reload_hours

HOURS = HourRange(datetime(2025, 11, 10, 18, tzinfo=UTC), datetime(2025, 11, 10, 20, tzinfo=UTC))


def _raw_count(warm: Client) -> int:
    return int(warm.command("SELECT count() FROM k2.trades_raw WHERE event_hour >= '2025-11-10 18:00:00' "
                            "AND event_hour < '2025-11-10 20:00:00'"))


def test_reloading_an_hour_from_landing_files_twice_gives_the_same_rows(warm: Client, datasets: Path,
                                                                         tmp_path: Path) -> None:
    shutil.copy(datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json", tmp_path)
    first = reload_hours(warm, tmp_path, HOURS)
    checksum = warm.command("SELECT sum(cityHash64(payload, received_at)) FROM k2.trades_raw")
    second = reload_hours(warm, tmp_path, HOURS)
    assert first.rows == second.rows == _raw_count(warm) > 0
    assert warm.command("SELECT sum(cityHash64(payload, received_at)) FROM k2.trades_raw") == checksum
    assert warm.command("SELECT count() FROM k2.trades_raw WHERE event_hour < '2025-11-10 18:00:00'") == 0


def test_a_landing_file_of_unknown_format_is_refused_by_name_and_the_rest_loads(warm: Client, datasets: Path,
                                                                                  tmp_path: Path) -> None:
    shutil.copy(datasets / "kraken" / "XBTUSDT-trades-2025-11-10.rest.json", tmp_path)
    (tmp_path / "notes.csv").write_text("a,b,c,d,e\n")
    load = reload_hours(warm, tmp_path, HOURS)
    assert list(load.refused) == [str(tmp_path / "notes.csv")]
    assert load.files == 1 and _raw_count(warm) == load.rows > 0
