"""Bus names as written in an OpenDSS model's files.

OpenDSS stores every bus name in lower case (``SourceBus`` becomes ``sourcebus``), so the
names the engine reads back through opendssdirect are lower case. Reports and the
``powerflow --json`` contract name buses as the user wrote them: this module reads the model's
text files (the master file and every file it pulls in with ``Redirect``/``Compile``, and its
``BusCoords`` files) and maps each lower-case name to its first spelling.

The files are read as text, never executed: only the bus properties (``bus1=``, ``bus2=``,
``bus=``, ``buses=[...]``) and the first column of bus-coordinate files are looked at.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Most files followed from one master file (Redirect/Compile/BusCoords), against cycles and
#: runaway models.
MAX_FILES = 500
#: Largest file read [bytes]; bigger files (e.g. long load shapes) are skipped.
MAX_FILE_BYTES = 64 * 1024 * 1024

_COMMENT = re.compile(r"(!|//).*$")
_FOLLOW = re.compile(r"^\s*(redirect|compile|buscoords|latlongcoords)\s+(.+?)\s*$", re.I)
_BUS = re.compile(r"\bbus[12]?\s*=\s*([\"']?)([^\s\"',\]\)]+)\1", re.I)
_BUSES = re.compile(r"\bbuses\s*=\s*[\[\(\"']([^\]\)\"']*)", re.I)
_COORD_NAME = re.compile(r"^\s*([^\s,]+)")


def _bus_part(token: str) -> str:
    """``'671.1.2'`` -> ``'671'`` (the node list after the first dot is not the name)."""
    return token.split(".", 1)[0].strip()


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'([":
        return text[1:-1].strip()
    return text.strip("\"'()[]")


def bus_spellings(master: str | Path) -> dict[str, str]:
    """Map each bus name in lower case to its spelling in the model's files.

    Parameters
    ----------
    master : str or path
        The OpenDSS master file (``.dss``).

    Returns
    -------
    dict of str to str
        ``{lower-case name: first spelling found}``; buses whose names appear in no file read
        (e.g. built by a script) are absent, and the caller keeps OpenDSS's name for them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> text = "New Circuit.c bus1=SourceBus\\nNew Line.l Bus1=SourceBus Bus2=Node_7.1\\n"
    >>> _ = (d / "m.dss").write_text(text)
    >>> bus_spellings(d / "m.dss")
    {'sourcebus': 'SourceBus', 'node_7': 'Node_7'}
    """
    spellings: dict[str, str] = {}
    seen: set[Path] = set()
    pending: list[tuple[Path, bool]] = [(Path(master), False)]
    while pending and len(seen) < MAX_FILES:
        path, coords = pending.pop(0)
        try:
            path = path.resolve()
        except OSError:
            continue
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            line = _COMMENT.sub("", raw)
            if not line.strip():
                continue
            if coords:
                match = _COORD_NAME.match(line)
                if match:
                    spellings.setdefault(match.group(1).lower(), match.group(1))
                continue
            follow = _FOLLOW.match(line)
            if follow:
                kind, target = follow.group(1).lower(), _unquote(follow.group(2))
                if target:
                    pending.append((path.parent / target, kind in ("buscoords", "latlongcoords")))
                continue
            for match in _BUS.finditer(line):
                name = _bus_part(match.group(2))
                if name:
                    spellings.setdefault(name.lower(), name)
            for match in _BUSES.finditer(line):
                for token in re.split(r"[\s,]+", match.group(1)):
                    name = _bus_part(token.strip("\"'"))
                    if name:
                        spellings.setdefault(name.lower(), name)
    return spellings
