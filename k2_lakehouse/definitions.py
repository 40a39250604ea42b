"""The code location: assembles Definitions from k2_lakehouse/defs."""

import dagster as dg

from k2_lakehouse.defs.automation import jobs, schedules, sensors
from k2_lakehouse.defs.cold.assets import cold_assets
from k2_lakehouse.defs.executors import executor_from_env
from k2_lakehouse.defs.maintenance.assets import maintenance_assets
from k2_lakehouse.defs.resources import Spark, cold_store_from_env, spark_config_from_env, warm_store_from_env
from k2_lakehouse.defs.warm.assets import warm_assets

defs = dg.Definitions(
    assets=[*warm_assets, *cold_assets, *maintenance_assets],
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources={
        "warm": warm_store_from_env(),
        "cold_store": cold_store_from_env(),
        # Lazy: pyspark is imported and Spark started only when the Spark compaction engine is chosen.
        "spark": Spark(spark_config=spark_config_from_env()),
    },
    executor=executor_from_env(),  # in-process with embedded ClickHouse (one process per store); see executors.py
)
