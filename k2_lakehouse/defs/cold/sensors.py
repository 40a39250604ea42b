"""The staleness sensor: hours that changed in warm after their offload are sealed and offloaded again.

The tick's work is the library's (cold.offload_history reads the event log, cold.staleness judges); this module
turns its findings into run requests and the events the UI marks stale partitions by. The library is imported
when a tick runs: it brings pyiceberg and ClickHouse's client, which loading the definitions does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from k2_lakehouse.cold.names import COLD_TO_WARM
from k2_lakehouse.defs.cold.assets import cold_key
from k2_lakehouse.defs.cold.jobs import offload_job
from k2_lakehouse.defs.resources import ColdStore, WarmStore
from k2_lakehouse.defs.warm.assets import warm_key
from k2_lakehouse.hours import partition_key
from k2_lakehouse.warm.client import WarmStoreBusy

if TYPE_CHECKING:
    from k2_lakehouse.cold.staleness import Offload
    from k2_lakehouse.cold.verify import VerifyResult

DATA_VERSION_TAG = "dagster/data_version"  # what a reported materialization's data version is read from

# cold table -> (its asset, the asset of the warm table it copies)
TABLE_KEYS = {name: (cold_key(name), warm_key(warm_name)) for name, warm_name in COLD_TO_WARM.items()}


def warm_changed_outside_a_run(offload: Offload, verdict: VerifyResult) -> dg.AssetMaterialization:
    """A warm table's hour that no longer equals its cold copy because rows arrived after the seal: the live views
    changed it outside any run.

    Reported with the warm content's checksum as its data version, so the UI marks the cold partition stale (a new
    dependency data version) until the re-seal and re-offload the sensor requests.
    """
    return dg.AssetMaterialization(
        asset_key=warm_key(COLD_TO_WARM[offload.cold_name]), partition=partition_key(offload.hour),
        description="Rows arrived after this hour was sealed and offloaded, and the live views carried them here. "
                    "Reported by cold_staleness_sensor, which requested the hour's re-seal and re-offload.",
        metadata={"rows": verdict.warm_rows, "rows_in_cold": verdict.cold_rows},
        tags={DATA_VERSION_TAG: f"{verdict.warm_checksum:016x}"})


@dg.sensor(job=offload_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Finds offloaded hours that changed in warm after their offload read it (raw rows inserted "
                       "later, a layer re-sealed later), compares those with warm, and requests a re-seal and "
                       "re-offload of exactly the hours that differ, batched into ranged runs.")
def cold_staleness_sensor(context: dg.SensorEvaluationContext, warm: WarmStore,
                          cold_store: ColdStore) -> dg.SensorResult | dg.SkipReason:
    from k2_lakehouse.cold import offload_history
    from k2_lakehouse.cold.staleness import reoffload_runs

    cursor = offload_history.SensorCursor.from_json(context.cursor)
    try:
        with warm.client() as client:
            found = offload_history.find_stale_offloads(context.instance, client, cold_store.catalog(), cursor,
                                                        TABLE_KEYS)
    except WarmStoreBusy as busy:
        return dg.SkipReason(f"warm store busy, trying again next tick: {busy}")
    if not found.stale:
        return dg.SensorResult(skip_reason=f"{len(found.hours)} hours changed or were offloaded since the last tick; "
                                           f"{len(found.changed)} compared with warm, none differ",
                               cursor=found.cursor.to_json())
    # A re-seal recorded its own materialization; rows that arrived changed warm without one.
    changed_by_arrivals = [warm_changed_outside_a_run(offload, verdict) for offload, verdict in found.stale.items()
                           if offload.hour in found.inserted]
    requests = [dg.RunRequest(run_key=run_key, tags=hours.tags()) for hours, run_key in reoffload_runs(found.stale,
                                                                                                       found.changed)]
    return dg.SensorResult(run_requests=requests, cursor=found.cursor.to_json(), asset_events=changed_by_arrivals)


cold_sensors = [cold_staleness_sensor]
