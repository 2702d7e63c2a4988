"""Referring-expression grounding: box parsing per model family, IoU, accuracy at IoU >= 0.5.

Each family writes boxes differently, and each gets exactly one parser: trying several
interpretations and keeping the best would inflate accuracy. Every parser returns
pixel ``(x1, y1, x2, y2)`` in the ORIGINAL image, or ``None`` when the text holds no
box of that family's format (or the sizes are unusable).

- ``qwen-vl``: ``<box>(x1,y1),(x2,y2)</box>`` with integers in [0, 1000). Like the
  paper's script: the first match of ``\\((.*?)\\),\\((.*?)\\)`` (so "(a,b), (c,d)" with
  a space between the points does not match), each group split on "," into exactly two
  floats, divided by 999 and multiplied by the image width/height. The script scores a
  failed parse as the box (0, 0, 0, 0), i.e. IoU 0: :func:`box_iou` gives 0 for
  ``None`` and :func:`grounding_scores` counts the failures.
- ``qwen2-vl``: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (the tags may have been
  dropped by skip_special_tokens, so the bare pair is accepted: same pattern), first
  match, whitespace tolerated, coordinates in [0, 1000) divided by **1000**. Qwen2-VL
  states its boxes are "normalized within [0, 1000)": the training data maps a pixel
  to ``int(x / W * 1000)``, whose inverse is ``k / 1000 * W`` (``k / 999`` would stretch
  every box by 0.1 % and is the Qwen-VL eval script's own convention, not Qwen2-VL's).
- ``qwen2.5-vl``: absolute pixel coordinates of the RESIZED model input, as JSON
  ``[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`` (possibly in a ```json fence or
  truncated) or a bare ``[x1, y1, x2, y2]``: the first ``"bbox_2d"`` list of four
  numbers, else the first list of four numbers. Mapped back with
  ``x * W / W_in``, ``y * H / H_in``; ``input_size=(W_in, H_in)`` is required (the
  processor always resizes to multiples of 28; see :func:`input_size_from_grid`) and
  without it the result is ``None`` rather than a box in the wrong frame.
- ``qwen3-vl``: the same JSON forms as qwen2.5-vl, but relative coordinates in
  [0, 1000] (Qwen3-VL's documentation), divided by 1000.

Coordinates are not clipped or reordered: a model that writes a box outside the image
or with x2 < x1 is scored as written. Non-finite coordinates make the parse fail.

Paper mode (``qwen-vl``): :func:`parse_qwen_vl_coords` and :func:`eval_mm_iou` reproduce
eval_mm/evaluate_grounding.py arithmetic exactly: the box is scaled and the IoU computed in
torch **float32** (``tensor(box, float32) / 999``, then ``*= width`` / ``*= height``, then
torchvision's ``box_iou``), so an IoU within float32 rounding of 0.5 falls on the same side
as the paper's (e.g. ``(0,0),(162,999)`` on a 333x333 image against ``[0, 0, 108, 333]``:
exactly 1/2, eval_mm 0.49999994, a miss). ``nan``/``inf`` coordinates are kept as a box
(``float("nan")`` parses), as the script keeps them: the IoU is NaN or 0, a miss. The other
families use float64 (:func:`box_iou`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from qwenvl_eval.metrics._inputs import as_text

Box = tuple[float, float, float, float]

PAPER_NO_MATCH_BOX: Box = (0.0, 0.0, 0.0, 0.0)
"""What the Qwen-VL script substitutes for an unparseable answer (IoU 0 with any box)."""

_QWEN_VL = re.compile(r"\((.*?)\),\((.*?)\)")
_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"
_QWEN2_VL = re.compile(rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)")
_FOUR = rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]"
_BBOX_2D = re.compile(rf"[\"']bbox_2d[\"']\s*:\s*{_FOUR}")
_BARE_LIST = re.compile(_FOUR)


def _floats(obj: object, n: int) -> tuple[float, ...] | None:
    """``n`` finite floats from a list/tuple/array of numbers, else ``None``."""
    if obj is None or isinstance(obj, (str, bytes)):
        return None
    try:
        values = tuple(float(v) for v in obj)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values


def _size(size: object) -> tuple[float, float] | None:
    """A usable (width, height): two finite positive numbers."""
    values = _floats(size, 2)
    if values is None or values[0] <= 0 or values[1] <= 0:
        return None
    return values[0], values[1]


def _scaled(
    coords: Sequence[float] | None, grid: Sequence[float], size: Sequence[float]
) -> Box | None:
    """``coords`` on a ``grid`` (width, height) of units mapped to pixels of ``size``."""
    if coords is None:
        return None
    x1, y1, x2, y2 = coords
    (gw, gh), (w, h) = grid, size
    box = _floats((x1 / gw * w, y1 / gh * h, x2 / gw * w, y2 / gh * h), 4)
    return None if box is None else (box[0], box[1], box[2], box[3])


def _first_json_box(text: str) -> Sequence[float] | None:
    """The first ``"bbox_2d": [a, b, c, d]``, else the first ``[a, b, c, d]``."""
    match = _BBOX_2D.search(text) or _BARE_LIST.search(text)
    return tuple(float(v) for v in match.groups()) if match else None


def parse_qwen_vl_coords(text: object) -> Box | None:
    """The paper script's parse, unscaled: the first ``(a,b),(c,d)`` match, each point split
    on "," into exactly two ``float``s (so "nan", "inf", " 12", "1e3" are numbers, as in the
    script). ``None`` where the script falls back to the box (0, 0, 0, 0)."""
    raw = as_text(text)
    match = _QWEN_VL.search(raw) if raw is not None else None
    if match is None:
        return None
    first, second = match.group(1), match.group(2)
    if "," not in first or "," not in second:
        return None
    try:
        x1, y1 = (float(v) for v in first.split(","))
        x2, y2 = (float(v) for v in second.split(","))
    except ValueError:  # not two numbers per point: the script's bare except
        return None
    return (x1, y1, x2, y2)


def _parse_qwen_vl(text: str, size: tuple[float, float], _: object) -> Box | None:
    """The paper script: first ``(a,b),(c,d)`` match, two floats per point, / 999."""
    return _scaled(parse_qwen_vl_coords(text), (999.0, 999.0), size)


def _parse_qwen2_vl(text: str, size: tuple[float, float], _: object) -> Box | None:
    """First ``(x1,y1),(x2,y2)`` (box tags optional, whitespace tolerated), / 1000."""
    match = _QWEN2_VL.search(text)
    coords = tuple(float(v) for v in match.groups()) if match else None
    return _scaled(coords, (1000.0, 1000.0), size)


def _parse_qwen2_5_vl(text: str, size: tuple[float, float], input_size: object) -> Box | None:
    """First JSON box in pixels of the resized input, mapped back to the original."""
    resized = _size(input_size)
    if resized is None:
        return None
    return _scaled(_first_json_box(text), resized, size)


def _parse_qwen3_vl(text: str, size: tuple[float, float], _: object) -> Box | None:
    """First JSON box, relative 0..1000, / 1000."""
    return _scaled(_first_json_box(text), (1000.0, 1000.0), size)


_PARSERS = {
    "qwen-vl": _parse_qwen_vl,
    "qwen2-vl": _parse_qwen2_vl,
    "qwen2.5-vl": _parse_qwen2_5_vl,
    "qwen3-vl": _parse_qwen3_vl,
}
BOX_FAMILIES = tuple(_PARSERS)


def parse_box(
    text: object,
    family: str,
    image_size: tuple[float, float],
    input_size: tuple[float, float] | None = None,
) -> Box | None:
    """The box in ``text`` as pixel x1y1x2y2 of the original image, or ``None``.

    ``image_size`` and ``input_size`` are ``(width, height)``; ``input_size`` (the
    resized image the model saw) is used by ``qwen2.5-vl`` only. An unknown family is
    a programming error (``ValueError``); bad text or sizes give ``None``.
    """
    parser = _PARSERS.get(family)
    if parser is None:
        raise ValueError(f"unknown box family {family!r}; choose from {BOX_FAMILIES}")
    raw = as_text(text)
    size = _size(image_size)
    if raw is None or size is None:
        return None
    return parser(raw, size, input_size)


def input_size_from_grid(grid_thw: Sequence[int], patch_size: int = 14) -> tuple[int, int] | None:
    """(width, height) of the resized image from a Qwen2/2.5/3-VL ``image_grid_thw`` row.

    The grid counts ``patch_size`` pixel patches: (temporal, rows, columns). ``None``
    unless three finite numbers with positive rows and columns.
    """
    values = _floats(grid_thw, 3)
    if values is None or values[1] <= 0 or values[2] <= 0:
        return None
    return int(values[2]) * patch_size, int(values[1]) * patch_size


def coco_xywh_to_xyxy(box: object) -> Box | None:
    """COCO ``[x, y, w, h]`` to ``(x1, y1, x2, y2)``; ``None`` unless four finite numbers."""
    values = _floats(box, 4)
    if values is None:
        return None
    x, y, bw, bh = values
    return (x, y, x + bw, y + bh)


def box_iou(a: object, b: object) -> float:
    """Intersection over union of two x1y1x2y2 boxes on continuous coordinates (no +1).

    Defined as 0.0, never NaN or an exception, when either box is ``None``, not four
    finite numbers, or inverted (x2 < x1 or y2 < y1), and when the union is empty (two
    zero-area boxes). A zero-area box against a real one gives 0.0.
    """
    first, second = _floats(a, 4), _floats(b, 4)
    if first is None or second is None:
        return 0.0
    ax1, ay1, ax2, ay2 = first
    bx1, by1, bx2, by2 = second
    if ax2 < ax1 or ay2 < ay1 or bx2 < bx1 or by2 < by1:
        return 0.0
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if union <= 0:
        return 0.0
    return inter / union


def outside_image(box: object, image_size: object) -> bool:
    """Whether a predicted x1y1x2y2 box reaches outside the image (a negative origin, or past
    the width or height). Such a box is scored as given, unclipped, as the Qwen-VL eval_mm
    script scores it: the part outside the image only adds to the union. Non-finite boxes
    are not "outside" (they are misses of their own)."""
    values, size = _floats(box, 4), _size(image_size)
    if values is None or size is None:
        return False
    x1, y1, x2, y2 = values
    return min(x1, y1) < 0 or max(x1, x2) > size[0] or max(y1, y2) > size[1]


def eval_mm_box(coords: Sequence[float] | None, image_size: Sequence[float]) -> Box:
    """The predicted box in pixels exactly as eval_mm computes it, in float32:
    ``tensor(coords, float32) / 999``, x times the width, y times the height. ``None`` (no
    parse) is the script's (0, 0, 0, 0). Non-finite values stay as they are."""
    import torch

    box = torch.tensor(coords if coords is not None else PAPER_NO_MATCH_BOX, dtype=torch.float32)
    box = box.view(-1, 4) / 999
    box[:, 0::2] *= image_size[0]
    box[:, 1::2] *= image_size[1]
    x1, y1, x2, y2 = box[0].tolist()
    return (x1, y1, x2, y2)


