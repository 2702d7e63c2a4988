"""A ScoreTable in every output format. Values are the same everywhere; only the markup of
the best value (bold), footnote marks and notes differ by format."""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

from .scoretable import ScoreTable

FORMATS = ("markdown", "latex", "csv", "html", "json")


def render(table: ScoreTable, fmt: str) -> str:
    if fmt not in _RENDERERS:
        from ..errors import UserError

        raise UserError(f"--format: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return _RENDERERS[fmt](table)


def _cells(table: ScoreTable, bold: tuple[str, str], mark: str, escape=lambda s: s) -> pd.DataFrame:
    """The displayed text of every cell, with `bold` around best values and `mark` (a format
    string with {keys}) after marked ones."""
    best = table.best()
    cols = list(table.values.columns)
    rows = []
    for i in range(len(table.values)):
        row = []
        for c in cols:
            text = escape(table.text(i, c))
            if (i, c) in best:
                text = f"{bold[0]}{text}{bold[1]}"
            keys = table.marks.get((i, c))
            if keys:
                text += mark.format(keys=",".join(keys))
            row.append(text)
        rows.append(row)
    return pd.DataFrame(
        rows, index=[escape(str(x)) for x in table.values.index], columns=[escape(c) for c in cols]
    )


def _blocks(table: ScoreTable) -> list[int]:
    """Row positions after which a rule separates published rows from measured ones."""
    return [
        i
        for i in range(len(table.kinds) - 1)
        if table.kinds[i] == "published" and table.kinds[i + 1] != "published"
    ]


def to_markdown(table: ScoreTable) -> str:
    cells = _cells(table, ("**", "**"), " [{keys}]")
    cells.index.name = table.values.index.name or ""
    out = cells.to_markdown(tablefmt="github", disable_numparse=True, stralign="right")
    notes = [f"- [{k}] {v}" for k, v in table.notes.items()] + [f"- {f}" for f in table.footer]
    head = f"**{table.title}**\n\n" if table.title else ""
    return head + out + ("\n\n" + "\n".join(notes) if notes else "")


def _latex_escape(s: str) -> str:
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in s)


def to_latex(table: ScoreTable) -> str:
    """A booktabs tabular (needs `\\usepackage{booktabs}`), notes under it."""
    cells = _cells(table, (r"\textbf{", "}"), r"\textsuperscript{{{keys}}}", _latex_escape)
    cells = cells.reset_index(names=_latex_escape(table.values.index.name or ""))
    styler = cells.style.hide(axis="index")
    tex = styler.to_latex(hrules=True, column_format="l" + "r" * (len(cells.columns) - 1))
    lines = tex.splitlines()
    body_start = lines.index(r"\midrule") + 1
    for pos in reversed(_blocks(table)):
        lines.insert(body_start + pos + 1, r"\midrule")
    out = "\n".join(lines)
    notes = [rf"\textsuperscript{{{k}}}~{_latex_escape(v)}\\" for k, v in table.notes.items()] + [
        rf"{_latex_escape(f)}\\" for f in table.footer
    ]
    if table.title:
        out = f"% {table.title}\n" + out
    if notes:
        out += "\n\\par\\smallskip\n{\\footnotesize\n" + "\n".join(notes) + "\n}"
    return out + "\n"


def to_csv(table: ScoreTable) -> str:
    """Numbers only (no markup); a `kind` column (measured, published, delta) and a `notes`
    column spelling out each row's footnotes, so nothing marked is lost."""
    frame = table.values.copy()
    frame.insert(0, "kind", table.kinds)
    notes = []
    for i in range(len(frame)):
        parts = [
            f"{c}: {table.notes[k]}"
            for c in table.values.columns
            for k in table.marks.get((i, c), [])
        ]
        notes.append(" | ".join(parts))
    frame["notes"] = notes
    return frame.to_csv(float_format="%.4f", lineterminator="\n")


def to_html(table: ScoreTable) -> str:
    """An HTML table (class `scores`; best cells `class="best"`, marked cells `<sup>`)."""
    cells = _cells(table, ("<strong>", "</strong>"), "<sup>{keys}</sup>", html.escape)
    best = table.best()
    cols = list(table.values.columns)
    from pandas.io.formats.style import Styler

    # Row labels become a column (delta rows share theirs); a fixed uuid and no cell ids:
    # the same table gives the same HTML.
    cells = cells.reset_index(names=html.escape(table.values.index.name or ""))
    classes = pd.DataFrame(
        [
            ["label"] + ["best" if (i, c) in best else table.kinds[i] for c in cols]
            for i in range(len(table.values))
        ],
        columns=cells.columns,
    )
    styler = Styler(cells, uuid="scores", cell_ids=False).set_table_attributes('class="scores"')
    styler = styler.hide(axis="index").set_td_classes(classes)
    out = styler.to_html(escape=False)
    if table.title:
        out = f"<h3>{html.escape(table.title)}</h3>\n" + out
    if table.notes or table.footer:
        items = "".join(
            f"<li><sup>{k}</sup> {html.escape(v)}</li>" for k, v in table.notes.items()
        ) + "".join(f"<li>{html.escape(f)}</li>" for f in table.footer)
        out += f'<ul class="notes">{items}</ul>\n'
    return out


def to_json(table: ScoreTable) -> str:
    best = table.best()
    rows: list[dict[str, Any]] = []
    for i, label in enumerate(table.values.index):
        cells = {}
        for c in table.values.columns:
            v = table.values.iloc[i][c]
            cell: dict[str, Any] = {"value": None if pd.isna(v) else float(v)}
            if (i, c) in best:
                cell["best"] = True
            if (i, c) in table.marks:
                cell["notes"] = table.marks[(i, c)]
            if (i, c) in table.cell_text:
                cell["text"] = table.cell_text[(i, c)]
            cells[c] = cell
        rows.append({"label": str(label), "kind": table.kinds[i], "cells": cells})
    doc = {
        "title": table.title,
        "columns": list(table.values.columns),
        "rows": rows,
        "notes": table.notes,
        "footer": table.footer,
    }
    return json.dumps(doc, indent=2) + "\n"


def to_rich(table: ScoreTable):
    """The terminal table (rich)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    cells = _cells(table, ("[bold green]", "[/]"), r" \[{keys}]", escape)
    caption = "\n".join(
        [escape(f"[{k}] {v}") for k, v in table.notes.items()] + [escape(f) for f in table.footer]
    )
    # Text, not markup: a model path with [brackets] in the title prints as is.
    title = Text(table.title) if table.title else None
    out = Table(title=title, caption=caption or None, caption_justify="left")
    out.add_column(table.values.index.name or "")
    for c in cells.columns:
        out.add_column(c, justify="right")
    for i, (label, row) in enumerate(cells.iterrows()):
        out.add_row(str(label), *row.tolist(), end_section=i in _blocks(table))
    return out


_RENDERERS = {
    "markdown": to_markdown,
    "latex": to_latex,
    "csv": to_csv,
    "html": to_html,
    "json": to_json,
}
