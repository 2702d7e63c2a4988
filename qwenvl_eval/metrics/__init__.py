"""Metrics: pure functions of strings and numbers, each tested against reference data.

One module per metric family; see each module's docstring for the exact protocol it
reproduces. Bad input (``None``, non-strings, NaN, empty) gives a defined score
(0, or ``None`` for a box parse), never an exception; an unknown ``mode``/``family``/
metric name is a programming error and raises ``ValueError``.
"""

from qwenvl_eval.metrics.anls import anls, anls_normalize, anls_similarity
from qwenvl_eval.metrics.captioning import CAPTION_METRICS, caption_scores
from qwenvl_eval.metrics.exact import exact_match, gqa_postprocess
from qwenvl_eval.metrics.grounding import (
    BOX_FAMILIES,
    PAPER_NO_MATCH_BOX,
    GroundingScores,
    box_iou,
    coco_xywh_to_xyxy,
    eval_mm_box,
    eval_mm_iou,
    grounding_scores,
    input_size_from_grid,
    parse_box,
    parse_qwen_vl_coords,
)
from qwenvl_eval.metrics.multiple_choice import (
    GroupAccuracy,
    argmin_option,
    bf16_round,
    eval_mm_bf16_loss,
    mean_loss,
    scienceqa_accuracy,
)
from qwenvl_eval.metrics.ptb import ptb_tokenize
from qwenvl_eval.metrics.relaxed import parse_relaxed_number, relaxed_accuracy
from qwenvl_eval.metrics.vqa import (
    vqa_accuracy,
    vqa_normalize,
    vqa_process_digit_article,
    vqa_process_punctuation,
)

__all__ = [
    "BOX_FAMILIES",
    "CAPTION_METRICS",
    "PAPER_NO_MATCH_BOX",
    "GroundingScores",
    "GroupAccuracy",
    "anls",
    "anls_normalize",
    "anls_similarity",
    "argmin_option",
    "bf16_round",
    "box_iou",
    "caption_scores",
    "coco_xywh_to_xyxy",
    "eval_mm_bf16_loss",
    "eval_mm_box",
    "eval_mm_iou",
    "exact_match",
    "gqa_postprocess",
    "grounding_scores",
    "input_size_from_grid",
    "mean_loss",
    "parse_box",
    "parse_qwen_vl_coords",
    "parse_relaxed_number",
    "ptb_tokenize",
    "relaxed_accuracy",
    "scienceqa_accuracy",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_process_digit_article",
    "vqa_process_punctuation",
]
