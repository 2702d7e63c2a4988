"""`qwenvl-eval report`: one self-contained HTML file a person can browse offline.

Everything is inline (CSS, JS, images as small JPEG data URIs) and a Content-Security-Policy
meta tag forbids the page any network request. Items travel as one JSON blob that the
page's script renders, so the filters (wrong items, parse failures) need no server."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..semantics import MetricMeaning
from ..types import Document, GenerateRequest, Image, ItemResult, ScoreRequest, Text
from .compare import DEFAULT_MAX_DROP, Comparison, compare_runs, exit_code, status, verdict_head
from .runs import Run
from .scoretable import task_order

THUMB = 320  # longest side of an embedded image, pixels
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
REFERENCE_FIELDS = ("answers", "answer", "references", "bbox", "choices")


def _thumbnail(doc: Document | None) -> tuple[str | None, list[int] | None]:
    if doc is None or not doc.images:
        return None, None
    from ..model.preprocess import ImageDecodeError, decode_image

    try:
        im = decode_image(doc.images[0])  # bounded, as the model's own decoding
    except (OSError, ImageDecodeError):
        return None, None
    size = list(im.size)
    im.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), size


def _prompt_text(request: GenerateRequest | ScoreRequest | None) -> str:
    if request is None:
        return ""
    text = "".join(
        p.text if isinstance(p, Text) else "<image>" if isinstance(p, Image) else ""
        for p in request.parts
    )
    if isinstance(request, ScoreRequest):
        text += "\n[options: " + " | ".join(request.options) + "]"
    return text


def _box(v: Any) -> list[float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 4:
        try:
            return [float(x) for x in v]
        except (TypeError, ValueError):
            return None
    return None


# Prepares a finished run's task again, as the run did: (results.json, task, data root) ->
# an object with `docs` and `requests`. Given by the caller (the CLI passes the evaluator's
# `prepare_saved_task`): results/ reads and writes run files and does not call back up.
PrepareSaved = Callable[[dict[str, Any], str, "str | None"], Any]


def _load_docs(
    run: Run, task: str, data_dir: str | None, prepare: PrepareSaved
) -> tuple[dict, dict, str | None]:
    """The task's documents and requests, read again from the data the run used."""
    try:
        prepared = prepare(run.results, task, data_dir)
    except UserError as exc:
        return {}, {}, f"images and prompts unavailable: {exc}"
    return (
        {d.id: d for d in prepared.docs},
        {r.id: r for r in prepared.requests},
        None,
    )


def _item_row(
    it: ItemResult, doc: Document | None, request: Any, meaning: MetricMeaning | None
) -> dict[str, Any]:
    img, size = _thumbnail(doc)
    fields = doc.fields if doc else {}
    refs = {k: fields[k] for k in REFERENCE_FIELDS if k in fields}
    key = meaning.item_key if meaning else None
    score = it.score.get(key) if key else None
    wrong = meaning is not None and score is not None and meaning.is_right(score) is False
    row: dict[str, Any] = {
        "id": it.id,
        "prompt": _prompt_text(request),
        "output": it.output,
        "answer": it.answer,
        "refs": refs,
        "score": it.score,
        # What the browser sorts and filters by: the headline's per-item score.
        "key_score": score if isinstance(score, (int, float)) else None,
        "error": it.error,
        "wrong": bool(wrong or it.error),
        "parse_failed": bool(it.extra.get("parse_failed")),
        "img": img,
        "size": size,
    }
    gt, pred = _box(fields.get("bbox")), _box(it.answer)
    if gt is not None and size is not None:
        row["boxes"] = {"gt": gt, "pred": pred}
    return row


