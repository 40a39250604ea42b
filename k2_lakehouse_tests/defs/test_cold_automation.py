"""The cold and maintenance assets, schedules and the staleness sensor, run as Dagster runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from clickhouse_connect.driver.client import Client

from k2_lakehouse.ingest.load import ingest_file
from k2_lakehouse_tests.support.cold import KRAKEN_TRADES, add_late_kraken_trade
from k2_lakehouse_tests.support.defs import KRAKEN_RANGE, cold_catalog, definitions, run_job


def test_offload_job_seals_and_offloads_a_range_with_every_check_passing(offloaded: dg.ExecuteInProcessResult) -> None:
    assert offloaded.success
    checks = offloaded.get_asset_check_evaluations()
    per_hour = {(c.asset_key.to_user_string(), c.partition) for c in checks if c.check_name == "matches_warm" and c.partition}
    assert len(per_hour) == 9 * 8  # nine cold tables, one evaluation per hour of the range
    assert all(c.passed for c in checks)


def test_a_ranged_offload_makes_one_iceberg_commit_per_table(offloaded: dg.ExecuteInProcessResult) -> None:
    from k2_lakehouse.cold.names import COLD_TO_WARM

    catalog = cold_catalog()
    for name in COLD_TO_WARM:
        snapshots = catalog.load_table(("cold", name)).snapshots()
        assert len(snapshots) == 1, name
        assert snapshots[0].summary["k2.run_id"] == offloaded.run_id


def test_offload_schedule_ticks_every_15_minutes_into_the_offload_job() -> None:
    schedule = next(s for s in definitions().schedules if s.name == "offload_schedule")
    assert (schedule.cron_schedule, schedule.job_name, schedule.execution_timezone) == ("*/15 * * * *", "offload_job", "UTC")


def _hours_of_runs(runs: list[dg.DagsterRun]) -> list[datetime]:
    from k2_lakehouse.hours import hour_of

    hours = []
    for run in runs:
        first = run.tags.get("dagster/asset_partition_range_start") or run.tags["dagster/partition"]
        last = run.tags.get("dagster/asset_partition_range_end") or first
        hour = hour_of(first)
        while hour <= hour_of(last):
            hours.append(hour)
            hour += timedelta(hours=1)
    return hours


@pytest.mark.slow
def test_the_offload_schedule_launches_every_closed_hour_once_across_ticks_retries_and_a_daemon_downtime(
        tmp_path: Path) -> None:
    """The real schedule daemon over the code location, its clock frozen at each tick."""
    import logging

    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._scheduler.scheduler import launch_scheduled_runs

    from k2_lakehouse.defs.cold.schedules import OFFLOAD_CATCH_UP

    target = ModuleTarget(module_name="k2_lakehouse.definitions", attribute="defs", working_directory=str(Path.cwd()),
                          location_name="k2_lakehouse")
    queued = {"run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}}
    ticks = [(9, 55), (10, 0), (10, 15), (10, 30), (10, 45), (10, 45),  # up; the last tick retried
             (12, 10), (12, 15), (12, 30), (12, 45), (13, 0)]  # down from 10:50 to 12:10, up again
    with dg.instance_for_test(overrides=queued, temp_dir=str(tmp_path)) as instance, \
            create_test_daemon_workspace_context(target, instance) as workspace:
        for hour, minute in ticks:
            now = datetime(2025, 11, 10, hour, minute, 5, tzinfo=UTC)
            with freeze_time(now):
                list(launch_scheduled_runs(workspace, logging.getLogger("k2.test"), now, {}))
        hours = _hours_of_runs([r for r in instance.get_runs() if r.job_name == "offload_job"])

    # The schedule starts at its first tick after 09:55, 10:00, which looks back from the hour that closed last.
    first = datetime(2025, 11, 10, 9, tzinfo=UTC) - OFFLOAD_CATCH_UP + timedelta(hours=1)
    expected = [first + timedelta(hours=n) for n in range(int((datetime(2025, 11, 10, 12, tzinfo=UTC) - first)
                                                              / timedelta(hours=1)) + 1)]
    assert sorted(hours) == expected  # every closed hour, 10:00 and 11:00 of the downtime too, each once


@pytest.mark.parametrize(("name", "cron", "job"), [
    ("compaction_schedule", "0 2 * * *", "compaction_job"),
    ("snapshot_expiry_schedule", "20 2 * * *", "snapshot_expiry_job"),
    ("audit_schedule", "30 2 * * *", "audit_job"),
])
def test_nightly_schedules_run_once_a_day_with_a_dated_run_key(name: str, cron: str, job: str) -> None:
    schedule = next(s for s in definitions().schedules if s.name == name)
    assert (schedule.cron_schedule, schedule.job_name, schedule.execution_timezone) == (cron, job, "UTC")
    tick = datetime(2025, 11, 11, 2, 30, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=definitions().get_repository_def()) as context:
        first = schedule.evaluate_tick(context).run_requests[0].run_key
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=definitions().get_repository_def()) as context:
        retried = schedule.evaluate_tick(context).run_requests[0].run_key
    assert first == retried == f"{job}:2025-11-11"


def test_the_latest_materialization_of_every_partition_is_found_across_pages_and_chunks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from k2_lakehouse.cold import offload_history

    monkeypatch.setattr(offload_history, "EVENT_PAGE", 2)  # stands for 1,000: two chunks of two hours, pages of two events
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["cold", "raw_trades"])
    offloads = ["2025-11-10-00:00", "2025-11-10-01:00", "2025-11-10-03:00", "2025-11-10-02:00", "2025-11-10-02:00"]
    for partition in offloads:  # 02:00 offloaded twice, last: its second page holds 03:00
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))

    latest = offload_history.latest_materializations(instance, key, sorted(set(offloads)))

    assert sorted(latest) == sorted(set(offloads))


def _sensor_tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    defs = definitions()
    sensor = defs.resolve_sensor_def("cold_staleness_sensor")
    resources = {"warm": defs.resources["warm"], "cold_store": defs.resources["cold_store"]}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = sensor.evaluate_tick(context)
        return result


def _requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in result.run_requests]


def test_a_late_trade_makes_the_sensor_request_exactly_its_hour_and_the_rerun_fixes_cold(
        offloaded: dg.ExecuteInProcessResult, warm: Client, instance: dg.DagsterInstance) -> None:
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse.hours import HourRange

    first = _sensor_tick(instance, None)
    assert first.run_requests == []  # nothing changed since the offload
    late_hour = datetime(2025, 11, 10, 20, tzinfo=UTC)
    add_late_kraken_trade(warm, late_hour + timedelta(minutes=7))
    second = _sensor_tick(instance, first.cursor)
    assert _requested(second) == [("2025-11-10-20:00", "2025-11-10-20:00")]
    rerun = run_job(instance, "offload_job", second.run_requests[0].tags)
    assert rerun.success
    hour = HourRange(late_hour, late_hour + timedelta(hours=1))
    assert all(matches_warm(warm, cold_catalog(), name, hour).ok for name in ("raw_trades", "silver_trades", "gold_ohlcv_1d"))
    assert _sensor_tick(instance, second.cursor).run_requests == []


def _ui_status(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> str:
    """What the UI shows for an asset partition: FRESH, STALE or MISSING (the resolver the webserver uses)."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._core.loader import LoadingContextForTest

    resolver = CachingStaleStatusResolver(instance, definitions().resolve_asset_graph(), LoadingContextForTest(instance))
    return resolver.get_status(key, partition).value


