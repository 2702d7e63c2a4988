"""`qwenvl-eval report`: one self-contained HTML file a person can browse offline.

Everything is inline (CSS, JS, images as small JPEG data URIs) and a Content-Security-Policy
meta tag forbids the page any network request. Items travel as one JSON blob that the
page's script renders, so the filters (wrong items, parse failures) need no server."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import Document, GenerateRequest, Image, ItemResult, ScoreRequest, Text
from .compare import ITEM_KEY, compare_runs, is_right
from .render import to_html
from .runs import Run
from .scoretable import runs_table, task_order

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


def _load_docs(run: Run, task: str, data_dir: str | None) -> tuple[dict, dict, str | None]:
    """The task's documents and requests, read again from the data the run used."""
    from ..evaluator import prepare_saved_task

    try:
        prepared = prepare_saved_task(run.results, task, data_dir)
    except UserError as exc:
        return {}, {}, f"images and prompts unavailable: {exc}"
    return (
        {d.id: d for d in prepared.docs},
        {r.id: r for r in prepared.requests},
        None,
    )


def _item_row(
    it: ItemResult, doc: Document | None, request: Any, key: str | None
) -> dict[str, Any]:
    img, size = _thumbnail(doc)
    fields = doc.fields if doc else {}
    refs = {k: fields[k] for k in REFERENCE_FIELDS if k in fields}
    score = it.score.get(key) if key else None
    wrong = score is not None and is_right(key or "", score) is False
    row: dict[str, Any] = {
        "id": it.id,
        "prompt": _prompt_text(request),
        "output": it.output,
        "answer": it.answer,
        "refs": refs,
        "score": it.score,
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


def build_report(
    run: Run, baseline: Run | None = None, *, data_dir: str | None = None, max_items: int = 200
) -> str:
    tasks_data = []
    docs_of: dict[str, dict] = {}
    for task in task_order(list(run.tasks)):
        head = run.headline(task)
        key = ITEM_KEY.get(head or "", head)
        docs, requests, problem = _load_docs(run, task, data_dir)
        docs_of[task] = docs
        items = run.items(task)
        rows = [_item_row(it, docs.get(it.id), requests.get(it.id), key) for it in items]
        tasks_data.append(
            {
                "task": task,
                "headline": head,
                "total": len(rows),
                "items": rows[:max_items],
                "note": problem,
                "notes": run.tasks[task].get("notes", []),
            }
        )
    flips = []
    if baseline is not None:
        cmp = compare_runs(baseline, run, max_drop=0.0, resamples=1000)
        gated = {(d.task, d.metric) for d in cmp.diffs if d.gated}
        for f in cmp.flips:
            if (f.task, f.metric) not in gated:  # one entry per item: the headline metric
                continue
            # Flips pair items of both runs: the task's documents were read above.
            img, size = _thumbnail(docs_of.get(f.task, {}).get(f.id))
            flips.append(
                {
                    "task": f.task,
                    "metric": f.metric,
                    "id": f.id,
                    "direction": f.direction,
                    "baseline": f.baseline,
                    "current": f.current,
                    "img": img,
                }
            )
    data = {
        "title": f"{Path(run.label).name or run.label}: {run.path.name}",
        "model": run.results["model"],
        "baseline": str(baseline.path.name) if baseline else None,
        "tasks": tasks_data,
        "flips": flips,
    }
    table_runs, labels = [run], [f"{run.path.name}"]
    if baseline is not None:
        table_runs = [baseline, run]
        labels = [f"baseline: {baseline.path}", f"current: {run.path}"]
    table = to_html(runs_table(table_runs, all_metrics=True, labels=labels))
    blob = json.dumps(data, ensure_ascii=False, default=str).replace("</", "<\\/")
    page = _PAGE
    # The data goes in last: nothing in it can be mistaken for a placeholder.
    for key, value in (
        ("CSP", CSP),
        ("TITLE", html.escape(data["title"])),
        ("CSS", _CSS),
        ("JS", _JS),
        ("TABLE", table),
        ("DATA", blob),
    ):
        page = page.replace(f"@@{key}@@", value)
    return page


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table.scores{border-collapse:collapse;margin:.5em 0}
table.scores td,table.scores th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td.best{background:#e6f4e6}
.item{display:grid;grid-template-columns:330px 1fr;gap:12px;border-top:1px solid #ddd;padding:8px 0}
.item.wrong{background:#fff6f6}
.thumb svg{max-width:320px;height:auto;display:block}
rect.box-gt{fill:none;stroke:#0a0;stroke-width:3px;vector-effect:non-scaling-stroke}
rect.box-pred{fill:none;stroke:#e00;stroke-width:3px;stroke-dasharray:6 3;
vector-effect:non-scaling-stroke}
pre{white-space:pre-wrap;margin:0;font-size:12px;background:#f6f6f6;padding:4px}
.k{color:#666;font-size:12px}
.flip{display:grid;grid-template-columns:200px 1fr 1fr;gap:10px;border-top:1px solid #ddd;
padding:6px 0}
.legend span{margin-right:1em}
"""

_JS = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const esc = s => String(s ?? '').replace(/[&<>"']/g,
  c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const js = v => esc(typeof v === 'string' ? v : JSON.stringify(v));
function rect(b, cls) {
  if (!b) return '';
  return `<rect class="${cls}" x="${b[0]}" y="${b[1]}" width="${b[2]-b[0]}" ` +
         `height="${b[3]-b[1]}"></rect>`;
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
    `<div><div><b>${esc(it.id)}</b> <span class="k">score</span> ${js(it.score)}` +
    (it.parse_failed ? ' <b class="k">parse failure</b>' : '') +
    (it.error ? ` <b class="k">error: ${esc(it.error)}</b>` : '') + '</div>' +
    `<div class="k">prompt</div><pre>${esc(it.prompt)}</pre>` +
    `<div class="k">raw output</div><pre class="output">${esc(it.output)}</pre>` +
    `<div class="k">parsed answer</div><pre>${js(it.answer)}</pre>` +
    `<div class="k">references</div><pre>${js(it.refs)}</pre></div></div>`;
}
function renderTask(sec, t) {
  const wrong = sec.querySelector('.f-wrong').checked;
  const pf = sec.querySelector('.f-parse').checked;
  const shown = t.items.filter(it => (!wrong || it.wrong) && (!pf || it.parse_failed));
  sec.querySelector('.count').textContent =
    `${shown.length} shown of ${t.items.length} embedded (${t.total} items)`;
  sec.querySelector('.items').innerHTML = shown.map(itemHtml).join('');
}
const root = document.getElementById('tasks');
for (const t of D.tasks) {
  const sec = document.createElement('section');
  sec.className = 'task';
  sec.id = 'task-' + t.task;
  sec.innerHTML = `<h2>${esc(t.task)} <span class="k">headline ${esc(t.headline)}</span></h2>` +
    (t.note ? `<p class="k">${esc(t.note)}</p>` : '') +
    t.notes.map(n => `<p class="k">${esc(n)}</p>`).join('') +
    '<label><input type="checkbox" class="f-wrong"> wrong only</label> ' +
    '<label><input type="checkbox" class="f-parse"> parse failures only</label> ' +
    '<span class="count k"></span>' +
    '<div class="legend k"><span style="color:#0a0">&#9632; ground truth</span>' +
    '<span style="color:#e00">&#9632; predicted</span></div><div class="items"></div>';
  root.appendChild(sec);
  for (const box of sec.querySelectorAll('input'))
    box.addEventListener('change', () => renderTask(sec, t));
  renderTask(sec, t);
}
if (D.baseline) {
  const sec = document.getElementById('flips');
  sec.innerHTML = `<h2>Flipped items against ${esc(D.baseline)}</h2>` +
    (D.flips.length ? '' : '<p>No item changed between right and wrong.</p>') +
    D.flips.map(f => `<div class="flip"><div>${f.img ? `<img src="${f.img}" width="190">` : ''}` +
      `<div><b>${esc(f.task)}</b> ${esc(f.id)}<br>${esc(f.direction)} (${esc(f.metric)})</div>` +
      `</div><div><div class="k">baseline</div><pre>${js(f.baseline)}</pre></div>` +
      `<div><div class="k">current</div><pre>${js(f.current)}</pre></div></div>`).join('');
}
document.body.dataset.rendered = 'yes';
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<title>@@TITLE@@</title><style>@@CSS@@</style></head>
<body><h1>@@TITLE@@</h1>
<h2>Scores</h2>
@@TABLE@@
<section id="flips"></section>
<div id="tasks"></div>
<script type="application/json" id="data">@@DATA@@</script>
<script>@@JS@@</script>
</body></html>
"""
