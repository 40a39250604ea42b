"""The code location: the definitions of every domain under k2_lakehouse/defs, assembled with what applies to all.

Each domain (warm, cold, maintenance) keeps its assets, jobs, schedules and sensors side by side; this module
only lists them, binds the shared resources, built from Settings when the definitions load, and sets the
executor every run uses. `build_defs` gives the definitions for other settings (a test's K2_HOME, say).
"""

import dagster as dg

from k2_lakehouse.defs.cold.assets import cold_assets
from k2_lakehouse.defs.cold.jobs import cold_jobs
from k2_lakehouse.defs.cold.schedules import cold_schedules
from k2_lakehouse.defs.cold.sensors import cold_sensors
from k2_lakehouse.defs.executors import executor_from_env
from k2_lakehouse.defs.maintenance.assets import maintenance_assets
from k2_lakehouse.defs.maintenance.jobs import maintenance_jobs
from k2_lakehouse.defs.maintenance.schedules import maintenance_schedules
from k2_lakehouse.defs.resources import resources
from k2_lakehouse.defs.warm.assets import warm_assets
from k2_lakehouse.defs.warm.jobs import warm_jobs
from k2_lakehouse.settings import Settings, load_settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*warm_assets, *cold_assets, *maintenance_assets],
        jobs=[*warm_jobs, *cold_jobs, *maintenance_jobs],
        schedules=[*cold_schedules, *maintenance_schedules],
        sensors=cold_sensors,
        resources=resources(settings),
        # In-process with embedded ClickHouse (one process per store); see defs/executors.py.
        executor=executor_from_env(settings),
    )


defs = build_defs(load_settings())
