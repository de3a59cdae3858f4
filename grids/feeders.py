"""Embedded feeders, loading pandapower nets from files, and feeder validation.

Embedded feeders come from :mod:`pandapower.networks`:

* ``case33bw`` -- IEEE 33-bus radial feeder of Baran & Wu (1989), 12.66 kV.
* ``cigre_mv`` -- CIGRE MV benchmark (Task Force C6.04.02, 2014) without DER, switches as given.
* ``mv_oberrhein`` -- 179-bus MV grid of the Oberrhein region (pandapower), switches as given.

Files are read as pandapower JSON only; the JSON is checked before decoding so that it can only
instantiate pandas/numpy/pandapower/shapely objects (never pickles, never arbitrary classes). The
check walks every object, including nets nested as JSON strings (with any leading whitespace),
and matches module names on dotted boundaries (``numpy`` and ``numpy.ma``, never ``numpyfoo``).
pandapower itself refuses classes outside its own allow-list since 3.5.4 (its issue 3049); this
check is the second, independent line.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grids.errors import FeederError, check_problems

if TYPE_CHECKING:  # networkx and numpy load on first use: `v2g-cosim feeders` stays fast
    import networkx as nx

DEFAULT_FEEDER = "case33bw"

#: top-level packages a pandapower JSON may instantiate objects from (the package itself or its
#: submodules: matched on dotted boundaries)
_SAFE_JSON_MODULE_PREFIXES = ("pandapower", "pandas", "numpy", "builtins", "shapely", "geopandas")

#: largest feeder JSON read [bytes]; the largest pandapower benchmark nets are a few MB
MAX_FEEDER_BYTES = 64 * 1024 * 1024


def _is_safe_module(module: str) -> bool:
    """``numpy`` and ``numpy.ma`` are safe; ``numpyfoo`` and ``os`` are not."""
    return any(
        module == root or module.startswith(root + ".") for root in _SAFE_JSON_MODULE_PREFIXES
    )


#: Modules ``import pandapower`` executes that no feeder load or power flow uses: plotting
#: (``pandapower.create`` reaches it for one number check), state estimation (scipy.stats) and
#: matplotlib's pyplot (``pandapower.control`` imports it for optional plots). Together about a
#: third of pandapower's import time, i.e. of every command's start-up.
_DEFERRED_MODULES = ("pandapower.plotting", "pandapower.estimation", "matplotlib.pyplot")


def _deferred_module(name: str):
    """A module object for ``name`` whose code runs on its first attribute access.

    Unlike :class:`importlib.util.LazyLoader` it keeps ``__path__``/``__spec__`` plain
    attributes, so submodules (``pandapower.plotting.geo``) import without running the
    package's ``__init__``. The module object is the real one: once loaded, it is exactly what
    a normal import gives (same ``sys.modules`` entry, same globals).
    """
    import importlib.machinery
    import importlib.util

    parent, _, _ = name.rpartition(".")
    root = importlib.util.find_spec(parent.partition(".")[0])  # never imports the package
    if root is None or root.submodule_search_locations is None:
        return None
    search = list(root.submodule_search_locations)
    if "." in parent:  # a module of a subpackage: its directory
        search = [str(Path(p, *parent.split(".")[1:])) for p in search]
    spec = importlib.machinery.PathFinder.find_spec(name, search)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)

    def load_on_first_use(attribute: str):
        if module.__dict__.pop("__getattr__", None) is None:  # already loading or loaded
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        spec.loader.exec_module(module)
        try:
            return module.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    module.__getattr__ = load_on_first_use  # PEP 562: called for names the module lacks
    return module


def import_pandapower():
    """Import pandapower without the parts no feeder load or power flow needs (start-up time).

    The first import in a process installs :data:`_DEFERRED_MODULES` as modules that run on
    first use (``pandapower.plotting.simple_plot``, ``plt.figure`` work as usual); an import
    of pandapower that happened earlier is left as it is.
    """
    import sys

    if "pandapower" not in sys.modules:
        installed = {}
        for name in _DEFERRED_MODULES:
            if name not in sys.modules:
                module = _deferred_module(name)
                if module is not None:
                    installed[name] = sys.modules[name] = module
        import pandapower

        for name, module in installed.items():  # `import a.b` binds a.b only when it loads it
            parent = sys.modules.get(name.rpartition(".")[0])
            if parent is not None and not hasattr(parent, name.rpartition(".")[2]):
                setattr(parent, name.rpartition(".")[2], module)
        return pandapower
    import pandapower

    return pandapower


#: ``pandapower.networks.case33bw()`` saved by ``pandapower.to_json`` at pandapower's current
#: net format (3.3.0, pandapower 3.5.6). pandapower ships the case at format 3.1.0, so every
#: load converted it (two more empty nets, a dtype pass over every table: about 0.25 s of CPU
#: per process, half of the build); a net at the current format skips the conversion. A newer
#: pandapower converts this file as it converts its own; one too old to read it falls back to
#: pandapower's case. ``tests/cosim/test_foundation_cli.py`` checks it equals pandapower's case.
CASE33BW_JSON = Path(__file__).with_name("case33bw.json")


def _case33bw():
    pp = import_pandapower()
    if CASE33BW_JSON.is_file():
        try:
            return pp.from_json(str(CASE33BW_JSON))
        except ValueError:  # "network format version ... is newer": an older pandapower
            pass
    import pandapower.networks as pn

    return pn.case33bw()


def _cigre_mv():
    import_pandapower()
    import pandapower.networks as pn

    return pn.create_cigre_network_mv(with_der=False)


def _mv_oberrhein():
    import_pandapower()
    import pandapower.networks as pn

    return pn.mv_oberrhein()


@dataclass(frozen=True)
class EmbeddedFeeder:
    """An embedded feeder: its name, a one-line description and the factory that builds it.

    ``counts`` holds the element counts listed by ``v2g-cosim feeders`` (bus, line in service,
    trafo, load, sgen, ext_grid, radial) so that listing never builds a net; a test checks them
    against the built nets.
    """

    name: str
    description: str
    factory: Callable
    counts: tuple[int, int, int, int, int, int, bool] | None = None


EMBEDDED_FEEDERS: dict[str, EmbeddedFeeder] = {
    f.name: f
    for f in (
        EmbeddedFeeder(
            "case33bw",
            "IEEE 33-bus radial feeder (Baran & Wu 1989), 12.66 kV",
            _case33bw,
            counts=(33, 32, 0, 32, 0, 1, True),
        ),
        EmbeddedFeeder(
            "cigre_mv",
            "CIGRE MV benchmark without DER (CIGRE TF C6.04.02), 20 kV",
            _cigre_mv,
            counts=(15, 15, 2, 18, 0, 1, True),
        ),
        EmbeddedFeeder(
            "mv_oberrhein",
            "Oberrhein MV grid, 179 buses, two substations, 20 kV",
            _mv_oberrhein,
            counts=(179, 181, 2, 147, 153, 2, True),
        ),
    )
}


@dataclass(frozen=True)
class FeederInfo:
    """Element counts of a feeder, as listed by ``v2g-cosim feeders``."""

    name: str
    description: str
    n_bus: int
    n_line: int
    n_trafo: int
    n_load: int
    n_sgen: int
    n_ext_grid: int
    radial: bool


def feeder_names() -> list[str]:
    """Names of the embedded feeders.

    Returns
    -------
    list of str
        In the order ``v2g-cosim feeders`` lists them.
    """
    return list(EMBEDDED_FEEDERS)


def _check_json_is_safe(path: Path, text: str) -> Any:
    """Parse the JSON and refuse any object from a module outside the allow-list.

    Every string that parses as JSON is walked too (pandapower nests tables and whole nets as
    JSON strings, and its decoder strips whitespace before parsing them). A ``_module`` that is
    not a string, or a string that cannot be parsed but names ``_module``, is refused: the
    check must never be weaker than the decoder.

    Returns
    -------
    The parsed document.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeederError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    except RecursionError:
        raise FeederError(f"{path}: JSON nested too deeply to be a pandapower net") from None
    bad: set[str] = set()
    stack = [document]
    while stack:  # iterative: a deeply nested document cannot exhaust the Python stack
        node = stack.pop()
        if isinstance(node, dict):
            if "_module" in node:
                module = node["_module"]
                if not isinstance(module, str) or not _is_safe_module(module):
                    bad.add(repr(module) if not isinstance(module, str) else module)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and "_module" in node:
            try:  # json.loads itself skips leading whitespace, as pandapower's decoder does
                stack.append(json.loads(node))
            except (json.JSONDecodeError, RecursionError):
                if '"_module"' in node:
                    bad.add("(a nested JSON string naming _module that cannot be checked)")
    if bad:
        raise FeederError(
            f"{path}: refusing to load a pandapower JSON that would instantiate objects from "
            f"untrusted modules: {', '.join(sorted(bad))}"
        )
    return document


