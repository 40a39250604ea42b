"""What Dagster's event log says about offloads and re-seals, and the staleness sensor's tick built on it.

There is no watermark table: offloads and seals record their work as materializations, so the event log is where
the sensor learns which hours were offloaded (and when each offload's run began to read warm) and which warm
layers were re-sealed since. Each tick reads the materializations recorded since the last tick up to one mark
taken first, and its cursor moves to that mark: an event recorded while the tick reads (an offload finishing) is
read by the next tick, never passed over because a later event of another key was read. The log is paged, so
a month's backfill (thousands of events per table) is read in bounded pieces.

What counts as a change and what is stale is staleness.py's; this module only gathers what it judges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from k2_lakehouse.cold.staleness import (
    Arrivals,
    Offload,
    changes_since_offload,
    inserts_since_offloads,
    stale_offloads,
)
from k2_lakehouse.hours import hour_of, partition_key

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from pyiceberg.catalog import Catalog

    from k2_lakehouse.cold.verify import VerifyResult

EVENT_PAGE = 1000  # events per read of the event log, and partitions per filter


def materializations_after(instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int,
                           up_to: int) -> list[dg.EventLogRecord]:
    """Every materialization of `key` recorded after `storage_id`, up to storage id `up_to`, oldest first."""
    records: list[dg.EventLogRecord] = []
    page_cursor = None
    while True:
        window = dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id, before_storage_id=up_to + 1)
        page = instance.fetch_materializations(window, limit=EVENT_PAGE, cursor=page_cursor, ascending=True)
        records.extend(page.records)
        if not page.has_more:
            return records
        page_cursor = page.cursor


def latest_materializations(instance: dg.DagsterInstance, key: dg.AssetKey,
                            partition_keys: list[str]) -> dict[str, dg.EventLogRecord]:
    """partition -> its latest materialization of `key`, for those of `partition_keys` that have one."""
    latest: dict[str, dg.EventLogRecord] = {}
    for first in range(0, len(partition_keys), EVENT_PAGE):
        wanted = partition_keys[first:first + EVENT_PAGE]
        page_cursor = None
        while True:
            page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=wanted),
                                                   limit=EVENT_PAGE, cursor=page_cursor)
            for record in page.records:  # newest first; filtered by partition, so every record has one
                if record.partition_key is not None:
                    latest.setdefault(record.partition_key, record)
            if not page.has_more or all(key in latest for key in wanted):
                break
            page_cursor = page.cursor
    return latest


def read_from(instance: dg.DagsterInstance, record: dg.EventLogRecord, run_starts: dict[str, datetime]) -> datetime:
    """The earliest moment the materialization's run may have read warm: the run's start (an event reported
    without a run: its own time). `run_starts` caches the runs already looked up."""
    if record.run_id not in run_starts:
        run = instance.get_run_record_by_id(record.run_id) if record.run_id else None
        started = run.start_time if run is not None and run.start_time is not None else record.timestamp
        run_starts[record.run_id] = datetime.fromtimestamp(started, UTC)
    return run_starts[record.run_id]


@dataclass(frozen=True)
class SensorCursor:
    """Where the last tick stopped: the arrivals it had seen, and the last event log record it had read."""

    arrivals: Arrivals
    events_after: int

    @classmethod
    def from_json(cls, text: str | None) -> SensorCursor:
        data = json.loads(text) if text else {}
        return cls(Arrivals.from_json(data), int(data.get("events_after", 0)))

    def to_json(self) -> str:
        return json.dumps({**self.arrivals.to_json(), "events_after": self.events_after})


@dataclass(frozen=True)
class StaleOffloads:
    """One tick's findings."""

    hours: list[datetime]  # hours that received rows, were re-sealed or were offloaded since the last tick
    changed: dict[tuple[str, datetime], datetime]  # (cold table, hour) -> the latest change its offload may miss
    stale: dict[Offload, VerifyResult]  # the offloads that now differ from warm, with the comparison
    inserted: set[datetime]  # offloaded hours that received rows after their offload (not only a re-seal)
    cursor: SensorCursor


def find_stale_offloads(instance: dg.DagsterInstance, client: Client, catalog: Catalog, cursor: SensorCursor,
                        keys: Mapping[str, tuple[dg.AssetKey, dg.AssetKey]]) -> StaleOffloads:
    """The offloads whose hour changed in warm since they read it and now differ, looking at what happened since
    `cursor`. `keys` maps each cold table to its asset key and its warm table's asset key."""
    up_to = instance.event_log_storage.get_maximum_record_id() or 0
    offloaded = {name: materializations_after(instance, cold_key, cursor.events_after, up_to)
                 for name, (cold_key, _) in keys.items()}
    resealed = {name: materializations_after(instance, warm_key, cursor.events_after, up_to)
                for name, (_, warm_key) in keys.items()}
    new_records = [r for records in (*offloaded.values(), *resealed.values()) for r in records]
    arrived, arrivals = cursor.arrivals.next(client)
    hours = sorted(arrived | {hour_of(r.partition_key) for r in new_records if r.partition_key})
    run_starts: dict[str, datetime] = {}
    offloads: list[Offload] = []
    reseals: dict[tuple[str, datetime], datetime] = {}
    for name, (cold_key, _) in keys.items():
        latest = latest_materializations(instance, cold_key, [partition_key(h) for h in hours])
        offloads += [Offload(name, hour_of(key), read_from(instance, record, run_starts)) for key, record in latest.items()]
        for record in resealed[name]:  # a seal in the offload's own run is what the offload copied
            if (record.run_id  # not the sensor's own report of arrivals: a seal runs in a run
                    and record.partition_key in latest and record.run_id != latest[record.partition_key].run_id):
                reseals[(name, hour_of(record.partition_key))] = datetime.fromtimestamp(record.timestamp, UTC)
    inserts = inserts_since_offloads(client, offloads)
    changed = changes_since_offload(offloads, inserts, reseals)
    stale = stale_offloads(client, catalog, offloads, changed)
    return StaleOffloads(hours, changed, stale, set(inserts), SensorCursor(arrivals, max(cursor.events_after, up_to)))