def test_a_late_trade_marks_its_hour_stale_in_the_ui_until_the_reoffload(
        offloaded: dg.ExecuteInProcessResult, warm: Client, instance: dg.DagsterInstance) -> None:
    late, other = "2025-11-10-20:00", "2025-11-10-19:00"
    cold = [dg.AssetKey(["cold", name]) for name in ("raw_trades", "silver_trades", "gold_ohlcv_1h")]
    first = _sensor_tick(instance, None)
    assert {_ui_status(instance, key, late) for key in cold} == {"FRESH"}
    add_late_kraken_trade(warm, datetime(2025, 11, 10, 20, 7, tzinfo=UTC))

    second = _sensor_tick(instance, first.cursor)
    for event in second.asset_events:  # what the daemon does with a tick's events
        instance.report_runless_asset_event(event)

    assert {key.to_user_string(): _ui_status(instance, key, late) for key in cold} == {k.to_user_string(): "STALE" for k in cold}
    assert {_ui_status(instance, key, other) for key in cold} == {"FRESH"}
    assert run_job(instance, "offload_job", second.run_requests[0].tags).success
    assert {_ui_status(instance, key, late) for key in cold} == {"FRESH"}
    assert _sensor_tick(instance, second.cursor).run_requests == []  # its own report is no re-seal to compare


