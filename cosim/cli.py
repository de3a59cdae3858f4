"""The ``v2g-cosim`` command line.

Sub-commands are discovered from :mod:`cosim.commands`. :func:`main` is the one error boundary:

* a :class:`~grids.errors.V2GCosimError` (invalid input, failed study) is printed as one
  ``error: ...`` message, exit status 2;
* an operating-system error (disk full, permission denied, not a directory, ...), running out of
  memory and undecodable text become one ``error: ...`` line naming the file and the problem,
  exit status 2;
* standard output closed by its reader (``v2g-cosim ... --json | head -2``) ends the command
  quietly with status 141 (128 + SIGPIPE, what a shell reports for a process ended by the
  closed pipe), without a traceback;
* Ctrl-C prints one line and exits with 130; results written so far stay on disk;
* any other exception is a bug: one line saying so, exit status 1.

``--debug`` re-raises instead, so the full traceback is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from cosim import __version__

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_ERRNO_TEXT = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "already exists",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.EIO: "input/output error",
}


def _discover_commands() -> list:
    import cosim.commands as package

    modules = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cosim.commands.{info.name}")
        if all(hasattr(module, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="v2g-cosim",
        description="Co-simulation of distribution grids with vehicle-to-grid fleets.",
    )
    parser.add_argument("--version", action="version", version=f"v2g-cosim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _discover_commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(
            _run=module.run,
            _name=module.NAME,
            _own_progress=bool(getattr(module, "OWN_PROGRESS", False)),
        )
    return parser


class _PendingTaskFilter(logging.Filter):
    """Drop asyncio's "Task was destroyed but it is pending!" report.

    Cause: when a simulator raises (or on Ctrl-C) mosaik's scheduler leaves the other
    simulators' ``sim_process`` tasks pending, and ``World.shutdown`` closes the event loop
    without cancelling them; when the loop is collected asyncio reports each one.
    ``cosim.world`` cancels them before the shutdown (the fix of the cause); this filter is the
    second line for the paths that cannot (a remote simulator gone mid-call, a loop that is
    still running). The run has already failed with its own message or was interrupted, and
    every result file is closed, so the report says nothing to the user.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Task was destroyed but it is pending" not in str(record.msg)


_ASYNCIO_FILTER = _PendingTaskFilter()


def _close_progress_bars() -> None:
    """Close live tqdm bars so that an error message starts on its own line."""
    tqdm_module = sys.modules.get("tqdm")
    closed = False
    if tqdm_module is not None:
        for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
            try:
                bar.close()
                closed = True
            except Exception:  # a half-built bar: it must not hide the real error
                pass
    if not closed:
        # a bar from another writer (mosaik's own) may still own the line
        try:
            if sys.stderr.isatty():
                sys.stderr.write("\n")
        except (OSError, ValueError):
            pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def _describe_os_error(error: OSError) -> str:
    if isinstance(error, MemoryError):  # pragma: no cover - MemoryError is not an OSError
        return "out of memory"
    reason = _ERRNO_TEXT.get(error.errno or -1) or error.strerror or str(error)
    where = error.filename
    if where is None:
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return f"could not write the output: {reason}"
        return f"{reason} ({error})" if str(error) and str(error) != reason else reason
    target = f" -> {error.filename2}" if error.filename2 else ""
    return f"{where}{target}: {reason}"


def _error_line(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"error: {text}", file=sys.stderr)


def _stdout_is_closed_pipe(error: OSError) -> bool:
    return isinstance(error, BrokenPipeError) or error.errno == errno.EPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``v2g-cosim`` console script (the one error boundary)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_USER_ERROR
    logging.getLogger("asyncio").addFilter(_ASYNCIO_FILTER)
    # mosaik warns when its world was not shut down because a remote simulator process had
    # already gone (Ctrl-C reaches the whole process group); the run reports that itself
    warnings.filterwarnings("ignore", message="AsyncWorld was never shut down")
    debug = bool(args.debug)
    previous = _install_sigint_marker()
    try:
        return _run_command(args, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


class _Interrupt:
    """Whether Ctrl-C arrived during this command (a remote simulator may fail first)."""

    seen = False


def _on_sigint(signum, frame) -> None:
    _Interrupt.seen = True
    raise KeyboardInterrupt


def _install_sigint_marker():
    _Interrupt.seen = False
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # ignored, or someone else's handler
        return None
    signal.signal(signal.SIGINT, _on_sigint)
    return previous


def _interrupted_exit() -> int:
    _close_progress_bars()
    with contextlib.suppress(OSError, ValueError):
        print("interrupted: results written so far are kept", file=sys.stderr)
    return EXIT_INTERRUPTED


def _run_command(args: argparse.Namespace, debug: bool) -> int:
    try:
        if args._own_progress:
            status = int(args._run(args) or 0)
        else:  # elapsed time on stderr for anything that takes over 2 s
            from cosim.clitools import Heartbeat

            with Heartbeat(args._name):
                status = int(args._run(args) or 0)
        sys.stdout.flush()  # a full device or a closed pipe shows here, not at exit
        return status
    except KeyboardInterrupt:
        if debug:
            raise
        return _interrupted_exit()
    except BrokenPipeError:
        if debug:
            raise
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:  # the boundary: everything becomes one line
        if debug:
            raise
        if _Interrupt.seen:  # e.g. a remote simulator that Ctrl-C ended before this process
            return _interrupted_exit()
        _close_progress_bars()
        return _report(error)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # asyncio.CancelledError out of mosaik's shutdown after Ctrl-C
        if debug:
            raise
        if _Interrupt.seen:
            return _interrupted_exit()
        _close_progress_bars()
        return _report(error)


def _report(error: BaseException) -> int:
    from grids.errors import V2GCosimError

    if isinstance(error, V2GCosimError):
        _error_line(str(error))
        return EXIT_USER_ERROR
    if isinstance(error, OSError):
        if _stdout_is_closed_pipe(error):
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        if error.filename is None and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            _silence_stdout()  # most likely stdout itself: the final flush would fail again
        _error_line(_describe_os_error(error))
        return EXIT_USER_ERROR
    if isinstance(error, MemoryError):
        _error_line(
            "out of memory: the problem is too large for this machine (fewer vehicles, "
            "samples or runs, or a shorter horizon)"
        )
        return EXIT_USER_ERROR
    if isinstance(error, UnicodeDecodeError):
        _error_line(
            f"an input file is not UTF-8 text ({error.reason} at byte {error.start}); "
            "is it a binary file?"
        )
        return EXIT_USER_ERROR
    if isinstance(error, UnicodeError):
        _error_line(f"text encoding problem: {error}")
        return EXIT_USER_ERROR
    _error_line(
        f"internal error ({type(error).__name__}: {error}); this is a bug in v2g-cosim: "
        "run again with --debug for the traceback and report it"
    )
    return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
