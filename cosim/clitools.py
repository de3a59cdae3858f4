"""Small helpers shared by the CLI sub-commands: JSON output and plain-text tables."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and enums (recursively) to JSON-ready values.

    Non-finite floats become ``None`` so the output is strict JSON.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "value") and hasattr(obj, "name"):  # Enum
        return obj.value
    return obj


def emit_json(obj: Any) -> None:
    """Print ``obj`` as strict JSON on stdout."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Render rows as an aligned plain-text table (floats with 4 significant decimals)."""

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{float(v):.4f}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in text]
    return "\n".join(out)


def add_json_flag(parser: Any) -> None:
    """Add the common ``--json`` flag."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


# ---------------------------------------------------------------------------------------------
# output checks: every command with --out / --plot calls these BEFORE any computation, so a bad
# destination is one message at once, not a traceback (or a lost result) after a long run


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_parent_writable(path: Path, option: str) -> None:
    """The closest existing ancestor of ``path`` must be a writable directory."""
    import os

    from grids.errors import ScenarioError

    probe = path.parent
    # every existing component must be a directory (a file in the middle: ENOTDIR)
    for ancestor in [probe, *probe.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise ScenarioError(f"{option} {path}: {ancestor} is not a directory")
    existing = _nearest_existing(probe)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ScenarioError(f"{option} {path}: permission denied (cannot write in {existing})")


def check_output_dir(path: str | Path | None, *, option: str = "--out") -> Path | None:
    """Check an output directory before any work: creatable or an existing writable directory.

    Parameters
    ----------
    path : path or None
        The directory (None: nothing to check).
    option : str, keyword-only
        The option's name, for the message.

    Returns
    -------
    Path or None

    Raises
    ------
    ScenarioError
        ``path`` is an existing file or device, has a file as an ancestor, or cannot be written.
    """
    import os

    from grids.errors import ScenarioError

    if path is None:
        return None
    out = Path(path)
    if str(path).strip() == "":
        raise ScenarioError(f"{option}: an empty path is not a directory")
    if out.exists():
        if not out.is_dir():
            kind = "a file" if out.is_file() else "a device or special file"
            raise ScenarioError(
                f"{option} {out}: exists and is {kind}, not a directory; give a directory"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise ScenarioError(f"{option} {out}: permission denied (directory not writable)")
        return out
    _check_parent_writable(out, option)
    return out


def plot_formats() -> dict[str, str]:
    """File extensions matplotlib can write (without the dot) -> description."""
    from matplotlib.backend_bases import FigureCanvasBase

    return dict(FigureCanvasBase.get_supported_filetypes())


def check_output_file(
    path: str | Path | None, *, option: str = "--plot", formats: dict[str, str] | None = None
) -> Path | None:
    """Check a file to be written before any work (its extension against ``formats``).

    Parameters
    ----------
    path : path or None
        The file (None: nothing to check).
    option : str, keyword-only
        The option's name, for the message.
    formats : dict, optional, keyword-only
        Accepted extensions (no dot); default: the figure formats matplotlib can write.

    Raises
    ------
    ScenarioError
        Unsupported or missing extension, a directory or device in its place, an ancestor
        that is a file, or a directory that cannot be written.
    """
    from grids.errors import ScenarioError

    if path is None:
        return None
    out = Path(path)
    accepted = plot_formats() if formats is None else formats
    suffix = out.suffix.lower().lstrip(".")
    if out.exists() and out.is_dir():
        raise ScenarioError(f"{option} {out}: is a directory; give a file name")
    if out.exists() and not out.is_file():
        raise ScenarioError(f"{option} {out}: is a device or special file, not a regular file")
    if suffix not in accepted:
        raise ScenarioError(
            f"{option} {out}: unsupported file type {out.suffix or '(no extension)'!r}; "
            f"use one of {', '.join('.' + k for k in sorted(accepted))}"
        )
    import os

    if out.exists() and not os.access(out, os.W_OK):
        raise ScenarioError(f"{option} {out}: permission denied (file not writable)")
    _check_parent_writable(out, option)
    return out


# ---------------------------------------------------------------------------------------------
# bounds on inputs that decide memory and time: checked up front, the message states the limit


#: largest input file read whole into memory (profiles, curves, settings, feeders) [bytes]
MAX_INPUT_BYTES = 256 * 1024 * 1024


def check_input_file(path: str | Path, *, what: str, max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """A readable regular file no larger than ``max_bytes`` (checked before reading it).

    Raises
    ------
    InputDataError
        Missing, a directory, a device or pipe (``/dev/zero`` never ends), unreadable or too
        large (the message states the limit).
    """
    import os

    from grids.errors import InputDataError

    p = Path(path)
    if not p.exists():
        raise InputDataError(f"{what} {p}: no such file")
    if p.is_dir():
        raise InputDataError(f"{what} {p}: is a directory, not a file")
    if not p.is_file():
        raise InputDataError(f"{what} {p}: is a device or special file, not a regular file")
    if not os.access(p, os.R_OK):
        raise InputDataError(f"{what} {p}: permission denied (file not readable)")
    size = p.stat().st_size
    if size > max_bytes:
        raise InputDataError(
            f"{what} {p}: {size / 2**20:.0f} MiB is larger than the limit of "
            f"{max_bytes / 2**20:.0f} MiB for an input file"
        )
    return p


# ---------------------------------------------------------------------------------------------
# elapsed time for commands without their own progress bar


class Heartbeat:
    """Show that a long command is alive: elapsed time on stderr, never on stdout.

    On a terminal a status line ``NAME: 5 s elapsed`` is refreshed every second once
    ``after_s`` has passed; at the end ``NAME: done in 12.3 s`` is printed when the command took
    longer than ``after_s`` (on a terminal or not).
    """

    def __init__(self, name: str, *, after_s: float = 2.0, stream: Any = None) -> None:
        import threading

        self.name = name
        self.after_s = after_s
        self.stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._live = False
        self._saved: tuple[Any, Any] | None = None
        self._proxies: list[Any] = []

    def _is_tty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def _beat(self) -> None:
        import time

        if self._stop.wait(self.after_s):
            return
        while not self._stop.is_set():
            try:
                self.stream.write(f"\r{self.name}: {time.perf_counter() - self._t0:.0f} s elapsed")
                self.stream.flush()
                self._live = True
            except (OSError, ValueError):
                return
            self._stop.wait(1.0)

    def __enter__(self) -> Heartbeat:
        import threading
        import time

        self._t0 = time.perf_counter()
        if self._is_tty():
            # the first thing the command prints ends the status line (no text glued to it)
            self._saved = (sys.stdout, sys.stderr)
            # the proxies stay referenced until __exit__: print() holds a borrowed reference to
            # sys.stdout while it writes, and stop() (called from that write) swaps it back
            self._proxies = [_StopOnWrite(sys.stdout, self), _StopOnWrite(sys.stderr, self)]
            sys.stdout, sys.stderr = self._proxies
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> float:
        """Stop the status line (clears it); returns the elapsed seconds."""
        import time

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        if self._live:
            try:
                self.stream.write("\r\033[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._live = False
        return time.perf_counter() - self._t0

    def __exit__(self, exc_type, exc, tb) -> None:
        elapsed = self.stop()
        self._proxies = []
        if exc_type is None and elapsed > self.after_s:
            with contextlib.suppress(OSError, ValueError):
                print(f"{self.name}: done in {elapsed:.1f} s", file=self.stream)


def check_text_file(path: str | Path, *, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """Read a UTF-8 text input (TOML, CSV) after :func:`check_input_file`; return its text.

    Raises
    ------
    InputDataError
        As :func:`check_input_file`, or the bytes are not UTF-8 text (a binary file): the
        message names the file and the first bad byte.
    """
    from grids.errors import InputDataError

    p = check_input_file(path, what=what, max_bytes=max_bytes)
    data = p.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputDataError(
            f"{what} {p}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); expected a text file"
        ) from None


_FILE_KEY_SUFFIXES = ("profile", "_file", "_path", "table", "_csv", "scenario", "base")


def check_referenced_files(toml_text: str, *, base_dir: str | Path, what: str) -> None:
    """Apply :func:`check_input_file` to the files a TOML document names, before it is loaded.

    Every string value under a key that names a file (``*profile``, ``*_file``, ``*_path``,
    ``*table``, ``*_csv``, ``scenario``, ``base``) and that points at an existing path
    (relative to ``base_dir``) must be a regular file within the size limit: a profile that is
    ``/dev/zero`` or a named pipe would otherwise be read forever. Unparseable TOML is left to
    the loader, which reports it with its line.
    """
    import tomllib

    try:
        document = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError:
        return
    base = Path(base_dir)
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{key}.{i}", v) for i, v in enumerate(node))
        elif isinstance(node, str) and key.rsplit(".", 1)[-1].lower().endswith(_FILE_KEY_SUFFIXES):
            if not node.strip() or "\0" in node:
                continue
            candidate = Path(node) if Path(node).is_absolute() else base / node
            try:
                exists = candidate.exists()
            except (OSError, ValueError):
                continue
            if exists:
                check_input_file(candidate, what=f"{what} {key}:")


class _StopOnWrite:
    """A stream proxy that stops a :class:`Heartbeat` before the first write passes through."""

    def __init__(self, stream: Any, heartbeat: Heartbeat) -> None:
        self._stream = stream
        self._heartbeat = heartbeat

    def write(self, text: str) -> int:
        self._heartbeat.stop()
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# ---------------------------------------------------------------------------------------------
# study sections of a scenario file

#: Study modules that declare their own scenario sections (``cosim.scenario.register_section``
#: at import): ``[contingency]`` and ``[black_start]``.
STUDY_SECTION_MODULES = ("studies.contingency_scenario", "studies.black_start")


def register_study_sections() -> None:
    """Import the study modules that own scenario sections, so that they are registered.

    Called by the commands that validate a scenario file (``run``, ``sweep``) before they
    validate it, not at start-up (the study modules pull in pandas and the fleet models).
    """
    import importlib

    for name in STUDY_SECTION_MODULES:
        importlib.import_module(name)


# ---------------------------------------------------------------------------------------------
# broken limits: the first lines of every command's text output


def violation_lines(violations: Sequence[Any], limits_not_checked: Sequence[str] = ()) -> list[str]:
    """One line per broken limit (``Violation`` or its ``to_dict()`` form), then one per limit
    that could not be checked."""
    from grids.limits import Violation

    lines = []
    for item in violations:
        violation = Violation(**item) if isinstance(item, dict) else item
        lines.append(violation.describe())
    return lines + [str(text) for text in limits_not_checked]


def print_violations(violations: Sequence[Any], limits_not_checked: Sequence[str] = ()) -> None:
    """Print :func:`violation_lines` and a blank line (nothing when there is nothing to say)."""
    lines = violation_lines(violations, limits_not_checked)
    for line in lines:
        print(line)
    if lines:
        print()