def test_an_offload_recorded_while_a_tick_reads_is_read_by_the_next_tick(
        offloaded: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    from k2_lakehouse.cold import offload_history

    first = _sensor_tick(instance, None)
    read = offload_history.materializations_after

    def offloads_finish_meanwhile(instance: dg.DagsterInstance, key: dg.AssetKey, *args: int) -> list:
        records = read(instance, key, *args)
        if key == dg.AssetKey(["cold", "raw_trades"]):  # just read: an offload of it lands, then one of a later key
            for later in (key, dg.AssetKey(["cold", "silver_trades"])):
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=later, partition="2025-11-10-18:00"))
        return records

    monkeypatch.setattr(offload_history, "materializations_after", offloads_finish_meanwhile)
    during = _sensor_tick(instance, first.cursor)
    monkeypatch.setattr(offload_history, "materializations_after", read)
    after = _sensor_tick(instance, during.cursor)

    assert during.skip_message is not None and during.skip_message.startswith("0 hours")
    assert after.skip_message is not None and after.skip_message.startswith("1 hours")  # 18:00, both offloads


def test_a_row_received_before_the_cursor_but_inserted_after_it_is_still_found(
        offloaded: dg.ExecuteInProcessResult, warm: Client, instance: dg.DagsterInstance) -> None:
    # The second batch of an ingest that started an hour ago: received_at is the ingest's start.
    first = _sensor_tick(instance, None)
    late_hour = datetime(2025, 11, 10, 21, tzinfo=UTC)
    add_late_kraken_trade(warm, late_hour + timedelta(minutes=3), received_at=datetime.now(UTC) - timedelta(hours=1))
    assert _requested(_sensor_tick(instance, first.cursor)) == [("2025-11-10-21:00", "2025-11-10-21:00")]


def test_a_reseal_that_moves_dlq_rows_into_silver_makes_the_sensor_request_exactly_that_hour(
        warm: Client, datasets: Path, cold_env: Path, instance: dg.DagsterInstance) -> None:
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse.hours import HourRange
    from k2_lakehouse.warm.schema import load_symbol_registry, load_symbols

    # Offloaded while the registry lacked the symbol: every trade of the range is in the DLQ, cold silver empty.
    load_symbol_registry(warm, [s for s in load_symbols() if s.exchange != "kraken"])
    ingest_file(warm, datasets / KRAKEN_TRADES)
    assert run_job(instance, "offload_job", KRAKEN_RANGE).success
    first = _sensor_tick(instance, None)
    assert first.run_requests == []
    # The registry is repaired and one hour re-sealed: its silver and gold change, its raw rows do not.
    load_symbol_registry(warm)
    repaired = {"dagster/asset_partition_range_start": "2025-11-10-19:00",
                "dagster/asset_partition_range_end": "2025-11-10-19:00"}
    assert run_job(instance, "warm_seal_job", repaired).success
    second = _sensor_tick(instance, first.cursor)
    assert _requested(second) == [("2025-11-10-19:00", "2025-11-10-19:00")]
    assert run_job(instance, "offload_job", second.run_requests[0].tags).success
    hour = datetime(2025, 11, 10, 19, tzinfo=UTC)
    assert matches_warm(warm, cold_catalog(), "silver_trades", HourRange(hour, hour + timedelta(hours=1))).ok
    assert _sensor_tick(instance, second.cursor).run_requests == []


def test_the_audit_job_catches_a_tampered_cold_table(offloaded: dg.ExecuteInProcessResult, warm: Client,
                                                    instance: dg.DagsterInstance) -> None:
    table = cold_catalog().load_table(("cold", "silver_trades"))
    rows = table.scan(limit=1).to_arrow()
    table.append(rows)  # a duplicated row, as the old plan's at-least-once offload made
    result = run_job(instance, "audit_job")
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "no_mismatch" in failed
    recorded = warm.query("SELECT DISTINCT cold_table FROM k2.audit_results WHERE NOT matches").result_rows
    assert recorded == [("silver_trades",)]