#: embedded nets as their factories built them, by name (copied out by :func:`load_feeder`)
_EMBEDDED_NETS: dict[str, Any] = {}


def load_feeder(name_or_path: str | Path, *, require_radial: bool = False, validate: bool = True):
    """Load an embedded feeder or a SimBench grid by name, or a pandapower JSON file by path.

    Parameters
    ----------
    name_or_path : str or path
        An embedded feeder name (see :func:`feeder_names`), ``simbench:<code>`` (a SimBench
        grid with its profiles in ``net.profiles``, see :mod:`grids.simbench`) or a path to a
        pandapower JSON file.
    require_radial : bool, keyword-only
        Also require a radial topology (for LinDistFlow and other radial methods).
    validate : bool, keyword-only
        Run :func:`validate_feeder` (default). Every problem is reported at once.

    Returns
    -------
    pandapowerNet

    Raises
    ------
    FeederError
        Unknown name, missing or unreadable file, or a feeder that fails validation.
    """
    if isinstance(name_or_path, str | Path) and str(name_or_path).strip() == "":
        raise FeederError(
            f"feeder '': give an embedded feeder ({', '.join(feeder_names())}) or a JSON path"
        )
    key = str(name_or_path)
    if key.startswith("simbench:"):  # a SimBench grid with its year-long profiles
        from grids.simbench import load_simbench_net

        net = load_simbench_net(key)
    elif key in EMBEDDED_FEEDERS:
        built = _EMBEDDED_NETS.get(key)
        if built is None:  # pandapower builds it from JSON (about 0.4 s): once per process
            built = _EMBEDDED_NETS[key] = EMBEDDED_FEEDERS[key].factory()
            built.name = key
        net = copy.deepcopy(built)  # callers change their net (loads, outages); never ours
    else:
        path = Path(key)
        if path.suffix.lower() in {".p", ".pkl", ".pickle"}:
            raise FeederError(
                f"{path}: pickle files are never loaded (they can run arbitrary code); "
                "save the net with pandapower.to_json and pass the .json file"
            )
        if not path.exists():
            raise FeederError(
                f"feeder {key!r} is neither an embedded feeder "
                f"({', '.join(feeder_names())}) nor an existing pandapower JSON file"
            )
        if path.suffix.lower() != ".json":
            raise FeederError(
                f"{path}: expected a pandapower JSON file (.json), got {path.suffix!r}"
            )
        net = _read_net_file(path)
    if validate:
        validate_feeder(net, require_radial=require_radial, label=str(net.name or key))
    return net


