"""Captioning metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) as pycocoevalcap computes them.

The scores are those of pycocoevalcap's ``COCOEvalCap`` (the coco-caption toolkit the
Qwen-VL paper and every peer harness use), with three differences that change speed
and robustness, not numbers:

- references and predictions are PTB-tokenized once, in one Java call
  (:mod:`qwenvl_eval.metrics.ptb`), and the tokens are shared by all scorers;
- METEOR's JVM is started before tokenization and runs beside the Python scorers
  (:mod:`qwenvl_eval.metrics.meteor`);
- missing, ``None`` or non-string predictions are scored as the empty caption instead
  of crashing the run.

SPICE is not supported: it needs a separate Stanford CoreNLP model download, minutes
per thousand captions and is not part of the Qwen-VL protocol.

CIDEr's document frequencies come from the references being scored, so a subset of
a split (``--limit``, or a NoCaps domain scored on its own) is not comparable with
the whole split.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from qwenvl_eval.metrics._inputs import as_text, as_text_list
from qwenvl_eval.metrics.meteor import MeteorProcess
from qwenvl_eval.metrics.ptb import ptb_tokenize

CAPTION_METRICS: tuple[str, ...] = ("Bleu", "METEOR", "ROUGE_L", "CIDEr")
"""Metric groups :func:`caption_scores` computes by default (``Bleu`` = BLEU-1..4)."""

BLEU_KEYS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")

_GROUP_OF = {
    "Bleu": "Bleu",
    **{key: "Bleu" for key in BLEU_KEYS},
    "METEOR": "METEOR",
    "ROUGE_L": "ROUGE_L",
    "CIDEr": "CIDEr",
}


def _metric_groups(metrics: Iterable[str]) -> set[str]:
    """Validate metric names; BLEU-n are computed together, so any of them means all four."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    groups = set()
    for name in metrics:
        if name == "SPICE":
            raise ValueError("SPICE is not supported by caption_scores (see module docstring)")
        if name not in _GROUP_OF:
            raise ValueError(f"unknown caption metric {name!r}; choose from {sorted(_GROUP_OF)}")
        groups.add(_GROUP_OF[name])
    return groups


def _collect(
    references: object, predictions: object
) -> tuple[list[Hashable], list[list[str]], list[str], int, int]:
    """Items to score: ids with at least one string reference, in ``references`` order."""
    if not isinstance(references, Mapping):
        return [], [], [], 0, 0
    preds = predictions if isinstance(predictions, Mapping) else {}
    ids: list[Hashable] = []
    refs: list[list[str]] = []
    hyps: list[str] = []
    missing = skipped = 0
    for key, value in references.items():
        item_refs = as_text_list(value)
        if not item_refs:
            skipped += 1
            continue
        hyp = as_text(preds.get(key))
        if hyp is None:
            missing += 1
            hyp = ""
        ids.append(key)
        refs.append(item_refs)
        hyps.append(hyp)
    return ids, refs, hyps, missing, skipped


def caption_scores(
    references: Mapping[Hashable, Iterable[str]],
    predictions: Mapping[Hashable, str | None],
    metrics: Iterable[str] = CAPTION_METRICS,
) -> dict[str, Any]:
    """Corpus captioning scores of ``predictions`` against ``references``.

    ``references`` maps an item id to its reference captions (a bare string counts as
    one); ``predictions`` maps the same ids to one caption. Items are those of
    ``references`` that have at least one string reference; a prediction that is
    absent, ``None`` or not a string is scored as ``""``; predictions for unknown ids
    are ignored. ``metrics`` picks any of ``Bleu`` (or ``Bleu_1``..``Bleu_4``),
    ``METEOR`` (the slow one), ``ROUGE_L``, ``CIDEr``.

    Returns (scores in [0, 1] except CIDEr, as pycocoevalcap reports them, not x100):
    the requested ``Bleu_1``..``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr`` floats;
    ``CIDEr_per_item`` (id -> float) when CIDEr is requested; ``count`` (items scored),
    ``missing_predictions`` and ``skipped_references`` (ids without a usable
    reference). With nothing to score every requested score is 0.0 and Java is not
    started.
    """
    groups = _metric_groups(metrics)
    ids, refs, hyps, missing, skipped = _collect(references, predictions)
    result: dict[str, Any] = {
        "count": len(ids),
        "missing_predictions": missing,
        "skipped_references": skipped,
    }
    if not ids:
        for group in groups:
            for key in BLEU_KEYS if group == "Bleu" else (group,):
                result[key] = 0.0
        if "CIDEr" in groups:
            result["CIDEr_per_item"] = {}
        return result

    meteor = MeteorProcess() if "METEOR" in groups else None  # loads while we tokenize
    try:
        flat_refs = [r for item in refs for r in item]
        tokens = ptb_tokenize(flat_refs + hyps)
        gts: dict[int, list[str]] = {}
        start = 0
        for i, item in enumerate(refs):
            gts[i] = tokens[start : start + len(item)]
            start += len(item)
        res = {i: [tokens[start + i]] for i in range(len(ids))}

        meteor_out: dict[str, Any] = {}
        thread = None
        if meteor is not None:
            thread = threading.Thread(
                target=_run_meteor, args=(meteor, gts, res, meteor_out), daemon=True
            )
            thread.start()
        result.update(_python_scores(groups, gts, res, ids))
        if thread is not None:
            thread.join()
            if "error" in meteor_out:
                raise meteor_out["error"]
            result["METEOR"] = meteor_out["score"]
    finally:
        if meteor is not None:
            meteor.close()
    return result


def _run_meteor(
    meteor: MeteorProcess,
    gts: dict[int, list[str]],
    res: dict[int, list[str]],
    out: dict[str, Any],
) -> None:
    try:
        score, _ = meteor.score([gts[i] for i in gts], [res[i][0] for i in gts])
        out["score"] = float(score)
    except BaseException as exc:  # re-raised in the calling thread
        out["error"] = exc


def _python_scores(
    groups: set[str],
    gts: dict[int, list[str]],
    res: dict[int, list[str]],
    ids: list[Hashable],
) -> dict[str, Any]:
    """BLEU, ROUGE-L and CIDEr with pycocoevalcap's own scorers on shared tokens."""
    out: dict[str, Any] = {}
    if "Bleu" in groups:
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        out.update({key: float(v) for key, v in zip(BLEU_KEYS, bleu, strict=True)})
    if "ROUGE_L" in groups:
        from pycocoevalcap.rouge.rouge import Rouge

        rouge, _ = Rouge().compute_score(gts, res)
        out["ROUGE_L"] = float(rouge)
    if "CIDEr" in groups:
        if any(ref for item in gts.values() for ref in item):
            from pycocoevalcap.cider.cider import Cider

            cider, per_item = Cider().compute_score(gts, res)
        else:  # no reference n-gram at all: pycocoevalcap crashes (max of nothing)
            cider, per_item = 0.0, [0.0] * len(ids)
        out["CIDEr"] = float(cider)
        out["CIDEr_per_item"] = {key: float(v) for key, v in zip(ids, per_item, strict=True)}
    return out
