"""A small, dependency-free HTML report writer shared by every study.

A report is a title, sections of paragraphs, tables (pandas DataFrames) and figures
(matplotlib figures saved as PNG beside the HTML). It is readable on its own: the HTML refers
to its PNGs by relative path, and the data behind each figure can be saved next to it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from grids.limits import Violation

# matplotlib is imported where a figure is saved: a report without figures does not load it.


def as_violation(item: Violation | Mapping[str, Any]) -> Violation:
    """A :class:`grids.limits.Violation` from itself or from its ``to_dict()`` form.

    Parameters
    ----------
    item : Violation or mapping
        A violation, or the dictionary a study JSON holds.

    Returns
    -------
    Violation
    """
    if isinstance(item, Violation):
        return item
    fields = Violation.__dataclass_fields__
    return Violation(**{k: v for k, v in dict(item).items() if k in fields})


def violation_lines(
    violations: Iterable[Violation | Mapping[str, Any]], *, notes: Iterable[str] = ()
) -> list[str]:
    """One sentence per broken limit (worst first as given), then the notes (missing ratings).

    Parameters
    ----------
    violations : iterable of Violation or mapping
        The ``violations`` list of a run or study.
    notes : iterable of str
        Further lines, e.g. :func:`grids.limits.missing_rating` sentences.

    Returns
    -------
    list of str
        ``"No limit is broken."`` first when no violation is given.
    """
    lines = [as_violation(v).describe() for v in violations] or ["No limit is broken."]
    return lines + list(notes)


@dataclass
class _Item:
    kind: str
    payload: object
    caption: str = ""


@dataclass
class Report:
    """Collects the parts of a study report and writes ``report.html``.

    Examples
    --------
    >>> rep = Report("Hosting capacity of case33bw")        # doctest: +SKIP
    >>> rep.heading("Results"); rep.table(df, "Per-bus HC")  # doctest: +SKIP
    >>> rep.figure(fig, "hc_map", "HC on the feeder")        # doctest: +SKIP
    >>> rep.write(out_dir)                                   # doctest: +SKIP
    """

    title: str
    items: list[_Item] = field(default_factory=list)
    _figures: dict[str, object] = field(default_factory=dict)
    _limits: list[str] | None = None

    def violations(
        self, violations: Iterable[Violation | Mapping[str, Any]], *, notes: Iterable[str] = ()
    ) -> None:
        """Say which limits are broken; shown at the top of the report, under the title.

        Parameters
        ----------
        violations : iterable of Violation or mapping
            The run's or study's ``violations``.
        notes : iterable of str
            Further lines (a missing rating is said as such).
        """
        self._limits = violation_lines(violations, notes=notes)

    def limit_lines(self, lines: Iterable[str]) -> None:
        """Set the sentences of the limits section directly (e.g. a summary over many runs)."""
        self._limits = list(lines)

    def heading(self, text: str) -> None:
        """Start a new section."""
        self.items.append(_Item("heading", text))

    def paragraph(self, text: str) -> None:
        """Add a paragraph of plain text (escaped)."""
        self.items.append(_Item("paragraph", text))

    def table(
        self, frame: pd.DataFrame, caption: str = "", *, float_format: str = "{:.4g}"
    ) -> None:
        """Add a table; floats are shown with ``float_format``."""
        self.items.append(_Item("table", (frame, float_format), caption))

    def key_values(self, values: dict[str, object], caption: str = "") -> None:
        """Add a two-column table of named values (units belong in the names)."""
        frame = pd.DataFrame({"quantity": list(values), "value": list(values.values())})
        self.table(frame, caption)

    def figure(
        self, fig, name: str, caption: str = "", *, data: pd.DataFrame | None = None
    ) -> None:
        """Add a matplotlib figure saved as ``name.png`` (and ``name.csv`` with ``data``)."""
        self._figures[name] = (fig, data)
        self.items.append(_Item("figure", name, caption))

    def write(self, out_dir: str | Path, *, filename: str = "report.html") -> Path:
        """Write the PNGs, the figure data and the HTML into ``out_dir``; return the HTML path."""
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, (fig, data) in self._figures.items():
            fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            if data is not None:
                data.to_csv(out / f"{name}.csv", index=False)
        parts = [
            "<!DOCTYPE html>",
            "<html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:2px 8px;text-align:right}th{background:#eee}img{max-width:100%}"
            "figcaption,caption{color:#555;font-size:90%}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        if self._limits is not None:
            parts.append("<h2>Limits</h2><ul class='violations'>")
            parts += [f"<li>{html.escape(line)}</li>" for line in self._limits]
            parts.append("</ul>")
        for item in self.items:
            if item.kind == "heading":
                parts.append(f"<h2>{html.escape(str(item.payload))}</h2>")
            elif item.kind == "paragraph":
                parts.append(f"<p>{html.escape(str(item.payload))}</p>")
            elif item.kind == "table":
                frame, fmt = item.payload
                table_html = frame.to_html(
                    index=False, float_format=lambda v, fmt=fmt: fmt.format(v), border=0
                )
                if item.caption:
                    table_html = table_html.replace(
                        ">", f"><caption>{html.escape(item.caption)}</caption>", 1
                    )
                parts.append(table_html)
            elif item.kind == "figure":
                name = str(item.payload)
                parts.append(
                    f"<figure><img src='{html.escape(name)}.png' alt='{html.escape(item.caption)}'>"
                    f"<figcaption>{html.escape(item.caption)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        path = out / filename
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
