"""Where imports go (issue 13): at the module top, unless they defer something heavy.

An import inside a function is allowed only when it defers a heavy or optional library (listed
below with the reason) or carries a ``# lazy: <reason>`` comment on its own line or the line
above (a project module that is itself heavy to import, such as the per-study dispatch of a
sweep). Everything else belongs at the module top, where the import graph shows it.

The start-up guarantee of the command line: importing :mod:`cosim.cli` and building its parser
(what ``v2g-cosim --help`` does), and listing the feeders, load none of the heavy libraries.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Libraries that may be imported inside a function, and why (import cost measured with
#: ``python -X importtime`` on the development machine).
HEAVY_LIBRARIES = {
    "pandapower": "~2 s; grids.powerflow and grids.feeder_model are on the CLI start-up path",
    "mosaik": "~0.2 s and an event loop; only where a world is built",
    "matplotlib": "~0.25 s plus a backend; only where a figure is drawn",
    "dask": "~1 s; only for a sweep sent to a Dask scheduler",
    "distributed": "~1 s; only for a sweep sent to a Dask scheduler",
    "h5py": "~0.15 s; only the results format a run writes or reads is loaded",
    "pyarrow": "~0.15 s; only the results format a run writes or reads is loaded",
    "pandas": "~0.3 s; kept out of the scenario loader, the sweep store and resilience metrics",
    "networkx": "~0.13 s; only where a feeder layout is drawn",
}

#: The modules this policy covers (the ones whose imports were sorted out under issue 13).
POLICY_MODULES = [
    *(p for p in (ROOT / "grids").glob("*.py") if p.name != "feeders.py"),
    *(p for p in (ROOT / "vehicle_models").glob("*.py") if p.name != "settings.py"),
    *(
        ROOT / "studies" / name
        for name in (
            "sweep.py",
            "sweep_spec.py",
            "sweep_store.py",
            "sweep_run.py",
            "sweep_report.py",
            "report.py",
            "demo_report.py",
            "resilience.py",
            "cold_load_pickup.py",
        )
    ),
    *(ROOT / "studies").glob("hosting_capacity*.py"),
    *(
        ROOT / "cosim" / name
        for name in ("results.py", "world.py", "violations.py", "profiles.py", "attributes.py")
    ),
    *(p for p in (ROOT / "cosim" / "simulators").glob("*.py") if p.name != "fleet.py"),
]


def _imported_roots(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [(node.module or "").split(".")[0]]
    return [alias.name.split(".")[0] for alias in node.names]


def _function_imports(path: Path):
    """(line, source line, node) of every import inside a function of ``path``."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for function in ast.walk(ast.parse(text)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node.lineno, lines, node


def _annotated(lines: list[str], lineno: int) -> bool:
    here = lines[lineno - 1]
    above = lines[lineno - 2].strip() if lineno >= 2 else ""
    return "# lazy:" in here or above.startswith("# lazy:")


def test_policy_modules_exist():
    missing = [str(p.relative_to(ROOT)) for p in POLICY_MODULES if not p.exists()]
    assert missing == []
    assert len(POLICY_MODULES) > 40


def test_imports_inside_functions_defer_a_heavy_library_or_say_why():
    offenders = set()
    for path in POLICY_MODULES:
        for lineno, lines, node in _function_imports(path):
            if all(root in HEAVY_LIBRARIES for root in _imported_roots(node)):
                continue
            if _annotated(lines, lineno):
                continue
            offenders.add(f"{path.relative_to(ROOT)}:{lineno}: {lines[lineno - 1].strip()}")
    assert sorted(offenders) == [], (
        "move these imports to the module top, or say why they are deferred with a "
        "'# lazy: <reason>' comment on the line above"
    )


def test_the_policy_check_sees_a_habitual_import(tmp_path):
    """The check itself: a light import inside a function is found, a heavy or annotated one
    is not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n"
        "    import json\n"
        "    import pandapower as pp\n"
        "    # lazy: the study is heavy\n"
        "    from studies.black_start import METRIC_KEYS\n"
        "    return json, pp, METRIC_KEYS\n"
    )
    flagged = [
        lineno
        for lineno, lines, node in _function_imports(sample)
        if not all(root in HEAVY_LIBRARIES for root in _imported_roots(node))
        and not _annotated(lines, lineno)
    ]
    assert flagged == [2]


_STARTUP_PROBE = """
import contextlib, io, json, sys
import cosim.cli

cosim.cli.build_parser()
after_parser = sorted(m for m in HEAVY if m in sys.modules)
with contextlib.redirect_stdout(io.StringIO()):
    status = cosim.cli.main(["feeders"])
after_feeders = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"parser": after_parser, "feeders": after_feeders, "status": status}))
"""


def test_cli_start_up_imports_no_heavy_library():
    """``v2g-cosim --help`` and ``v2g-cosim feeders`` start without pandapower, mosaik,
    matplotlib, dask or the optional extras opendssdirect and simbench (each would add
    0.2-2 s to a command that should answer at once)."""
    heavy = (
        "pandapower",
        "mosaik",
        "matplotlib",
        "dask",
        "distributed",
        "opendssdirect",  # the optional extras: only where an OpenDSS or SimBench feeder loads
        "simbench",
    )
    probe = f"HEAVY = {heavy!r}\n" + _STARTUP_PROBE
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"parser": [], "feeders": [], "status": 0}
