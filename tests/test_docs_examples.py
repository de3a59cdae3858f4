"""Every ``v2g-cosim`` command shown in the README and docs runs as copy-pasted.

The examples are the lines of fenced code blocks that start with ``v2g-cosim`` (or ``$ v2g-cosim``
in console transcripts; ``\\`` continuations joined, trailing ``# comments`` dropped). Each
document's examples run in order, in-process through :func:`cosim.cli.main`, in one temporary
working directory per document, from which they see only the files the document itself gives:

* ``<!-- docs-test: write NAME -->`` before a fenced block: the block is the file ``NAME``;
  ``<!-- docs-test: merge NAME -->``: its tables replace the tables of the same name in ``NAME``
  (or are appended), as the tutorial's "add this section" steps say;
* a fenced block right after a line that names a file and ends with a colon (`` `curve.csv`
  (served load ...): ``) is that file;
* in a console block, ``$ cat NAME`` followed by lines is the file ``NAME``;
* ``cp SRC DEST`` lines in a bash block copy from the repository (the docs are followed from a
  checkout, as the README's quick start installs).

An example expected to fail shows its ``error:`` output in the document: it must exit 2 and
print that first error line. Every other example must exit 0.

Examples that take too long for the test suite are only parsed (argparse), never skipped
silently: they are listed in :data:`PARSE_ONLY` with the reason. Synopsis lines (``[--option]``
and ``A|B`` placeholders) are not examples: :func:`is_synopsis` recognizes them.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cosim.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: examples only parsed, with the reason (document name, start of the command) -> reason
PARSE_ONLY = {
    ("tutorial.md", "v2g-cosim run my.toml --out day"): "a full day with 300 vehicles and a "
    "20-ms event window (about 15 s each); the same scenario runs as out4 without a fleet",
    ("hosting_capacity.md", "v2g-cosim hosting-capacity --feeder case33bw --bus all --samples"): (
        "1000 Monte Carlo scenarios on every bus (minutes)"
    ),
    ("hosting_capacity.md", "v2g-cosim hosting-capacity --time-series --feeder simbench:"): (
        "builds a SimBench grid and its year of profiles (about 20 s);"
        " tests/studies/test_hosting_capacity_timeseries.py runs the command on a 1-day window"
    ),
    ("hosting_capacity.md", "v2g-cosim hosting-capacity --adoption --feeder simbench:"): (
        "10 placements x 11 shares x 4 controls over a SimBench week (about a minute);"
        " tests/studies/test_studies_adoption.py runs the study"
    ),
    ("sweeps.md", "v2g-cosim sweep studies/scenarios/sweep_inertia_droop.toml"): (
        "35 contingency runs on all cores; tests/studies/test_sweep.py runs sweeps"
    ),
    ("sweeps.md", "v2g-cosim sweep SWEEP.toml --out DIR --scheduler"): (
        "needs a running Dask cluster at the address shown"
    ),
    ("sweeps.md", "v2g-cosim sweep-report sweep_out"): (
        "needs the output of the 35-run sweep above"
    ),
    ("controls.md", "v2g-cosim inverter-curve --function volt_var --settings scenario.toml"): (
        "scenario.toml stands for the reader's own scenario file; no file of that name is given"
    ),
    ("realdata.md", "v2g-cosim regional --feeders 'simbench:1-LV-*--1-sw' --study-case"): (
        "six SimBench LV grids with the AC-confirmed study (minutes); the docs run a small one"
    ),
    ("realdata.md", "v2g-cosim regional --feeders-dir utility_nets"): (
        "utility_nets stands for the reader's own folder of feeder files"
    ),
    ("realdata.md", "v2g-cosim regional --feeders 'simbench:1-LV-*--2-sw' --time-series"): (
        "a week of time-series hosting capacity on six SimBench LV grids (minutes)"
    ),
    (
        "realdata.md",
        "v2g-cosim regional --feeders 'simbench:1-LV-*--1-sw' --out lv-scenario1 --scheduler",
    ): "needs a running Dask cluster at the address shown",
}


@dataclass
class Step:
    """One thing a document does, in order: write a file, copy one, or run an example."""

    kind: str  # "write", "merge", "copy", "run"
    line: int
    name: str = ""
    text: str = ""
    argv: list[str] = field(default_factory=list)
    command: str = ""
    expect_error: str | None = None


_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(write|merge)\s+(\S+)\s*-->")
_NAMED_FILE = re.compile(r"`([\w./-]+\.(?:csv|toml|json))`[^`]*:\s*$")


def is_synopsis(command: str) -> bool:
    """``v2g-cosim thermal --profile FILE.csv [--json]``: a usage line, not an example."""
    return " [" in command or re.search(r"\w\|\w", command) is not None


def _commands(body: list[str], console: bool) -> list[tuple[int, str, str | None]]:
    """(offset, command, first error line shown after it) for the v2g-cosim lines of a block."""
    out = []
    k = 0
    while k < len(body):
        raw = body[k]
        line = raw.strip()
        if console and not line.startswith("$ "):
            k += 1
            continue
        line = line[2:] if line.startswith("$ ") else line
        if not line.startswith("v2g-cosim"):
            k += 1
            continue
        start = k
        while line.endswith("\\") and k + 1 < len(body):
            k += 1
            line = line[:-1] + " " + body[k].strip()
        error = None
        if console:
            shown = []
            j = k + 1
            while j < len(body) and not body[j].startswith("$ "):
                shown.append(body[j])
                j += 1
            errors = [s for s in shown if s.startswith("error:")]
            error = errors[0] if errors else None
        out.append((start, line, error))
        k += 1
    return out


def _strip_comment(command: str) -> str:
    tokens = shlex.split(command, comments=True)
    return shlex.join(tokens)


def document_steps(path: Path) -> list[Step]:
    """The files and examples of one document, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        lang = fence.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = lines[i + 1 : j]
        # what precedes the block: a marker comment, or a line naming a file with a colon
        before = [x for x in lines[max(0, i - 3) : i] if x.strip()]
        marker = _MARKER.search(before[-1]) if before else None
        named = _NAMED_FILE.search(before[-1]) if before else None
        if marker:
            steps.append(Step(marker.group(1), i + 1, name=marker.group(2), text="\n".join(body)))
        elif named and lang in ("", "text", "csv", "toml", "json"):
            steps.append(Step("write", i + 1, name=named.group(1), text="\n".join(body)))
        console = lang in ("console", "") and any(b.startswith("$ ") for b in body)
        if console:  # `$ cat NAME` transcripts give files
            for k, b in enumerate(body):
                if b.startswith("$ cat "):
                    content = []
                    for c in body[k + 1 :]:
                        if c.startswith("$ "):
                            break
                        content.append(c)
                    steps.append(
                        Step("write", i + 2 + k, name=b[6:].strip(), text="\n".join(content))
                    )
        if lang in ("bash", "sh", "shell", ""):
            for k, b in enumerate(body):
                parts = shlex.split(b, comments=True) if b.strip().startswith("cp ") else []
                if len(parts) == 3:
                    steps.append(Step("copy", i + 2 + k, name=parts[2], text=parts[1]))
        for offset, raw, error in _commands(body, console):
            if is_synopsis(raw):
                continue
            command = _strip_comment(raw)
            steps.append(
                Step(
                    "run",
                    i + 2 + offset,
                    argv=shlex.split(command)[1:],
                    command=command,
                    expect_error=error,
                )
            )
        i = j + 1
    return steps