def eval_mm_iou(coords: Sequence[float] | None, image_size: Sequence[float], gt: object) -> float:
    """IoU of a paper-mode answer with the x1y1x2y2 ground truth, in float32 exactly as
    eval_mm (its ``box_iou`` on torchvision's ``box_area``: no clamping of inverted boxes,
    ``inter / (area1 + area2 - inter)``). May be NaN (a NaN coordinate, or two empty boxes):
    NaN >= 0.5 is False, a miss, as in the script. ``image_size`` is (width, height)."""
    import torch

    pred = torch.tensor(eval_mm_box(coords, image_size), dtype=torch.float32).view(-1, 4)
    target = torch.tensor([float(v) for v in gt], dtype=torch.float32).view(-1, 4)  # type: ignore[union-attr]

    def area(b: torch.Tensor) -> torch.Tensor:
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    lt = torch.max(pred[:, None, :2], target[:, :2])
    rb = torch.min(pred[:, None, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area(pred)[:, None] + area(target) - inter
    return (inter / union).item()


class GroundingScores(NamedTuple):
    """Accuracy at the IoU threshold and mean IoU, both in [0, 1]."""

    accuracy: float
    mean_iou: float
    count: int
    parse_failures: int


def grounding_scores(ious: Iterable[float | None], threshold: float = 0.5) -> GroundingScores:
    """Aggregate per-item IoUs; ``None`` marks a parse failure and counts as IoU 0.

    Scoring failures as 0 is what the paper's script does (its (0, 0, 0, 0) box), so the
    accuracy is comparable; ``parse_failures`` counts the ``None`` entries. NaN or
    non-numbers count as IoU 0 (not as parse failures). An empty input gives zeros.
    """
    count = failures = hits = 0
    total = 0.0
    for iou in ious:
        count += 1
        value = _floats((iou,), 1)
        if value is None:
            failures += iou is None
            continue
        total += value[0]
        if value[0] >= threshold:
            hits += 1
    if count == 0:
        return GroundingScores(0.0, 0.0, 0, 0)
    return GroundingScores(hits / count, total / count, count, failures)