def number(v: Any) -> str:
    """A score as a person reads it: two decimals, '-' if none."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-" if v is None else html.escape(str(v))
    if not math.isfinite(v):
        return str(v)
    return f"{v:.2f}"


def _signed(v: float) -> str:
    return ("+" if v > 0 else "") + number(v) if math.isfinite(v) else str(v)


def _scores_table(run: Run, baseline: Run | None) -> str:
    """One row per task and metric (a tall table fits any screen, however many tasks)."""
    head = ["task", "metric"] + (["baseline", "current", "&Delta;"] if baseline else ["score"])
    rows = []
    for task in task_order(list(run.tasks)):
        metrics = run.tasks[task].get("metrics", {})
        headline = run.headline(task)
        for m, v in metrics.items():
            cls = ' class="headline"' if m == headline else ""
            cells = [html.escape(task), html.escape(m)]
            if baseline is not None:
                b = baseline.tasks.get(task, {}).get("metrics", {}).get(m)
                delta = (
                    _signed(float(v) - float(b))
                    if isinstance(v, (int, float)) and isinstance(b, (int, float))
                    else "-"
                )
                cells += [number(b), number(v), delta]
            else:
                cells.append(number(v))
            rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return '<p class="k">No scores in this run.</p>'
    return (
        '<table class="scores" id="scores"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _gate_section(cmp: Comparison, baseline: Run) -> str:
    """Per task and metric: the paired difference with its confidence interval and the
    gate's status; above it, a warning for every task the runs cannot be compared on."""
    parts = []
    blocked = {**cmp.untested, **cmp.not_comparable}
    if blocked or cmp.run_reasons:
        reasons = "".join(f"<li><b>both runs</b>: {html.escape(r)}</li>" for r in cmp.run_reasons)
        reasons += "".join(
            f"<li><b>{html.escape(t)}</b>: {html.escape('; '.join(r))}</li>"
            for t, r in sorted(blocked.items())
        )
        parts.append(
            '<div class="warning" id="not-comparable"><b>Warning: the baseline is not '
            "comparable</b> on these tasks; their differences and flipped items are not "
            f"evidence of a change in the model.<ul>{reasons}</ul></div>"
        )
    # The gate's own verdict and row statuses: the report never judges differently.
    good = exit_code(cmp) == 0
    verdict = (
        f'<p class="verdict {"good" if good else "bad"}">Gate: {html.escape(verdict_head(cmp))}</p>'
    )
    level = 100 * (1 - cmp.alpha)
    rows = []
    for d in cmp.diffs:
        word = status(cmp, d)
        cls = "bad" if word in ("REGRESSION", "not comparable") else ""
        rows.append(
            f'<tr class="{cls}"><td>{html.escape(d.task)}</td><td>{html.escape(d.metric)}</td>'
            f"<td>{_signed(d.diff)}</td><td>[{_signed(d.ci_low)}, {_signed(d.ci_high)}]</td>"
            f"<td>{html.escape(word)}</td></tr>"
        )
    table = (
        '<table class="scores" id="gate"><thead><tr><th>task</th><th>metric</th>'
        f"<th>&Delta; (current &minus; baseline)</th><th>{level:g}% CI</th><th>gate</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    title = f"<h2>Against the baseline {html.escape(baseline.path.name)}</h2>"
    return title + verdict + "".join(parts) + table


def _flip_card(f: Any, docs: dict, requests: dict) -> dict[str, Any]:
    doc = docs.get(f.task, {}).get(f.id)
    img, _ = _thumbnail(doc)
    fields = doc.fields if doc else {}
    return {
        "task": f.task,
        "metric": f.metric,
        "id": f.id,
        "direction": f.direction,
        "prompt": _prompt_text(requests.get(f.task, {}).get(f.id)),
        "refs": {k: fields[k] for k in REFERENCE_FIELDS if k in fields},
        "baseline": f.baseline,
        "current": f.current,
        "img": img,
    }


def embed_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no text in it can close the element
    (`</script>`), open an HTML comment that swallows the closing tag (`<!--<script>`), or
    break a JavaScript line (U+2028/U+2029); each becomes its JSON \\u escape."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def write_report(path: Path, page: str) -> None:
    """Write the page atomically; a folder or an unwritable place is the user's error."""
    from .atomic import write_text_atomic

    if path.is_dir():
        raise UserError(f"--output {path}: is a directory; give the HTML file's path")
    try:
        write_text_atomic(path, page)
    except OSError as exc:
        raise UserError(
            f"--output {path}: cannot write the report ({exc.strerror or exc})"
        ) from None


def build_report(
    run: Run,
    baseline: Run | None = None,
    *,
    prepare: PrepareSaved,
    data_dir: str | None = None,
    max_items: int = 200,
) -> str:
    tasks_data = []
    docs_of: dict[str, dict] = {}
    requests_of: dict[str, dict] = {}
    for task in task_order(list(run.tasks)):
        head = run.headline(task)
        meaning = run.meanings(task).get(head or "")
        docs, requests, problem = _load_docs(run, task, data_dir, prepare)
        docs_of[task], requests_of[task] = docs, requests
        items = run.items(task)
        rows = [_item_row(it, docs.get(it.id), requests.get(it.id), meaning) for it in items]
        tasks_data.append(
            {
                "task": task,
                "headline": head,
                "key": meaning.item_key if meaning else None,
                "total": len(rows),
                "items": rows[:max_items],
                "note": problem,
                "notes": run.tasks[task].get("notes", []),
                "grounding": any("boxes" in r for r in rows),
            }
        )
    flips: list[dict[str, Any]] = []
    hidden: dict[str, int] = {}
    gate = ""
    if baseline is not None:
        cmp = compare_runs(baseline, run, max_drop=DEFAULT_MAX_DROP, resamples=1000)
        gate = _gate_section(cmp, baseline)
        gated = {(d.task, d.metric) for d in cmp.diffs if d.gated}
        for f in cmp.flips:
            if (f.task, f.metric) not in gated:  # one entry per item: the headline metric
                continue
            if f.task in cmp.not_comparable:  # not a change of the model: counted, not shown
                hidden[f.task] = hidden.get(f.task, 0) + 1
                continue
            flips.append(_flip_card(f, docs_of, requests_of))
    data = {
        "title": f"{Path(run.label).name or run.label}: {run.path.name}",
        "model": run.results["model"],
        "baseline": str(baseline.path.name) if baseline else None,
        "tasks": tasks_data,
        "flips": flips,
        "hidden_flips": hidden,
    }
    page = _PAGE
    # The data goes in last: nothing in it can be mistaken for a placeholder.
    for name, value in (
        ("CSP", CSP),
        ("TITLE", html.escape(data["title"])),
        ("CSS", _CSS),
        ("JS", _JS),
        ("GATE", gate),
        ("TABLE", _scores_table(run, baseline)),
        ("DATA", embed_json(data)),
    ):
        page = page.replace(f"@@{name}@@", value)
    return page


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1360px}
table.scores{border-collapse:collapse;margin:.5em 0}
table.scores td,table.scores th{border:1px solid #ccc;padding:3px 8px;text-align:right}
table.scores td:nth-child(-n+2),table.scores th:nth-child(-n+2){text-align:left}
tr.headline td{font-weight:bold}
tr.bad td{background:#fde8e8}
.verdict{font-size:16px;font-weight:bold;padding:6px 10px;display:inline-block}
.verdict.bad{background:#fde8e8;color:#900}
.verdict.good{background:#e6f4e6;color:#060}
.warning{border:2px solid #c60;background:#fff4e0;padding:8px 12px;margin:8px 0}
.item{display:grid;grid-template-columns:330px 1fr;gap:12px;border-top:1px solid #ddd;padding:8px 0}
.item.wrong{background:#fff6f6}
.thumb svg{max-width:320px;height:auto;display:block}
rect.box-gt{fill:none;stroke:#0a0;stroke-width:3px;vector-effect:non-scaling-stroke}
rect.box-pred{fill:none;stroke:#e00;stroke-width:3px;stroke-dasharray:6 3;
vector-effect:non-scaling-stroke}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px;background:#f6f6f6;
padding:4px}
.k{color:#666;font-size:12px}
.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:4px 0}
.controls input[type=number]{width:5em}
.flip{display:grid;grid-template-columns:200px 1fr 1fr 1fr;gap:10px;border-top:1px solid #ddd;
padding:6px 0}
.legend span{margin-right:1em}
"""

_JS = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const esc = s => String(s ?? '').replace(/[&<>"']/g,
  c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
// Numbers as a person reads them: at most two decimals, no float noise (68.39999999999999).
const num = v => Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));
function fmt(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return num(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return '[' + v.map(fmt).join(', ') + ']';
  if (typeof v === 'object')
    return Object.entries(v).map(([k, x]) => `${k}: ${fmt(x)}`).join('\n');
  return String(v);
}
const scoreText = s => Object.entries(s || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(' · ');
function rect(b, cls) {
  if (!b) return '';
  return `<rect class="${cls}" x="${num(b[0])}" y="${num(b[1])}" width="${num(b[2]-b[0])}" ` +
         `height="${num(b[3]-b[1])}"></rect>`;
}
function picture(it) {
  if (!it.img) return '<div class="k">(no image)</div>';
  if (!it.size) return `<img src="${it.img}" width="200">`;
  const [w, h] = it.size, b = it.boxes || {};
  return `<svg viewBox="0 0 ${w} ${h}" width="320"><image href="${it.img}" x="0" y="0" ` +
    `width="${w}" height="${h}" preserveAspectRatio="none"></image>` +
    rect(b.gt, 'box-gt') + rect(b.pred, 'box-pred') + '</svg>';
}
function itemHtml(it) {
  const cls = 'item' + (it.wrong ? ' wrong' : '') + (it.parse_failed ? ' parse-failed' : '');
  return `<div class="${cls}" data-id="${esc(it.id)}"><div class="thumb">${picture(it)}</div>` +
    `<div><div><b>${esc(it.id)}</b> <span class="score">${esc(scoreText(it.score))}</span>` +
    (it.parse_failed ? ' <b class="k">parse failure</b>' : '') +
    (it.error ? ` <b class="k">error: ${esc(it.error)}</b>` : '') + '</div>' +
    `<div class="k">prompt</div><pre>${esc(it.prompt)}</pre>` +
    `<div class="k">raw output</div><pre class="output">${esc(it.output)}</pre>` +
    `<div class="k">parsed answer</div><pre class="answer">${esc(fmt(it.answer))}</pre>` +
    `<div class="k">references</div><pre>${esc(fmt(it.refs))}</pre></div></div>`;
}
const haystack = it => [it.id, it.prompt, it.output, fmt(it.answer), fmt(it.refs)]
  .join('\n').toLowerCase();
const SORTS = {
  id: (a, b) => String(a.id).localeCompare(String(b.id), undefined, {numeric: true}),
  'score-asc': (a, b) => (a.key_score ?? -Infinity) - (b.key_score ?? -Infinity),
  'score-desc': (a, b) => (b.key_score ?? -Infinity) - (a.key_score ?? -Infinity),
  length: (a, b) => String(a.output ?? '').length - String(b.output ?? '').length,
};
function renderTask(sec, t) {
  const q = (id) => sec.querySelector(id);
  const wrong = q('.f-wrong').checked, pf = q('.f-parse').checked;
  const text = q('.f-search').value.trim().toLowerCase();
  const lo = q('.f-min').value === '' ? -Infinity : Number(q('.f-min').value);
  const hi = q('.f-max').value === '' ? Infinity : Number(q('.f-max').value);
  const ranged = lo !== -Infinity || hi !== Infinity;
  const shown = t.items.filter(it => (!wrong || it.wrong) && (!pf || it.parse_failed) &&
    (!text || haystack(it).includes(text)) &&
    (!ranged || (it.key_score !== null && it.key_score >= lo && it.key_score <= hi)));
  shown.sort(SORTS[q('.f-sort').value]);
  q('.count').textContent =
    `${shown.length} shown of ${t.items.length} embedded (${t.total} items)`;
  q('.items').innerHTML = shown.map(itemHtml).join('');
}
// A view can be linked: #search=...&sort=score-desc&min=0.5&max=1 presets every task's filters.
const VIEW = new URLSearchParams(location.hash.slice(1));
const PRESET = {search: '.f-search', sort: '.f-sort', min: '.f-min', max: '.f-max'};
const root = document.getElementById('tasks');
for (const t of D.tasks) {
  const sec = document.createElement('section');
  sec.className = 'task';
  sec.id = 'task-' + t.task;
  sec.innerHTML = `<h2>${esc(t.task)} <span class="k">headline ${esc(t.headline)}</span></h2>` +
    (t.note ? `<p class="k">${esc(t.note)}</p>` : '') +
    t.notes.map(n => `<p class="k">${esc(n)}</p>`).join('') +
    '<div class="controls"><input type="search" class="f-search" ' +
    'placeholder="search question, answer, id"> ' +
    '<label>sort <select class="f-sort"><option value="id">id</option>' +
    '<option value="score-asc">score, low first</option>' +
    '<option value="score-desc">score, high first</option>' +
    '<option value="length">answer length</option></select></label> ' +
    `<label>${esc(t.key)} from <input type="number" step="any" class="f-min"> ` +
    'to <input type="number" step="any" class="f-max"></label> ' +
    '<label><input type="checkbox" class="f-wrong"> wrong only</label> ' +
    '<label><input type="checkbox" class="f-parse"> parse failures only</label> ' +
    '<span class="count k"></span></div>' +
    (t.grounding ? '<div class="legend k"><span style="color:#0a0">&#9632; ground truth</span>' +
      '<span style="color:#e00">&#9632; predicted</span></div>' : '') +
    '<div class="items"></div>';
  root.appendChild(sec);
  for (const [name, sel] of Object.entries(PRESET))
    if (VIEW.has(name)) sec.querySelector(sel).value = VIEW.get(name);
  for (const el of sec.querySelectorAll('input, select')) {
    el.addEventListener('input', () => renderTask(sec, t));
    el.addEventListener('change', () => renderTask(sec, t));
  }
  renderTask(sec, t);
}
const answerOf = a => `<pre>${esc(a.output)}</pre><div class="k">parsed: ${esc(fmt(a.answer))}` +
  `<br>${esc(scoreText(a.score))}</div>`;
if (D.baseline) {
  const sec = document.getElementById('flips');
  const hidden = Object.entries(D.hidden_flips || {});
  sec.innerHTML = `<h2>Flipped items against ${esc(D.baseline)}</h2>` +
    hidden.map(([t, n]) => `<p class="warning">${n} flipped items of ${esc(t)} not shown: ` +
      'the baseline is not comparable on this task.</p>').join('') +
    (D.flips.length ? '' : '<p>No item changed between right and wrong.</p>') +
    D.flips.map(f => `<div class="flip" data-id="${esc(f.id)}">` +
      `<div>${f.img ? `<img src="${f.img}" width="190">` : ''}` +
      `<div><b>${esc(f.task)}</b> ${esc(f.id)}<br>${esc(f.direction)} (${esc(f.metric)})</div>` +
      `</div><div><div class="k">question</div><pre class="question">${esc(f.prompt)}</pre>` +
      `<div class="k">references</div><pre class="refs">${esc(fmt(f.refs))}</pre></div>` +
      `<div><div class="k">baseline answer</div>${answerOf(f.baseline)}</div>` +
      `<div><div class="k">current answer</div>${answerOf(f.current)}</div></div>`).join('');
}
const widest = Math.max(...[...document.querySelectorAll('table.scores')]
  .map(t => t.getBoundingClientRect().width), 0);
document.body.dataset.tableWidth = String(Math.ceil(widest));
document.body.dataset.rendered = 'yes';
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<title>@@TITLE@@</title><style>@@CSS@@</style></head>
<body><h1>@@TITLE@@</h1>
@@GATE@@
<h2>Scores</h2>
@@TABLE@@
<section id="flips"></section>
<div id="tasks"></div>
<script type="application/json" id="data">@@DATA@@</script>
<script>@@JS@@</script>
</body></html>
"""