def _audited(result: dg.ExecuteInProcessResult) -> tuple[int, dict[str, bool]]:
    materialization = result.asset_materializations_for_node("maintenance__audit")[0]
    return (materialization.metadata["hours_audited"].value,  # type: ignore[return-value]
            {c.check_name: c.passed for c in result.get_asset_check_evaluations()})


def test_the_audit_leaves_out_the_hour_still_being_ingested(offloaded: dg.ExecuteInProcessResult, warm: Client,
                                                           instance: dg.DagsterInstance) -> None:
    add_late_kraken_trade(warm, datetime.now(UTC) - timedelta(seconds=30))  # live ingest goes on during the audit
    result = run_job(instance, "audit_job")
    assert result.success
    assert _audited(result) == (8, {"no_mismatch": True, "verified_before_expiry": True, "no_missing_cold_hours": True})


@pytest.mark.parametrize("tags", [{"dagster/partition": "2025-11-10-17:00"},
                                  {**KRAKEN_RANGE, "dagster/asset_partition_range_end": "2025-11-10-17:00"}],
                         ids=["partition", "range"])
def test_an_audit_launched_for_one_hour_audits_that_hour(offloaded: dg.ExecuteInProcessResult,
                                                        instance: dg.DagsterInstance, tags: dict[str, str]) -> None:
    assert _audited(run_job(instance, "audit_job", tags))[0] == 1


def test_a_ranged_audit_judges_expiry_only_for_its_own_hours(offloaded: dg.ExecuteInProcessResult, warm: Client,
                                                            instance: dg.DagsterInstance) -> None:
    # Hour 20:00 gets a row received 29 days ago, so it starts leaving warm within 48 h; no audit has compared it.
    add_late_kraken_trade(warm, datetime(2025, 11, 10, 20, 7, tzinfo=UTC),
                          received_at=datetime.now(UTC) - timedelta(days=29))
    assert run_job(instance, "offload_job", {"dagster/partition": "2025-11-10-20:00"}).success
    of_17 = run_job(instance, "audit_job", {**KRAKEN_RANGE, "dagster/asset_partition_range_end": "2025-11-10-17:00"})
    of_20 = run_job(instance, "audit_job", {"dagster/partition": "2025-11-10-20:00"})
    assert _audited(of_17)[1]["verified_before_expiry"]
    assert _audited(of_20)[1]["verified_before_expiry"]  # compared, and it matches


def test_an_unverified_hour_about_to_leave_warm_fails_the_audit_check(offloaded: dg.ExecuteInProcessResult,
                                                                     warm: Client, instance: dg.DagsterInstance) -> None:
    add_late_kraken_trade(warm, datetime(2025, 11, 10, 20, 7, tzinfo=UTC),
                          received_at=datetime.now(UTC) - timedelta(days=29))  # not re-offloaded: cold lacks it
    result = run_job(instance, "audit_job", {"dagster/partition": "2025-11-10-20:00"})
    assert _audited(result)[1] == {"no_mismatch": False, "verified_before_expiry": False, "no_missing_cold_hours": True}


@pytest.mark.parametrize("engine", ["in_process", "spark"])
def test_the_compaction_job_leaves_fewer_files_and_the_same_content(offloaded: dg.ExecuteInProcessResult, warm: Client,
                                                                   instance: dg.DagsterInstance, engine: str) -> None:
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse.hours import HourRange

    for hour in range(17, 24):  # hour-by-hour re-offloads, as the 15-minute schedule makes them
        key = f"2025-11-10-{hour:02d}:00"
        assert run_job(instance, "offload_job", {"dagster/partition": key}).success
    table = cold_catalog().load_table(("cold", "silver_trades"))
    before = len(table.inspect.files())
    engine_config = {"ops": {"maintenance__compaction": {"config": {"engine": engine}}}}
    result = run_job(instance, "compaction_job", run_config=engine_config)
    assert result.success
    materialization = result.asset_materializations_for_node("maintenance__compaction")[0]
    assert materialization.metadata["engine"].value == engine.replace("_", "-")
    after = len(cold_catalog().load_table(("cold", "silver_trades")).inspect.files())
    assert after < before
    hours = HourRange(datetime(2025, 11, 10, 17, tzinfo=UTC), datetime(2025, 11, 11, 1, tzinfo=UTC))
    assert matches_warm(warm, cold_catalog(), "silver_trades", hours).ok
