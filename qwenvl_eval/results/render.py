"""A ScoreTable in every output format. Values are the same everywhere; only the markup of
the best value (bold), footnote marks and notes differ by format."""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

import pandas as pd

from .scoretable import ScoreTable

FORMATS = ("markdown", "latex", "csv", "html", "json")


def render(table: ScoreTable, fmt: str) -> str:
    if fmt not in _RENDERERS:
        from ..errors import UserError

        raise UserError(f"--format: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return _RENDERERS[fmt](table)


def _cells(
    table: ScoreTable, bold: tuple[str, str], mark: str, escape=lambda s: s, number=None
) -> pd.DataFrame:
    """The displayed text of every cell, with `bold` around best values and `mark` (a format
    string with {keys}) after marked ones and after labels of rows with a row note."""
    best = table.best()
    cols = list(table.values.columns)
    number = number or escape
    rows = []
    for i in range(len(table.values)):
        row = []
        for c in cols:
            raw = table.text(i, c)
            text = number(raw) if _NUMBER.match(raw) else escape(raw)
            if (i, c) in best:
                text = f"{bold[0]}{text}{bold[1]}"
            keys = table.marks.get((i, c))
            if keys:
                text += mark.format(keys=",".join(keys))
            row.append(text)
        rows.append(row)
    index = []
    for i, x in enumerate(table.values.index):
        label = escape(str(x))
        keys = table.row_marks.get(i)
        index.append(label + mark.format(keys=",".join(keys)) if keys else label)
    return pd.DataFrame(rows, index=index, columns=[escape(c) for c in cols])


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|inf|nan)$")


def _group_starts(table: ScoreTable) -> dict[int, str]:
    """Row positions where a new row group begins, with its name."""
    out, prev = {}, None
    for i in range(len(table.kinds)):
        g = table.group_of(i)
        if g and g != prev:
            out[i] = g
        prev = g
    return out


def _blocks(table: ScoreTable) -> list[int]:
    """Row positions after which a rule separates published rows from measured ones."""
    return [
        i
        for i in range(len(table.kinds) - 1)
        if table.kinds[i] == "published" and table.kinds[i + 1] != "published"
    ]


def _md_escape(s: str) -> str:
    """A cell of a markdown table: a `|` would end the cell, a newline the row."""
    return " ".join(s.replace("\\", "\\\\").replace("|", "\\|").split())


def to_markdown(table: ScoreTable) -> str:
    cells = _cells(table, ("**", "**"), " [{keys}]", _md_escape)
    starts = _group_starts(table)
    if starts:  # a row naming the group (markdown has no spanning rows)
        parts = []
        for i in range(len(cells)):
            if i in starts:
                head = pd.DataFrame(
                    [[""] * len(cells.columns)],
                    index=[f"*{_md_escape(starts[i])}*"],
                    columns=cells.columns,
                )
                parts.append(head)
            parts.append(cells.iloc[[i]])
        cells = pd.concat(parts)
    cells.index.name = _md_escape(table.values.index.name or "")
    out = cells.to_markdown(tablefmt="github", disable_numparse=True, stralign="right")
    notes = [f"- [{k}] {_md_escape(v)}" for k, v in table.notes.items()] + [
        f"- {_md_escape(f)}" for f in table.footer
    ]
    head = f"**{_md_escape(table.title)}**\n\n" if table.title else ""
    return head + out + ("\n\n" + "\n".join(notes) if notes else "")


_LATEX = {
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
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x3000 <= o <= 0x9FFF  # CJK punctuation, kana, unified ideographs
        or 0xAC00 <= o <= 0xD7AF  # Hangul
        or 0xF900 <= o <= 0xFAFF
        or 0xFF00 <= o <= 0xFFEF  # full-width forms
        or 0x20000 <= o <= 0x2FA1F
    )


def _latex_note(s: str) -> str:
    """A note under the table: long names and paths may break after `_` and `/`."""
    return _latex_escape(s).replace("\\_", "\\_\\allowbreak{}").replace("/", "/\\allowbreak{}")


