"""The house rules of DESIGN.md "Layers" that import-linter cannot state.

- every module of ``cosim/`` is named in one layer of the layering contract (a module left out
  would be unconstrained);
- no module imports another module's private names (``from x import _name``);
- no import inside a package runs in a circle (checked with the import graph import-linter
  builds, ``grimp``).
"""

from __future__ import annotations

import ast
import pkgutil
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grids", "vehicle_models", "cosim", "studies")


def _layer_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    names: set[str] = set()
    for layer in layers:
        for part in layer.replace("|", ":").split(":"):
            names.add(part.strip())
    return names


def _modules(package: str) -> list[str]:
    path = ROOT / package
    return [
        f"{package}.{info.name}"
        for info in pkgutil.walk_packages([str(path)])
        if "." not in info.name  # top-level modules and subpackages of the package
    ]


def test_every_cosim_module_is_in_a_layer():
    named = _layer_modules()
    missing = [m for m in _modules("cosim") if m not in named]
    assert missing == [], f"add these to the layering contract in pyproject.toml: {missing}"


def _python_files():
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    assert offenders == []


def test_no_import_circles():
    graph = grimp.build_graph(*PACKAGES)
    circles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a module that its own import reaches back: a circle through ``imported``
            if imported != module and graph.chain_exists(imported=module, importer=imported):
                circles.add(tuple(sorted((module, imported))))
    assert sorted(circles) == []