def _read_net_file(path: Path):
    """Read a pandapower JSON file: size, encoding, safety and shape checked first."""
    if path.is_dir():
        raise FeederError(f"{path}: is a directory, not a pandapower JSON file")
    if not path.is_file():
        raise FeederError(f"{path}: is a device or special file, not a pandapower JSON file")
    size = path.stat().st_size
    if size > MAX_FEEDER_BYTES:
        raise FeederError(
            f"{path}: {size / 2**20:.0f} MiB is larger than the limit of "
            f"{MAX_FEEDER_BYTES / 2**20:.0f} MiB for a feeder file"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FeederError(
            f"{path}: not a pandapower JSON file (not UTF-8 text: byte 0x{data[error.start]:02x} "
            f"at offset {error.start})"
        ) from None
    document = _check_json_is_safe(path, text)
    if not (
        isinstance(document, dict)
        and document.get("_class") == "pandapowerNet"
        and isinstance(document.get("_object"), dict | str)
    ):
        found = (
            f"an object with keys {', '.join(sorted(map(str, document))[:6])}"
            if isinstance(document, dict)
            else f"a JSON {type(document).__name__}"
        )
        raise FeederError(
            f"{path}: not a pandapower net (expected the output of pandapower.to_json, an "
            f'object with "_class": "pandapowerNet"; found {found})'
        )
    pp = import_pandapower()
    try:
        net = pp.from_json_string(text)
    except Exception as error:  # pandapower raises many types for malformed nets
        raise FeederError(f"{path}: not a readable pandapower net: {error}") from None
    if not hasattr(net, "bus") or not hasattr(net, "ext_grid"):
        raise FeederError(f"{path}: not a pandapower net (no bus or ext_grid table)")
    if not net.name:
        net.name = path.stem
    return net


def topology_graph(net) -> nx.Graph:
    """Undirected graph of in-service buses and branches, respecting open switches.

    Parallel branches become one edge with attribute ``n_parallel`` so that meshing through
    parallel lines is still visible to :func:`is_radial`.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    networkx.Graph
        Nodes: pandapower bus indices; edges: lines, transformers and closed bus-bus switches
        (attribute ``n_parallel``: how many branches join the two buses).
    """
    import networkx as nx
    import pandapower.topology as top

    multigraph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    graph = nx.Graph()
    graph.add_nodes_from(multigraph.nodes)
    for u, v in multigraph.edges():
        if graph.has_edge(u, v):
            graph[u][v]["n_parallel"] += 1
        else:
            graph.add_edge(u, v, n_parallel=1)
    return graph


def is_radial(net) -> bool:
    """Whether the in-service topology (open switches respected) has no loop.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    bool
        ``True`` for a radial feeder (a forest, no parallel branches).
    """
    import networkx as nx

    graph = topology_graph(net)
    if any(d["n_parallel"] > 1 for _, _, d in graph.edges(data=True)):
        return False
    return nx.is_forest(graph)


def _bad_values(table, column: str, *, allow_zero: bool) -> list[tuple[int, float]]:
    import numpy as np

    if column not in table or len(table) == 0:
        return []
    values = table[column].to_numpy(dtype=float)
    bad = np.isnan(values) | (values < 0 if allow_zero else values <= 0)
    return [(int(i), float(v)) for i, v in zip(table.index[bad], values[bad], strict=True)]


def validate_feeder(net, *, require_radial: bool = False, label: str = "feeder") -> None:
    """Check a pandapower net and raise one :class:`FeederError` listing every problem.

    Checks: at least one in-service external grid; no in-service bus without a path to an
    external grid (isolated); line ratings and impedances and transformer ratings finite and
    positive; loads finite; and, if ``require_radial``, a radial topology.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    require_radial : bool, keyword-only
        Also require a radial topology.
    label : str, keyword-only
        Name of the feeder in the message.

    Raises
    ------
    FeederError
        Listing every problem found.
    """
    import networkx as nx
    import numpy as np

    problems: list[str] = []
    if len(net.bus) == 0:
        problems.append("the net has no buses")
    ext = net.ext_grid[net.ext_grid.in_service] if len(net.ext_grid) else net.ext_grid
    if len(ext) == 0:
        problems.append("no in-service external grid (ext_grid): nothing sets the slack voltage")
    for column, allow_zero in (
        ("max_i_ka", False),
        ("r_ohm_per_km", True),
        ("x_ohm_per_km", True),
        ("length_km", False),
    ):
        for idx, value in _bad_values(net.line, column, allow_zero=allow_zero):
            expected = ">= 0" if allow_zero else "> 0"
            problems.append(f"line {idx}: {column} = {value} (expected a finite value {expected})")
    for column in ("sn_mva", "vk_percent"):
        for idx, value in _bad_values(net.trafo, column, allow_zero=False):
            problems.append(f"trafo {idx}: {column} = {value} (expected a finite value > 0)")
    for table_name in ("load", "sgen"):
        table = net[table_name]
        for column in ("p_mw", "q_mvar"):
            if column in table and len(table):
                values = table[column].to_numpy(dtype=float)
                for idx in table.index[~np.isfinite(values)]:
                    problems.append(f"{table_name} {idx}: {column} is NaN or infinite")
    if len(ext) and len(net.bus):
        graph = topology_graph(net)
        in_service = set(net.bus.index[net.bus.in_service])
        supplied: set = set()
        for slack in ext.bus:
            if slack in graph:
                supplied |= nx.node_connected_component(graph, slack)
        isolated = sorted(in_service - supplied)
        if isolated:
            shown = ", ".join(str(b) for b in isolated[:20])
            more = f" and {len(isolated) - 20} more" if len(isolated) > 20 else ""
            problems.append(
                f"{len(isolated)} in-service bus(es) have no path to an external grid "
                f"(isolated): {shown}{more}"
            )
        if require_radial and not is_radial(net):
            cycles = nx.cycle_basis(graph)
            detail = f"; e.g. loop through buses {sorted(cycles[0])}" if cycles else ""
            problems.append(
                "topology is not radial (a radial method was asked for): "
                f"{len(cycles)} independent loop(s){detail}"
            )
    check_problems(problems, FeederError, f"{label}: invalid feeder")


def feeder_info(name: str, *, build: bool = False) -> FeederInfo:
    """Element counts of an embedded feeder.

    Parameters
    ----------
    name : str
        An embedded feeder name.
    build : bool, keyword-only
        Count on the built net instead of the stored counts (slow: builds the net).

    Returns
    -------
    FeederInfo
        Name, description and element counts.
    """
    feeder = EMBEDDED_FEEDERS.get(name)
    if feeder is None:
        raise FeederError(f"feeder {name!r} is not embedded ({', '.join(feeder_names())})")
    if feeder.counts is not None and not build:
        n_bus, n_line, n_trafo, n_load, n_sgen, n_ext, radial = feeder.counts
        return FeederInfo(
            name=name,
            description=feeder.description,
            n_bus=n_bus,
            n_line=n_line,
            n_trafo=n_trafo,
            n_load=n_load,
            n_sgen=n_sgen,
            n_ext_grid=n_ext,
            radial=radial,
        )
    net = load_feeder(name, validate=False)
    return FeederInfo(
        name=name,
        description=EMBEDDED_FEEDERS[name].description,
        n_bus=len(net.bus),
        n_line=int(net.line.in_service.sum()),
        n_trafo=len(net.trafo),
        n_load=len(net.load),
        n_sgen=len(net.sgen),
        n_ext_grid=len(net.ext_grid),
        radial=is_radial(net),
    )
