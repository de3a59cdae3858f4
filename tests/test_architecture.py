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


def _public_functions(package: str):
    """(path, line, qualified name, docstring, has parameters, returns a value) per public
    function and method of a package (properties and setters excluded)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        stack = [(node, None) for node in tree.body]
        while stack:
            node, owner = stack.pop()
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                stack.extend((child, node.name) for child in node.body)
                continue
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            decorators = {getattr(d, "id", getattr(d, "attr", "")) for d in node.decorator_list}
            if decorators & {"property", "setter", "overload"}:
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            has_parameters = any(a.arg not in ("self", "cls") for a in arguments)
            returns = node.returns is not None and not (
                isinstance(node.returns, ast.Constant) and node.returns.value is None
            )
            name = f"{owner}.{node.name}" if owner else node.name
            yield path, node.lineno, name, ast.get_docstring(node) or "", has_parameters, returns


def test_physics_functions_have_numpydoc_parameters_and_returns():
    """Every public function of grids/ and vehicle_models/ documents its parameters (with
    units) and what it returns, in numpydoc sections (DESIGN.md "Style")."""
    missing = []
    for package in ("grids", "vehicle_models"):
        for path, line, name, doc, has_parameters, returns in _public_functions(package):
            lacks = []
            if not doc:
                lacks.append("docstring")
            else:
                if has_parameters and "Parameters\n" not in doc:
                    lacks.append("Parameters")
                if returns and "Returns\n" not in doc and "Yields\n" not in doc:
                    lacks.append("Returns")
            if lacks:
                missing.append(f"{path.relative_to(ROOT)}:{line} {name}: {', '.join(lacks)}")
    assert missing == []
