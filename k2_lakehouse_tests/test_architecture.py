"""The import rules of k2_lakehouse/, read from the source with `ast` (nothing is imported).

Three rules, each a test:
* no module takes another module's private name (`_x`), by `from m import _x`, `m._x`, or getattr/setattr;
  a private module (`_utils.py`) may be imported only from inside the package that holds it;
* no import cycle, counting imports at the top of a module, inside functions (how this project defers heavy
  imports) and under `if TYPE_CHECKING:`: a cycle through a deferred import still ties the modules together;
* layers: a module imports only its own unit (the top-level module or package it belongs to) and units of lower
  layers (LAYERS below, bottom first; units sharing a layer are independent of each other), and never FORBIDDEN.

LAYERS and FORBIDDEN are the rule as ARCHITECTURE.md states it: change them there and here together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "k2_lakehouse"
ROOT = "k2_lakehouse"

# Bottom first. Shared vocabulary, then settings; warm (ClickHouse); ingest, which writes raw messages into warm,
# and cold, which reads warm, side by side; the Dagster layer; the code location assembling it; the terminal.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hours",),
    ("settings",),
    ("warm",),
    ("ingest", "cold"),
    ("defs",),
    ("definitions",),
    ("console", "instance"),
    ("demo", "doctor"),
    ("cli",),
)

# (importing package, imported module): why not. Cold and ingest import nothing that writes warm.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("cold", "warm.seal"): "cold reads warm, it never rewrites it",
    ("cold", "warm.schema"): "cold reads warm, it never changes its schema",
    ("ingest", "warm.seal"): "ingest inserts raw messages, sealing is the warm assets' job",
    ("ingest", "warm.schema"): "ingest inserts raw messages; whoever opens the store applies the schema",
}

@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of the project
    name: str  # the name taken from `target` ("" when the module itself is imported)
    line: int
    deferred: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`

    def where(self) -> str:
        how = "type-only " if self.type_only else "deferred " if self.deferred else ""
        return f"{self.importer} line {self.line} ({how}import of {self.target}{'.' + self.name if self.name else ''})"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class ModuleReader(ast.NodeVisitor):
    """The project imports of one module, the names bound to project modules, and private attribute uses."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        self.imports: list[Import] = []
        self.bound: dict[str, str] = {}  # local name -> the project module it stands for
        self.attribute_uses: list[tuple[ast.expr, str, int]] = []  # (object, private attribute, line)
        self._functions = 0
        self._type_checking = 0

    def _record(self, target: str, name: str, node: ast.stmt) -> None:
        self.imports.append(Import(self.module, target, name, node.lineno, self._functions > 0, self._type_checking > 0))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if is_type_checking(node.test):
            self._type_checking += 1
            for child in node.body:
                self.visit(child)
            self._type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                self._record(alias.name, "", node)
                if alias.asname:
                    self.bound[alias.asname] = alias.name
                else:
                    self.bound[ROOT] = ROOT

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        if base != ROOT and not base.startswith(ROOT + "."):
            return
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in MODULES:
                self._record(submodule, "", node)
                self.bound[alias.asname or alias.name] = submodule
            elif alias.name != "*":
                self._record(base, alias.name, node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr):
            self.attribute_uses.append((node.value, node.attr, node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (isinstance(node.func, ast.Name) and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and is_private(node.args[1].value)):
            self.attribute_uses.append((node.args[0], node.args[1].value, node.lineno))
        self.generic_visit(node)

    def module_of(self, expr: ast.expr) -> str | None:
        """The project module `expr` names (`seal`, `k2_lakehouse.warm.seal`), if it names one."""
        if isinstance(expr, ast.Name):
            return self.bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            parent = self.module_of(expr.value)
            if parent is not None and f"{parent}.{expr.attr}" in MODULES:
                return f"{parent}.{expr.attr}"
        return None


def read(module: str) -> ModuleReader:
    reader = ModuleReader(module)
    reader.visit(ast.parse(MODULES[module].read_text(), filename=str(MODULES[module])))
    return reader


READERS = {module: read(module) for module in MODULES}
IMPORTS = [i for reader in READERS.values() for i in reader.imports]


def unit_of(module: str) -> str:
    """The top-level module or package of k2_lakehouse that `module` belongs to ("" for the root package)."""
    return module.removeprefix(ROOT).lstrip(".").split(".")[0]


def layer_of(unit: str) -> int:
    """The unit's layer, bottom 0; a unit LAYERS does not place counts as the top (test_every_module_... says so)."""
    return next((i for i, units in enumerate(LAYERS) if unit in units), len(LAYERS))


Violation = tuple[str, str, str, str, str]  # (rule, importer, imported module, name, where)


def private_name_violations(readers: Iterable[ModuleReader]) -> Iterator[Violation]:
    """Every use of another module's private name, or of a private module from outside its package."""
    readers = list(readers)
    for i in (i for reader in readers for i in reader.imports):
        if i.name and is_private(i.name):
            yield "private-name", i.importer, i.target, i.name, i.where()
        parts = i.target.split(".")
        for depth, part in enumerate(parts):  # a private module belongs to the package that holds it
            holder = ".".join(parts[:depth])
            if is_private(part) and not (i.importer == holder or i.importer.startswith(holder + ".")):
                yield "private-module", i.importer, i.target, part, i.where()
    for reader in readers:
        for obj, attribute, line in reader.attribute_uses:
            owner = reader.module_of(obj)
            if owner is not None and f"{owner}.{attribute}" not in MODULES:
                yield "private-name", reader.module, owner, attribute, f"{reader.module} line {line} ({owner}.{attribute})"


Graph = dict[str, dict[str, list[Import]]]  # importer -> imported module -> the imports


def import_graph(imports: Iterable[Import]) -> Graph:
    graph: Graph = {module: {} for module in MODULES}
    for i in imports:
        if i.target != i.importer:
            graph[i.importer].setdefault(i.target, []).append(i)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def layer_violations(imports: Iterable[Import]) -> Iterator[Violation]:
    for i in imports:
        importer, target = unit_of(i.importer), unit_of(i.target)
        if importer != target and layer_of(target) >= layer_of(importer):
            yield "layer", i.importer, i.target, "", f"{i.where()}: {importer} may not import {target}"
        for (package, module), why in FORBIDDEN.items():
            forbidden = f"{ROOT}.{module}"
            if unit_of(i.importer) == package and (i.target == forbidden or i.target.startswith(forbidden + ".")):
                yield "forbidden", i.importer, i.target, "", f"{i.where()}: {why}"


def unexpected(violations: Iterator[Violation]) -> list[str]:
    return [where for _rule, _importer, _target, _name, where in violations]


def test_the_reader_sees_the_package() -> None:
    # A rule over nothing passes: make sure the walk found the modules and their imports.
    assert {"k2_lakehouse.cli", "k2_lakehouse.definitions", "k2_lakehouse.hours", "k2_lakehouse.warm.seal"} <= set(MODULES)
    assert any(i.importer == "k2_lakehouse.cli" and i.target == "k2_lakehouse.settings" for i in IMPORTS)
    assert any(i.deferred for i in IMPORTS) and any(i.type_only for i in IMPORTS)


def test_no_module_imports_another_modules_private_names() -> None:
    found = unexpected(private_name_violations(READERS.values()))
    assert not found, "\n".join(found)


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph(IMPORTS)
    described = []
    for component in cycles(graph):
        edges = [i for module in component for target, imports in graph[module].items() if target in component
                 for i in imports]
        at_import = all(not (i.deferred or i.type_only) for i in edges)
        when = "at import time" if at_import else "through deferred or type-only imports"
        described.append(f"{' <-> '.join(component)} ({when}): " + "; ".join(i.where() for i in edges))
    assert not described, "\n".join(described)


def test_every_module_belongs_to_a_layer() -> None:
    units = {unit_of(module) for module in MODULES} - {""}
    layered = {unit for layer in LAYERS for unit in layer}
    assert units - layered == set(), "place the new module in LAYERS (and ARCHITECTURE.md)"
    assert layered - units == set(), "LAYERS names a unit that no longer exists"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    found = unexpected(layer_violations(IMPORTS))
    assert not found, "\n".join(found)


def read_source(module: str, source: str) -> ModuleReader:
    reader = ModuleReader(module)
    reader.visit(ast.parse(source))
    return reader


@pytest.mark.parametrize(("source", "expected"), [
    ("from k2_lakehouse.warm.seal import _rows\n", [("private-name", "_rows")]),
    ("from k2_lakehouse.warm import seal\nseal._rows()\n", [("private-name", "_rows")]),
    ("import k2_lakehouse.warm.seal\nk2_lakehouse.warm.seal._rows()\n", [("private-name", "_rows")]),
    ("import k2_lakehouse.warm.seal as s\ngetattr(s, '_rows')\n", [("private-name", "_rows")]),
    ("def f() -> None:\n    from k2_lakehouse.warm.seal import _rows\n", [("private-name", "_rows")]),
    ("from k2_lakehouse.warm._internals import rows\n", [("private-module", "_internals")]),
    ("from k2_lakehouse.warm.seal import seal_bronze\nself._x = 1\nseal_bronze._cache\n", []),
], ids=["from-import", "attribute", "dotted", "getattr", "deferred", "private-module", "public"])
def test_the_private_name_rule_catches_each_way_of_reaching_a_private_name(
        source: str, expected: list[tuple[str, str]]) -> None:
    reader = read_source("k2_lakehouse.cli", source)
    assert [(rule, name) for rule, _, _, name, _ in private_name_violations([reader])] == expected


def test_a_private_module_may_be_imported_from_inside_its_package() -> None:
    reader = read_source("k2_lakehouse.warm.seal", "from k2_lakehouse.warm._internals import rows\n")
    assert list(private_name_violations([reader])) == []


@pytest.mark.parametrize(("importer", "source", "rules"), [
    ("k2_lakehouse.warm.seal", "from k2_lakehouse.cold import offload\n", ["layer"]),
    ("k2_lakehouse.ingest.load", "from k2_lakehouse.cold.tables import cold_table\n", ["layer"]),
    ("k2_lakehouse.cold.offload", "from k2_lakehouse.warm.seal import seal_bronze\n", ["forbidden"]),
    ("k2_lakehouse.cold.offload", "from k2_lakehouse.warm.tables import TRADES_RAW\n", []),
    ("k2_lakehouse.cli", "from k2_lakehouse.definitions import defs\n", []),
], ids=["upward", "sibling", "forbidden", "downward", "top-down"])
def test_the_layer_rule_allows_only_imports_downward(importer: str, source: str, rules: list[str]) -> None:
    reader = read_source(importer, source)
    assert [rule for rule, *_ in layer_violations(reader.imports)] == rules


def test_the_cycle_finder_finds_a_cycle_through_a_deferred_import() -> None:
    deferred = Import("k2_lakehouse.b", "k2_lakehouse.a", "", 3, deferred=True, type_only=False)
    graph: Graph = {"k2_lakehouse.a": {"k2_lakehouse.b": []}, "k2_lakehouse.b": {"k2_lakehouse.a": [deferred]},
                    "k2_lakehouse.c": {"k2_lakehouse.a": []}}
    assert cycles(graph) == [["k2_lakehouse.a", "k2_lakehouse.b"]]
