"""The one module holding pyiceberg's internals: its version check, and that no other module bypasses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pyiceberg
import pytest

from k2_lakehouse.cold.iceberg_internals import USED, PyIcebergVersionError, check_pyiceberg, missing_internals

ROOT = Path(__file__).resolve().parents[2]
INTERNALS = ROOT / "k2_lakehouse" / "cold" / "iceberg_internals.py"


def test_the_installed_pyiceberg_has_every_internal_the_project_uses() -> None:
    assert missing_internals() == []
    check_pyiceberg(pyiceberg.__version__, missing_internals())  # raises if unsupported


@pytest.mark.parametrize("version", ["0.11.1", "0.13.0", "1.0.0", "nightly"])
def test_an_unsupported_version_fails_with_one_message_naming_the_installed_and_supported_versions(
        version: str) -> None:
    with pytest.raises(PyIcebergVersionError,
                       match=rf"^installed pyiceberg {version} is not supported: .* supports pyiceberg >=0\.12,<0\.13\. "
                             r"Install a supported version"):
        check_pyiceberg(version)


@pytest.mark.parametrize("version", ["0.12.0", "0.12.3", "0.12.1rc1"])
def test_versions_in_the_supported_range_pass(version: str) -> None:
    check_pyiceberg(version)


def test_a_supported_version_lacking_an_internal_fails_naming_it() -> None:
    with pytest.raises(PyIcebergVersionError, match=r"0\.12\.0 is not supported: .*; it lacks pyiceberg\.io\.pyarrow:_gone\."):
        check_pyiceberg("0.12.0", ["pyiceberg.io.pyarrow:_gone"])


def test_missing_internals_finds_renamed_attributes_methods_and_modules() -> None:
    present = ["pyiceberg.io.pyarrow:PyArrowFileIO.parse_location",
               "pyiceberg.io.pyarrow:PyArrowFileIO.fs_by_scheme"]  # an instance attribute the class declares
    absent = ["pyiceberg.io.pyarrow:no_such_name", "pyiceberg.io.pyarrow:PyArrowFileIO.no_such_method",
              "pyiceberg.no_such_module:Anything"]

    assert missing_internals([*present, *absent]) == absent


def test_no_other_module_imports_a_pyiceberg_internal_directly() -> None:
    internal = {(module, path.split(".")[0]) for module, _, path in (entry.partition(":") for entry in USED)}
    offenders = []
    for folder in ("k2_lakehouse", "k2_lakehouse_tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == INTERNALS:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyiceberg"):
                    for alias in node.names:
                        if alias.name.startswith("_") or (node.module, alias.name) in internal:
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    assert offenders == [], "import these from k2_lakehouse.cold.iceberg_internals"
