"""Incremental results files (HDF5 or Parquet) with run metadata, and reading them back.

Results are stored in long ("tidy") form, one row per recorded value:

==========  =======  ==================================================================
column      type     meaning
==========  =======  ==================================================================
``t_s``     float64  simulated time since the start [s]
``signal``  str      ``"<entity full id>.<attribute>"``, or ``"...<attribute>[<key>]"``
                     for per-bus attributes (the key is the pandapower bus index)
``value``   float64  the value, in the unit named by the attribute's suffix
==========  =======  ==================================================================

Rows are buffered and appended every ``flush_every`` rows.

**A failed run never touches an earlier complete results file.** A run writes to a partial
file next to the results file, ``<stem>.partial<suffix>`` (:func:`partial_path`:
``results.partial.h5`` for ``results.h5``), and only a run that reaches its end moves it into
place (one atomic :func:`os.replace` in the same folder). A run that fails or is interrupted
leaves the earlier ``results.h5`` as it was and its own rows, up to the last flush, readable in
``results.partial.h5``; :func:`read_results` on the results path reads the partial file (with a
warning) only when there is no complete file. A write error (a full disk, ``ENOSPC``) stops the
run with a :class:`~grids.errors.SimulationError` that says so; the partial file is cut back to
the last complete flush, or removed if even that is not possible.

Formats:

* **HDF5** (default, via ``h5py``): resizable datasets ``/t_s``, ``/signal_id``, ``/value``
  plus ``/signals`` (the names); the file is flushed after every append, so a crash loses at
  most the rows of the last flush interval. Metadata (scenario, versions, seed) are file
  attributes (``metadata`` as JSON).
* **Parquet** (via ``pyarrow``): a Parquet file is only readable once its footer is written,
  so every flush writes one complete part file ``<name>.parts/part-000000.parquet``, ... (to a
  temporary name, then renamed: a part is whole or absent). On close (normal end, error or
  Ctrl-C) the parts are streamed into the one results file (one row group per part) and
  removed. After a hard kill the parts stay: :func:`read_results` on the results path reads
  them (with a warning), so a crash loses at most the rows of the last flush interval here too.
  Metadata are in the schema's key-value metadata of the file and of every part.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import InputDataError, SimulationError

# h5py and pyarrow are imported where a file of that format is written or read: a run loads
# only the backend it uses (each costs ~0.15 s to import), and importing this module stays cheap.

SUFFIX = {"hdf5": ".h5", "parquet": ".parquet"}
_HOLE = -1.0e308  # marks a recorded NaN while forward-filling (see :func:`wide`)


def run_metadata(scenario_raw: Mapping[str, Any], *, seed: int, extra: Mapping | None = None):
    """Metadata stored with every results file: scenario, seed, versions, creation time."""

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    meta = {
        "scenario": scenario_raw,
        "seed": int(seed),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "v2g-cosim": version("v2g-cosim"),
            "mosaik": version("mosaik"),
            "mosaik-api-v3": version("mosaik-api-v3"),
            "numpy": version("numpy"),
            "pandas": version("pandas"),
            "pandapower": version("pandapower"),
            "python": platform.python_version(),
        },
    }
    if extra:
        meta.update(extra)
    return meta


class ResultsWriter:
    """Append ``(t_s, signal, value)`` rows to one results file, flushing every N rows.

    Parameters
    ----------
    path : path
        Results file (``.h5`` or ``.parquet``; the format follows ``fmt``).
    metadata : mapping
        JSON-serializable metadata stored with the results.
    fmt : {"hdf5", "parquet"}, keyword-only
    flush_every : int, keyword-only
        Rows buffered before they are written (and the file flushed).
    """

    def __init__(
        self, path: str | Path, metadata: Mapping, *, fmt: str = "hdf5", flush_every: int = 10_000
    ) -> None:
        if fmt not in SUFFIX:
            raise SimulationError(f"output.format: {fmt!r} is not 'hdf5' or 'parquet'")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.flush_every = max(1, int(flush_every))
        self.metadata_json = json.dumps(metadata, default=str)
        self._signals: dict[str, int] = {}
        self._t: list[float] = []
        self._sid: list[int] = []
        self._v: list[float] = []
        self.rows_written = 0
        self.closed = False
        self.committed = False
        #: a write failed: the rows stay in the partial file, which is never committed
        self.failed = False
        self._h5 = None
        self._n_parts = 0
        # rows are written to the partial file; the results file is only replaced on commit
        self.partial_path = partial_path(self.path)
        # a new run starts clean: the partial file and the parts an earlier crash left
        self.partial_path.unlink(missing_ok=True)
        shutil.rmtree(parts_dir(self.partial_path), ignore_errors=True)
        try:
            if fmt == "hdf5":
                self._open_hdf5()
        except OSError as error:
            raise SimulationError(_write_error_text(self.partial_path, error)) from None

    # -- public API ---------------------------------------------------------------------------
    def signal_id(self, name: str) -> int:
        """Integer id of a signal name (registered on first use)."""
        sid = self._signals.get(name)
        if sid is None:
            sid = self._signals[name] = len(self._signals)
        return sid

    def append(self, t_s: float, signal: str, value: float) -> None:
        """Buffer one value; writes when the buffer holds ``flush_every`` rows."""
        self._t.append(t_s)
        self._sid.append(self.signal_id(signal))
        self._v.append(value)
        if len(self._t) >= self.flush_every:
            self.flush()

    def append_many(self, t_s: float, signals: list[str], values) -> None:
        """Buffer several values recorded at the same time."""
        ids = [self.signal_id(s) for s in signals]
        self._t.extend([t_s] * len(ids))
        self._sid.extend(ids)
        self._v.extend(float(v) for v in values)
        if len(self._t) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows and flush the file to disk."""
        if self.closed or not self._t:
            return
        t = np.asarray(self._t, dtype=np.float64)
        sid = np.asarray(self._sid, dtype=np.int32)
        v = np.asarray(self._v, dtype=np.float64)
        self._t, self._sid, self._v = [], [], []
        try:
            if self.fmt == "hdf5":
                self._write_hdf5(t, sid, v)
            else:
                self._write_parquet(t, sid, v)
        except OSError as error:
            self._abandon(error)
        self.rows_written += len(t)

    def close(self, *, commit: bool = True) -> None:
        """Flush and close (idempotent); with ``commit``, move the file into place.

        Parameters
        ----------
        commit : bool, keyword-only
            Replace the results file with this run's file (a run that reached its end).
            ``False`` leaves the rows in :attr:`partial_path` and an earlier results file
            untouched (a failed or interrupted run); :meth:`commit` can still move it later.

        Raises
        ------
        SimulationError
            The file cannot be written (the message says when the disk is full).
        """
        if not self.closed:
            self.flush()
            try:
                if self._h5 is not None:
                    self._write_signal_names()
                    self._h5.close()
                    self._h5 = None
                    self._file.close()
                    self._file.raise_error()
                if self.fmt == "parquet":
                    if self._n_parts == 0:  # nothing recorded: still write an empty, valid file
                        self._write_parquet(np.empty(0), np.empty(0, np.int32), np.empty(0))
                    self._merge_parts()
            except OSError as error:
                self._abandon(error)
            self.closed = True
        if commit:
            self.commit()

    def commit(self) -> None:
        """Move the closed partial file onto the results path (atomic, same folder)."""
        if self.committed or self.failed or not self.closed:
            return
        try:
            os.replace(self.partial_path, self.path)
        except OSError as error:
            raise SimulationError(_write_error_text(self.path, error)) from None
        self.committed = True

    def _abandon(self, error: OSError) -> None:
        """After a write error: keep the partial file readable up to the last complete flush
        (or remove it), stop writing, and raise one :class:`SimulationError` that says why."""
        self.closed = self.failed = True
        self._t, self._sid, self._v = [], [], []
        kept = False
        if self._h5 is not None:
            # The HDF5 library never saw the error (the guarded file swallowed it), so it
            # closes cleanly; the file on disk is kept only if it still reads back exactly the
            # rows of the last complete flush.
            with contextlib.suppress(Exception):
                self._h5.close()
            self._h5 = None
            with contextlib.suppress(OSError):
                self._file.close()
            kept = _reads_back(self.partial_path, self.rows_written)
        elif self.fmt == "parquet":
            kept = any(parts_dir(self.partial_path).glob("part-*.parquet"))
        if not kept:
            self.partial_path.unlink(missing_ok=True)
        where = (
            f"the rows up to the last flush are in {self.partial_path}"
            if kept
            else "the partial results file was removed"
        )
        earlier = " (an earlier results file was left as it was)" if self.path.exists() else ""
        raise SimulationError(
            f"{_write_error_text(self.partial_path, error)}; {where}{earlier}"
        ) from None

    # -- HDF5 ---------------------------------------------------------------------------------
    def _open_hdf5(self) -> None:
        import h5py

        self._file = _GuardedFile(self.partial_path)
        self._h5 = h5py.File(self._file, "w")
        self._h5.attrs["metadata"] = self.metadata_json
        self._h5.attrs["layout"] = "long: t_s, signal_id -> signals, value"
        for name, dtype in (("t_s", "f8"), ("signal_id", "i4"), ("value", "f8")):
            self._h5.create_dataset(name, (0,), maxshape=(None,), dtype=dtype, chunks=(65536,))
        self._write_signal_names()

    def _write_signal_names(self) -> None:
        # append only the new names to a resizable dataset: deleting and re-creating a dataset
        # after a failed write crashes the HDF5 library (a segmentation fault on a full disk)
        import h5py

        names = list(self._signals)
        if "signals" not in self._h5:
            self._h5.create_dataset(
                "signals", (0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(1024,)
            )
        ds = self._h5["signals"]
        n0 = ds.shape[0]
        if len(names) > n0:
            ds.resize((len(names),))
            ds[n0:] = np.array(names[n0:], dtype=object)

    def _write_hdf5(self, t, sid, v) -> None:
        try:
            n0 = self._h5["t_s"].shape[0]
            for name, arr in (("t_s", t), ("signal_id", sid), ("value", v)):
                ds = self._h5[name]
                ds.resize((n0 + len(arr),))
                ds[n0:] = arr
            self._write_signal_names()
            self._h5.flush()
        except RuntimeError as error:  # h5py reports some low-level write failures this way
            raise _as_os_error(error) from None
        self._file.raise_error()

    # -- Parquet ------------------------------------------------------------------------------
    def _write_parquet(self, t, sid, v) -> None:
        """One flush = one complete part file (temporary name, then an atomic rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = list(self._signals)
        dictionary = pa.array(names, type=pa.string())
        signal = pa.DictionaryArray.from_arrays(pa.array(sid, type=pa.int32()), dictionary)
        table = pa.table({"t_s": pa.array(t, type=pa.float64()), "signal": signal, "value": v})
        table = table.replace_schema_metadata({"v2g_cosim_metadata": self.metadata_json})
        folder = parts_dir(self.partial_path)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"part-{self._n_parts:06d}.parquet"
        temporary = part.with_suffix(".tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, part)
        self._n_parts += 1

    def _merge_parts(self) -> None:
        """Stream the parts into the one results file (a row group each), then remove them."""
        import pyarrow.parquet as pq

        folder = parts_dir(self.partial_path)
        temporary = self.partial_path.with_name(self.partial_path.name + ".tmp")
        writer = None
        try:
            for part in sorted(folder.glob("part-*.parquet")):
                table = pq.read_table(part)
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        os.replace(temporary, self.partial_path)
        shutil.rmtree(folder, ignore_errors=True)


def partial_path(path: str | Path) -> Path:
    """Where a run writes before it finishes: ``<stem>.partial<suffix>`` in the same folder.

    Parameters
    ----------
    path : path
        The results file (``results.h5``).

    Returns
    -------
    Path
        ``results.partial.h5`` (same folder, same suffix: readable by :func:`read_results`).
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _as_os_error(error: Exception) -> OSError:
    """An OSError with the errno that an HDF5 message names (``errno = 28``), if any."""
    found = re.search(r"errno = (\d+)", str(error))
    code = int(found.group(1)) if found else None
    return OSError(code, os.strerror(code) if code else str(error))


def _write_error_text(path: Path, error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: cannot write results: the disk is full ({error.strerror or error})"
    if error.errno == errno.EFBIG:
        return f"{path}: cannot write results: the file size limit is reached"
    return f"{path}: cannot write results: {error.strerror or error}"


class _GuardedFile:
    """The binary file HDF5 writes through (h5py's file-object driver).

    A failed write (a full disk) is recorded here and every later write is dropped, so the
    HDF5 library never sees a failed write: after one, HDF5 cannot close the file and crashes
    the interpreter at exit (a segmentation fault). The writer checks :meth:`raise_error` after
    every flush and stops the run with a clean message.
    """

    def __init__(self, path: Path) -> None:
        self._raw = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by the writer
        self.error: OSError | None = None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    n = self._raw.write(view[done:])
                    if not n:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += n
            except OSError as error:
                self.error = error
        return len(view)

    def readinto(self, buffer) -> int:
        return self._raw.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._raw.truncate(size)
            except OSError as error:
                self.error = error
        return self._raw.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        if not self._raw.closed:
            if self.error is None:
                try:
                    os.fsync(self._raw.fileno())
                except OSError as error:
                    self.error = error
            self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed


def _reads_back(path: Path, n_rows: int) -> bool:
    """Whether an HDF5 results file reads back with exactly ``n_rows`` rows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame, _meta = read_results(path)
    except Exception:  # any failure: the file cannot be trusted, it is removed
        return False
    return len(frame) == n_rows


def parts_dir(path: str | Path) -> Path:
    """Folder of the per-flush part files of a Parquet results file (see the module text)."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def _read_parquet(source) -> tuple[pd.DataFrame, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [source] if not isinstance(source, list) else source
    tables, meta = [], None
    for file in files:
        try:
            table = pq.read_table(file)
        except Exception as error:  # pyarrow raises ArrowInvalid for truncated files
            raise InputDataError(f"{file}: not a readable Parquet results file: {error}") from None
        metadata = table.schema.metadata or {}
        if b"v2g_cosim_metadata" not in metadata:
            raise InputDataError(f"{file}: not a v2g-cosim results file (no run metadata)")
        meta = json.loads(metadata[b"v2g_cosim_metadata"])
        # each part has its own signal dictionary: compare by name
        tables.append(table.set_column(1, "signal", table["signal"].cast(pa.string())))
    frame = pa.concat_tables(tables).to_pandas()
    frame["signal"] = frame["signal"].astype("category")
    return frame, meta


def read_results(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a results file written by :class:`ResultsWriter`.

    Returns
    -------
    frame : pandas.DataFrame
        Long form with columns ``t_s``, ``signal`` (categorical), ``value``.
    metadata : dict
    """
    p = Path(path)
    if not p.exists() and not p.stem.endswith(".partial") and partial_path(p).exists():
        # no complete file: the run failed or was interrupted and left its partial file
        warnings.warn(f"{p}: the run did not finish; reading {partial_path(p).name}", stacklevel=2)
        p = partial_path(p)
    if p.suffix == ".parquet" and not p.exists():
        parts: list[Path] = []
        for folder in (parts_dir(partial_path(p)), parts_dir(p)):
            parts = parts or sorted(folder.glob("part-*.parquet"))
        if parts:  # the writing run was killed before it could merge its parts
            warnings.warn(
                f"{p}: the run did not finish; reading the {len(parts)} flushed parts in "
                f"{parts[0].parent.name}",
                stacklevel=2,
            )
            return _read_parquet(parts)
    if not p.exists():
        raise InputDataError(f"{p}: results file does not exist")
    if p.suffix == ".parquet":
        return _read_parquet(p)
    import h5py

    try:
        with h5py.File(p, "r") as h5:
            meta = json.loads(h5.attrs["metadata"])
            names = np.array([s.decode() if isinstance(s, bytes) else s for s in h5["signals"][:]])
            t = h5["t_s"][:]
            sid = h5["signal_id"][:]
            v = h5["value"][:]
    except (OSError, KeyError) as error:
        raise InputDataError(f"{p}: not a readable HDF5 results file: {error}") from None
    n = min(len(t), len(sid), len(v))
    frame = pd.DataFrame(
        {
            "t_s": t[:n],
            "signal": pd.Categorical.from_codes(sid[:n], categories=pd.Index(names)),
            "value": v[:n],
        }
    )
    return frame, meta


def results_frame(results: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A results frame: ``results`` itself if already read, else :func:`read_results` of it.

    Parameters
    ----------
    results : path or pandas.DataFrame
        A results file, or the frame read from one (so a caller reads a file once).

    Returns
    -------
    pandas.DataFrame
        The long-form frame (``t_s``, ``signal``, ``value``).
    """
    if isinstance(results, pd.DataFrame):
        return results
    return read_results(results)[0]


def signal_mask(frame: pd.DataFrame, match: Callable[[str], bool]) -> np.ndarray:
    """Rows of a results frame whose signal name satisfies ``match``.

    ``match`` is asked once per signal name, not once per row: the frame's ``signal`` column
    is categorical (a few dozen names over millions of rows in a high-rate run).

    Parameters
    ----------
    frame : pandas.DataFrame
        A results frame (:func:`read_results`).
    match : callable
        ``match(name) -> bool`` for a signal name such as ``"FeederSim-0.feeder.vm_min_pu"``.

    Returns
    -------
    numpy.ndarray
        Boolean mask over the rows.
    """
    signal = frame["signal"]
    if isinstance(signal.dtype, pd.CategoricalDtype):
        codes = signal.cat.codes.to_numpy()
        names = signal.cat.categories
    else:
        codes, names = pd.factorize(signal)
    wanted = np.flatnonzero([bool(match(str(name))) for name in names])
    return np.isin(codes, wanted)


def series(frame: pd.DataFrame, signal: str) -> pd.Series:
    """One signal as a Series indexed by ``t_s``."""
    sel = frame[frame["signal"] == signal]
    return pd.Series(sel["value"].to_numpy(), index=sel["t_s"].to_numpy(), name=signal)


def wide(frame: pd.DataFrame, pattern: str | None = None) -> pd.DataFrame:
    """Pivot to one column per signal (rows: ``t_s``), optionally only signals containing
    ``pattern``. Signals recorded at different rates are forward-filled."""
    if pattern is not None:
        frame = frame[signal_mask(frame, lambda name: re.search(pattern, name) is not None)]
    sel = frame
    sel = sel.assign(signal=sel["signal"].astype(str))
    table = sel.pivot(index="t_s", columns="signal", values="value").sort_index()
    recorded = sel.assign(value=1.0).pivot(index="t_s", columns="signal", values="value")
    recorded = recorded.sort_index().notna()
    # forward-fill only what was not recorded: a recorded NaN stays NaN
    marked = table.mask(recorded & table.isna(), _HOLE).ffill()
    return marked.mask(marked == _HOLE)