def _latex_escape(s: str) -> str:
    """Text for pdflatex with T1 fonts: specials escaped, `--` kept as two hyphens (not an
    en dash), runs of CJK characters in a CJKutf8 `CJK` environment, and any other character
    T1 cannot set (emoji, symbols) written as its code point, so the fragment compiles."""
    out: list[str] = []
    cjk: list[str] = []

    def flush() -> None:
        if cjk:
            out.append(r"\begin{CJK}{UTF8}{gbsn}" + "".join(cjk) + r"\end{CJK}")
            cjk.clear()

    for i, ch in enumerate(s):
        if _is_cjk(ch):
            cjk.append(ch)
            continue
        flush()
        if ch in _LATEX:
            out.append(_LATEX[ch])
        elif ch == "-" and i + 1 < len(s) and s[i + 1] == "-":
            out.append("-{}")  # `--` would print as an en dash
        elif ord(ch) < 0x80 or 0xA0 <= ord(ch) <= 0x17F:  # ASCII, Latin-1, Latin Extended-A
            out.append(ch)
        else:
            out.append(rf"\texttt{{[U+{ord(ch):04X}]}}")
    flush()
    return "".join(out)


def _latex_number(s: str) -> str:
    """A number: a real minus sign (a bare `-` prints as a hyphen)."""
    return f"$-${s[1:]}" if s.startswith("-") else s


LATEX_PREAMBLE = "% needs \\usepackage{booktabs,graphicx} (and \\usepackage{CJKutf8} for CJK names)"


def to_latex(table: ScoreTable) -> str:
    """A booktabs tabular scaled down to the line width when wider (never up), the paper's
    column groups as spanning headers and row groups as italic rows; notes under it."""
    cells = _cells(
        table, (r"\textbf{", "}"), r"\textsuperscript{{{keys}}}", _latex_escape, _latex_number
    )
    ncols = len(cells.columns) + 1
    lines = [LATEX_PREAMBLE]
    if table.title:
        lines.append(f"% {' '.join(table.title.split())}")
    lines += [
        r"\begingroup\small",
        r"\noindent\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        rf"\begin{{tabular}}{{l{'r' * (ncols - 1)}}}",
        r"\toprule",
    ]
    label_head = _latex_escape(table.values.index.name or "")
    if table.col_groups:
        spans, rules, at = [], [], 2
        for name, n in table.col_groups:
            spans.append(rf"\multicolumn{{{n}}}{{c}}{{{_latex_escape(name)}}}")
            if name:
                rules.append(rf"\cmidrule(lr){{{at}-{at + n - 1}}}")
            at += n
        lines.append(" & ".join(["", *spans]) + r" \\")
        lines.append("".join(rules))
        heads = [_latex_escape(table.short_headers.get(c, c)) for c in table.values.columns]
    else:
        heads = list(cells.columns)
    lines.append(" & ".join([label_head, *heads]) + r" \\")
    lines.append(r"\midrule")
    starts = _group_starts(table)
    blocks = set(_blocks(table))
    for i, (label, row) in enumerate(cells.iterrows()):
        if i in starts:
            if i > 0 and (i - 1) not in blocks:
                lines.append(r"\midrule")
            group = rf"\textit{{{_latex_escape(starts[i])}}}"
            lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{{group}}} \\")
        lines.append(" & ".join([str(label), *row.tolist()]) + r" \\")
        if i in blocks and i + 1 < len(cells):
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    notes = [rf"\textsuperscript{{{k}}}~{_latex_note(v)}\par" for k, v in table.notes.items()]
    notes += [rf"{_latex_note(f)}\par" for f in table.footer]
    if notes:
        lines += [r"\par\smallskip", r"{\footnotesize\sloppy", *notes, "}"]
    lines.append(r"\endgroup")
    return "\n".join(lines) + "\n"


