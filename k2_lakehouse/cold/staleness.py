"""Which offloaded (cold table, hour) pairs may no longer equal warm, and which of them really differ.

An offload copies what warm held when it read it. Warm changes after that in two ways: raw rows arrive for
the hour (late trades, a reloaded landing file), and every layer changes with them through the live views;
or a layer is re-sealed (a symbol added to the registry moves DLQ rows into silver). So a cold hour is a
candidate when a raw row of its hour was inserted, or its warm layer was re-sealed, after the offload began
to read; a candidate is stale when its content comparison with warm (verify.matches_warm) fails. Offloads
that read after every change are never compared, which keeps a tick cheap after a month's backfill. The stale
hours are re-sealed and re-offloaded in ranged runs (reoffload_runs). What Dagster recorded (which offloads,
which re-seals, when each run began) is read by offload_history.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple, cast

from k2_lakehouse.cold.tables import cold_table
from k2_lakehouse.cold.verify import VerifyResult, matches_warm
from k2_lakehouse.hours import EPOCH, ONE_HOUR, HourRange, contiguous_ranges, partition_key

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from pyiceberg.catalog import Catalog

# inserted_at is taken when an insert starts and its rows become visible when it commits (seconds later
# for a large batch), so arrivals are read back this far and changes this close to a read are compared.
VISIBILITY_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class Offload:
    """The latest offload of one cold table's hour, and the earliest moment it may have read warm."""

    cold_name: str
    hour: datetime
    read_from: datetime


class Inserts(NamedTuple):
    rows: int  # rows inserted into the hour after the bound asked for
    latest: datetime


def inserts_since(client: Client, since: datetime, hours: Iterable[datetime] | None = None) -> dict[datetime, Inserts]:
    """hour -> what was inserted into it after `since`, for the hours (all, or those given) that received rows."""
    parameters: dict[str, object] = {"since": since}
    where = "inserted_at > {since:DateTime64(6, 'UTC')}"
    if hours is not None:
        parameters["hours"] = sorted({int(hour.timestamp()) for hour in hours})
        where += " AND event_hour IN (SELECT toDateTime(arrayJoin({hours:Array(UInt32)}), 'UTC'))"
    rows = client.query(f"SELECT event_hour, count(), max(inserted_at) FROM k2.trades_raw WHERE {where} GROUP BY event_hour",
                        parameters=parameters).result_rows
    return {hour.replace(tzinfo=UTC): Inserts(int(n), latest.replace(tzinfo=UTC)) for hour, n, latest in rows}


def inserts_since_offloads(client: Client, offloads: Sequence[Offload]) -> dict[datetime, Inserts]:
    """hour -> what was inserted into it since the earliest of the offloads began to read (less the margin), for
    the offloads' hours."""
    if not offloads:
        return {}
    return inserts_since(client, min(o.read_from for o in offloads) - VISIBILITY_MARGIN, {o.hour for o in offloads})


@dataclass(frozen=True)
class Arrivals:
    """What the sensor has seen arrive: the latest insert, and the rows per hour since a margin before it.

    Rows are read back a margin before the latest insert seen, since an insert stamped earlier may become
    visible later; an hour is new when its count in that window differs from the count seen last time.
    """

    latest: datetime
    seen: dict[datetime, int]

    def next(self, client: Client) -> tuple[set[datetime], Arrivals]:
        """The hours that received rows since the last look, and what has been seen now."""
        recent = inserts_since(client, self.latest - VISIBILITY_MARGIN)
        hours = {hour for hour, inserts in recent.items() if self.seen.get(hour) != inserts.rows}
        latest = max([self.latest, *(inserts.latest for inserts in recent.values())])
        if latest != self.latest:  # the window moves with it: count what it holds now
            recent = inserts_since(client, latest - VISIBILITY_MARGIN)
        return hours, Arrivals(latest, {hour: inserts.rows for hour, inserts in recent.items()})

    def to_json(self) -> dict[str, object]:
        return {"inserted_after": self.latest.isoformat(), "seen": {h.isoformat(): n for h, n in self.seen.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Arrivals:
        latest = datetime.fromisoformat(str(data["inserted_after"])) if "inserted_after" in data else EPOCH
        seen = cast("Mapping[str, int]", data.get("seen") or {})
        # The cursor is JSON to_json wrote: "seen" is an object of hour -> count, which `object` does not say.
        return cls(latest, {datetime.fromisoformat(h): int(n) for h, n in seen.items()})


def changes_since_offload(offloads: Iterable[Offload], inserts: Mapping[datetime, Inserts],
                          reseals: Mapping[tuple[str, datetime], datetime]) -> dict[tuple[str, datetime], datetime]:
    """(cold table, hour) -> the latest change warm saw that its offload may have missed.

    A raw insert into an hour changes every table whose rows lie within that hour (the live views carry it
    through each layer). The daily candle is left to those: its window is the whole day, so comparing it
    would name every offloaded hour of a day for one late trade. A re-seal changes the table it sealed.
    """
    changed = {}
    for offload in offloads:
        key = (offload.cold_name, offload.hour)
        times = [*([inserts[offload.hour].latest] if offload.hour in inserts and hour_exact(offload.cold_name) else []),
                 *([reseals[key]] if key in reseals else [])]
        if times:
            changed[key] = max(times)
    return changed


def hour_exact(cold_name: str) -> bool:
    return cold_table(cold_name).timeframe != "1d"


def stale_offloads(client: Client, catalog: Catalog, offloads: Iterable[Offload],
                   changed: Mapping[tuple[str, datetime], datetime]) -> dict[Offload, VerifyResult]:
    """The offloads whose hour changed in warm after they began to read and whose content now differs, with
    the comparison that found it.

    `changed` maps (cold table, hour) to the latest change warm saw: a raw insert into the hour, or a
    re-seal of the table's warm layer.
    """
    stale = {}
    for offload in offloads:
        change = changed.get((offload.cold_name, offload.hour))
        if change is None or change < offload.read_from - VISIBILITY_MARGIN:
            continue
        verdict = matches_warm(client, catalog, offload.cold_name, HourRange.of_hour(offload.hour))
        if not verdict.ok:
            stale[offload] = verdict
    return stale


def reoffload_runs(stale: Iterable[Offload], changed: Mapping[tuple[str, datetime], datetime]) -> list[tuple[HourRange, str]]:
    """The runs that re-seal and re-offload the stale offloads' hours: one per contiguous range, with a run key.

    The run key names the range and the latest change of its hours, so a retried tick, or the next one, requests
    the same change once, and a later change of the same hours is requested again.
    """
    last_change: dict[datetime, datetime] = {}
    for offload in stale:
        change = changed[(offload.cold_name, offload.hour)]
        last_change[offload.hour] = max(change, last_change.get(offload.hour, change))
    runs = []
    for hours in contiguous_ranges(sorted(last_change)):
        latest = max(t for hour, t in last_change.items() if hours.start <= hour < hours.end)
        runs.append((hours, f"stale:{partition_key(hours.start)}...{partition_key(hours.end - ONE_HOUR)}:{latest.isoformat()}"))
    return runs
