"""Offload of one silver hour to an S3-protocol server on loopback, beside the same offload to a local warehouse.

Both offloads run in one process against one warm store, in turns (medians of several runs), so the ratio compares
the two warehouses on the same machine at the same moment. The S3 server is moto's ThreadedMotoServer, the one the
tests use: it keeps objects in this process's memory, so the figure is the cost of the S3 protocol path (ClickHouse's
s3() writes, pyiceberg's registration through its S3 FileIO), not of a real object store's network and disks.
Rows never pass through Python on either path. Target (issue 14): report both and the ratio.

    .venv/bin/python benchmarks/cold_offload_s3.py [--rows 2000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks may import k2_lakehouse_tests.support

from benchmarks.cold_offload import _hour_range, _interleaved_medians, _silver_hour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from k2_lakehouse.cold.catalog import catalog_at
    from k2_lakehouse.cold.offload import offload_hours
    from k2_lakehouse.cold.tables import ensure_cold_tables
    from k2_lakehouse.cold.verify import matches_warm
    from k2_lakehouse.warm.client import connect
    from k2_lakehouse.warm.schema import apply_schema
    from k2_lakehouse_tests.support.object_store import start_s3_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    home = Path(tempfile.mkdtemp(prefix="k2-bench-s3-"))
    server, s3 = start_s3_server()
    try:
        client = connect(f"chdb://{home / 'clickhouse'}")
        apply_schema(client)
        catalogs = {
            "local": catalog_at(f"sqlite:///{home / 'local.db'}", f"file://{home / 'warehouse'}"),
            "s3": catalog_at(f"sqlite:///{home / 's3.db'}", s3.new_warehouse(), s3.store()),
        }
        for catalog in catalogs.values():
            ensure_cold_tables(catalog)
        hours = _hour_range()
        _silver_hour(client, args.rows)
        for catalog in catalogs.values():  # warm-up: first metadata, the named collection, caches
            offload_hours(client, catalog, "silver_trades", hours)
        medians = _interleaved_medians(
            {name: (lambda c=catalog: offload_hours(client, c, "silver_trades", hours)) for name, catalog in catalogs.items()},
            runs=args.runs)
        for name, catalog in catalogs.items():
            verdict = matches_warm(client, catalog, "silver_trades", hours)
            assert verdict.ok and verdict.cold_rows == args.rows, (name, verdict)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    load = os.getloadavg()[0]
    ratio = medians["s3"] / medians["local"]
    print(f"| offload of a {args.rows:,}-row silver hour, medians of {args.runs} | wall s | CPU s | rows/s |")
    print("|---|---|---|---|")
    for name in ("local", "s3"):
        print(f"| {name} warehouse | {medians[name]:.2f} | {medians[name + '_cpu']:.2f} | {args.rows / medians[name]:,.0f} |")
    print(f"| S3 / local | {ratio:.2f}× wall | {medians['s3_cpu'] / medians['local_cpu']:.2f}× CPU | (load {load:.1f}) |")


if __name__ == "__main__":
    main()