def _csv_text(s: str) -> str:
    """A text cell a spreadsheet will not run: a leading =, +, -, @ (or tab, carriage
    return) starts a formula, so it gets a leading apostrophe, as OWASP advises."""
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def to_csv(table: ScoreTable) -> str:
    """Numbers only (no markup); a `kind` column (measured, published, delta), the row's
    `group`, and a `notes` column spelling out each row's footnotes, so nothing marked is
    lost. Text cells are neutralised against formula injection; numbers stay numbers."""
    frame = table.values.copy()
    frame.index = [_csv_text(str(x)) for x in frame.index]
    frame.index.name = _csv_text(table.values.index.name or "")
    frame.columns = [_csv_text(str(c)) for c in frame.columns]
    frame.insert(0, "kind", table.kinds)
    if table.row_groups:
        frame.insert(1, "group", [_csv_text(table.group_of(i)) for i in range(len(frame))])
    notes = []
    for i in range(len(frame)):
        parts = [table.notes[k] for k in table.row_marks.get(i, [])] + [
            f"{c}: {table.notes[k]}"
            for c in table.values.columns
            for k in table.marks.get((i, c), [])
        ]
        parts += [f"{c}: {t}" for (r, c), t in table.cell_text.items() if r == i]
        notes.append(_csv_text(" | ".join(parts)))
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
    starts = _group_starts(table)
    if starts:  # a row naming each row group (class "group")
        rows, klass = [], []
        for i in range(len(cells)):
            if i in starts:
                rows.append([f"<em>{html.escape(starts[i])}</em>"] + [""] * len(cols))
                klass.append(["group"] * (len(cols) + 1))
            rows.append(cells.iloc[i].tolist())
            klass.append(classes.iloc[i].tolist())
        cells = pd.DataFrame(rows, columns=cells.columns)
        classes = pd.DataFrame(klass, columns=cells.columns)
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
            # JSON has no Infinity or NaN: a non-finite value is null, spelled out in "text".
            finite = not pd.isna(v) and math.isfinite(v)
            cell: dict[str, Any] = {"value": float(v) if finite else None}
            if not pd.isna(v) and not finite:
                cell["text"] = str(float(v))
            if (i, c) in best:
                cell["best"] = True
            if (i, c) in table.marks:
                cell["notes"] = table.marks[(i, c)]
            if (i, c) in table.cell_text:
                cell["text"] = table.cell_text[(i, c)]
            cells[c] = cell
        row: dict[str, Any] = {"label": str(label), "kind": table.kinds[i], "cells": cells}
        if table.row_groups:
            row["group"] = table.group_of(i)
        if i in table.row_marks:
            row["notes"] = table.row_marks[i]
        rows.append(row)
    doc = {
        "title": table.title,
        "columns": list(table.values.columns),
        "rows": rows,
        "notes": table.notes,
        "footer": table.footer,
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def to_rich(table: ScoreTable, width: int | None = None):
    """The terminal table (rich). Numbers are never cut: names wrap, and when even the
    numbers do not fit in `width` columns the table turns vertical (one line per cell)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    cells = _cells(table, ("[bold green]", "[/]"), r" \[{keys}]", escape)
    plain = _cells(table, ("", ""), " [{keys}]")
    caption = "\n".join(
        [escape(f"[{k}] {v}") for k, v in table.notes.items()] + [escape(f) for f in table.footer]
    )
    # Text, not markup: a model path with [brackets] in the title prints as is.
    title = Text(table.title) if table.title else None
    starts = _group_starts(table)
    needs = [
        max([len(x) for x in plain[c]] + [len(w) for w in str(c).split()] + [4])
        for c in plain.columns
    ]
    # Fixed widths for the numbers (rich would squeeze them), the rest for the names, which
    # wrap; no room for a name of 10 columns: vertical, one line per cell.
    fixed = sum(n + 3 for n in needs) + 4
    label_room = None if width is None else width - fixed
    if label_room is not None and label_room < 10:
        out = Table(title=title, caption=caption or None, caption_justify="left")
        out.add_column(table.values.index.name or "", overflow="fold")
        out.add_column("column", overflow="fold")
        out.add_column("value", justify="right", width=max(needs))
        for i, (label, row) in enumerate(cells.iterrows()):
            if i in starts:
                out.add_row(Text(starts[i], style="italic"), "", "")
            # Missing cells are left out: a row of dashes says nothing vertically.
            shown = [(c, v) for c, v in zip(cells.columns, row.tolist(), strict=True) if v != "-"]
            for j, (c, v) in enumerate(shown or [("", "-")]):
                last = j == max(len(shown), 1) - 1
                out.add_row(str(label) if j == 0 else "", c, v, end_section=last)
        return out
    out = Table(title=title, caption=caption or None, caption_justify="left")
    longest = max([len(str(x)) for x in plain.index] + [len(table.values.index.name or "")])
    label_width = longest if label_room is None else min(longest, label_room)
    out.add_column(table.values.index.name or "", overflow="fold", width=max(label_width, 1))
    for c, n in zip(cells.columns, needs, strict=True):
        out.add_column(c, justify="right", overflow="fold", width=n)
    blocks = _blocks(table)
    for i, (label, row) in enumerate(cells.iterrows()):
        if i in starts:
            out.add_row(Text(starts[i], style="italic"), *[""] * len(row))
        out.add_row(str(label), *row.tolist(), end_section=i in blocks)
    return out


_RENDERERS = {
    "markdown": to_markdown,
    "latex": to_latex,
    "csv": to_csv,
    "html": to_html,
    "json": to_json,
}