def _merge_toml(old: str, new: str) -> str:
    """Replace the top-level tables of ``old`` named in ``new`` (``[a]``, ``[a.b]``, ``[[a]]``)."""

    def sections(text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, list[str]]] = [("", [])]
        for line in text.splitlines():
            header = re.match(r"^\s*\[\[?\s*([A-Za-z0-9_-]+)", line)
            if header and line.strip().startswith("["):
                out.append((header.group(1), [line]))
            else:
                out[-1][1].append(line)
        return [(name, "\n".join(body)) for name, body in out]

    new_sections = sections(new)
    replaced = {name for name, _ in new_sections if name}
    kept = [(n, b) for n, b in sections(old) if n not in replaced]
    merged = [b for _, b in kept] + [b for n, b in new_sections if n]
    return "\n".join(part.strip("\n") for part in merged if part.strip()) + "\n"


def _examples() -> list[tuple[str, list[Step]]]:
    out = []
    for path in DOCS:
        steps = document_steps(path)
        if any(s.kind == "run" for s in steps):
            out.append((path.name, steps))
    return out


EXAMPLES = _examples()


def _parse_only_reason(doc: str, command: str) -> str | None:
    for (name, prefix), reason in PARSE_ONLY.items():
        if name == doc and command.startswith(prefix):
            return reason
    return None


@pytest.mark.parametrize(("doc", "steps"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_document_examples_run(doc, steps, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    for step in steps:
        where = f"{doc}:{step.line}"
        if step.kind == "write":
            (tmp_path / step.name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / step.name).write_text(step.text + "\n")
        elif step.kind == "merge":
            target = tmp_path / step.name
            old = target.read_text() if target.exists() else ""
            target.write_text(_merge_toml(old, step.text))
        elif step.kind == "copy":
            source = ROOT / step.text
            assert source.exists(), f"{where}: cp {step.text}: no such file in the repository"
            dest = tmp_path / step.name
            shutil.copy(source, dest / source.name if step.name in (".", "./") else dest)
        elif _parse_only_reason(doc, step.command) is not None:
            parser.parse_args(step.argv)  # exits (SystemExit) if the example does not parse
        else:
            status = main(step.argv)
            captured = capsys.readouterr()
            if step.expect_error is not None:
                assert status == 2, f"{where}: {step.command}: expected to fail"
                assert step.expect_error in captured.err, (where, captured.err)
            else:
                assert status == 0, f"{where}: {step.command}: exit {status}\n{captured.err}"
            assert "Traceback" not in captured.err


def test_every_parse_only_entry_matches_an_example():
    """A stale entry would hide nothing, but it would say something untrue about the docs."""
    commands = {(doc, s.command) for doc, steps in EXAMPLES for s in steps if s.kind == "run"}
    for name, prefix in PARSE_ONLY:
        assert any(d == name and c.startswith(prefix) for d, c in commands), (name, prefix)


def test_examples_were_found():
    docs = {doc for doc, _ in EXAMPLES}
    assert {"tutorial.md", "controls.md", "resilience.md", "hosting_capacity.md"} <= docs


def test_merge_replaces_tables_of_the_same_name():
    old = "[simulation]\nstep_s = 1\n\n[[events]]\nt_s = 1\n\n[[events]]\nt_s = 2\n"
    new = '[simulation]\nstep_s = 900\n\n[feeder]\nname = "x"\n\n[[events]]\nt_s = 3\n'
    merged = _merge_toml(old, new)
    assert "step_s = 900" in merged and "step_s = 1\n" not in merged
    assert "t_s = 3" in merged and "t_s = 1" not in merged and "t_s = 2" not in merged
    assert '[feeder]\nname = "x"' in merged
