"""Open-ended VQA: VQAv2, OK-VQA, VizWiz, TextVQA (VQA accuracy) and GQA (exact match).

Paper protocol (Qwen-VL eval_mm/evaluate_vqa.py): `<img>{image}</img>{question} Answer:`,
greedy, 10 new tokens at most, 1 at least, length penalty 1; the output is stripped and
scored with the official VQA code as it was before its 2021 fix ("paper" normalisation).
Test splits without public answers write the server's submission file instead.
"""

from __future__ import annotations

from typing import ClassVar

from .. import metrics as M
from ..registry import register_task
from ..types import Document, FamilyInfo, Generation, ItemResult, Response
from .base import Scored, Task
from .data.gqa import GQASource
from .data.vqa_official import EvalMM, TextVQAFormat, VizWizFormat, VQAPairFormat, VQASource
from .prompts import Chat, Raw

VQA_PROMPTS = {
    "qwen-vl": Raw("<img>{image}</img>{question} Answer:"),
    "chat": Chat("{question}\nAnswer the question using a single word or phrase."),
}
SHORT_ANSWER = Generation(max_new_tokens=10, min_new_tokens=1, length_penalty=1.0)


class VQAAccuracyTask(Task):
    """Scored with VQA accuracy against the 10 human answers."""

    prompts = VQA_PROMPTS
    generation = SHORT_ANSWER
    # Headline in `vqa_mode` (the paper's normalisation by default); the post-2021 official
    # normalisation is reported beside it because the two disagree (e.g. "Yes" vs ten "yes").
    metrics = ("vqa_acc", "vqa_acc_official")
    vqa_mode: ClassVar[str] = "paper"

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        pred = (response.text or "").strip()
        answers = doc.fields["answers"]
        return Scored(
            answer=pred,
            scores={
                "vqa_acc": float(M.vqa_accuracy(pred, answers, mode=self.vqa_mode)),
                "vqa_acc_official": float(M.vqa_accuracy(pred, answers, mode="official")),
            },
        )

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        return [
            f"vqa_acc: VQA accuracy, {self.vqa_mode!r} answer normalisation "
            "(Qwen-VL/LAVIS: the prediction is always normalised); vqa_acc_official: "
            "the official VQA code since 2021"
        ]


class VQASubmissionTask(VQAAccuracyTask):
    """A split without public answers: the stripped output goes to the submission file, as
    the Qwen-VL script writes it (the server normalises)."""

    metrics = ()
    submission_key: ClassVar[str] = "question_id"

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        return Scored(answer=(response.text or "").strip(), scores={})

    def submission(self, items: list[ItemResult], docs: dict[str, Document]) -> list[dict]:
        return [
            {
                self.submission_key: docs[it.id].fields["question_id"],
                "answer": it.answer if isinstance(it.answer, str) else "",
            }
            for it in items
        ]

    def notes(self, limited: bool, seed: int = 0) -> list[str]:
        return [
            "no public answers: predictions are written to the submission file for the "
            "evaluation server" + (" (a --limit run is not a valid submission)" if limited else "")
        ]


# -- data -----------------------------------------------------------------------------------
def _coco(folder: str) -> str:
    return f"{folder}/COCO_{folder}_{{image_id:012d}}.jpg"


VQAV2_VAL = VQASource(
    "vqav2",
    "val",
    VQAPairFormat(
        "v2_OpenEnded_mscoco_val2014_questions.json",
        "v2_mscoco_val2014_annotations.json",
        _coco("val2014"),
    ),
    parquet_split="validation",
    split_size=214354,
    eval_mm=EvalMM("vqav2_val.jsonl", "v2_mscoco_val2014_annotations.json"),
    hub_id="lmms-lab/VQAv2",
)
VQAV2_TESTDEV = VQASource(
    "vqav2",
    "testdev",
    VQAPairFormat("v2_OpenEnded_mscoco_test-dev2015_questions.json", None, _coco("test2015")),
    parquet_split="testdev",
    split_size=107394,
    has_answers=False,
    eval_mm=EvalMM("vqav2_testdev.jsonl"),
    hub_id="lmms-lab/VQAv2",
)
OKVQA_VAL = VQASource(
    "okvqa",
    "val",
    VQAPairFormat(
        "OpenEnded_mscoco_val2014_questions.json",
        "mscoco_val2014_annotations.json",
        _coco("val2014"),
    ),
    parquet_split="val2014",
    split_size=5046,
    eval_mm=EvalMM("okvqa_val.jsonl", "mscoco_val2014_annotations.json"),
    hub_id="lmms-lab/OK-VQA",
)
OKVQA_TRAIN = VQASource(
    "okvqa",
    "train",
    VQAPairFormat(
        "OpenEnded_mscoco_train2014_questions.json",
        "mscoco_train2014_annotations.json",
        _coco("train2014"),
    ),
    split_size=9009,
    eval_mm=EvalMM("okvqa_train.jsonl", "mscoco_train2014_annotations.json"),
)
VIZWIZ_VAL = VQASource(
    "vizwiz",
    "val",
    VizWizFormat("val.json", "val"),
    parquet_split="val",
    split_size=4319,
    eval_mm=EvalMM("vizwiz_val.jsonl", "vizwiz_val_annotations.json"),
    hub_id="lmms-lab/VizWiz-VQA",
    image_name_id=True,
)
VIZWIZ_TEST = VQASource(
    "vizwiz",
    "test",
    VizWizFormat("test.json", "test", has_answers=False),
    parquet_split="test",
    split_size=8000,
    has_answers=False,
    eval_mm=EvalMM("vizwiz_test.jsonl"),
    hub_id="lmms-lab/VizWiz-VQA",
    image_name_id=True,
)
VIZWIZ_TRAIN = VQASource(
    "vizwiz",
    "train",
    VizWizFormat("train.json", "train"),
    split_size=20523,
    eval_mm=EvalMM("vizwiz_train.jsonl", "vizwiz_train_annotations.json"),
    image_name_id=True,
)
TEXTVQA_VAL = VQASource(
    "textvqa",
    "val",
    TextVQAFormat("TextVQA_0.5.1_val.json"),
    parquet_split="validation",
    split_size=5000,
    eval_mm=EvalMM("textvqa_val.jsonl", "textvqa_val_annotations.json"),
    hub_id="lmms-lab/textvqa",
)
TEXTVQA_TRAIN = VQASource(
    "textvqa",
    "train",
    TextVQAFormat("TextVQA_0.5.1_train.json"),
    parquet_split="train",
    split_size=34602,
    eval_mm=EvalMM("textvqa_train.jsonl", "textvqa_train_annotations.json"),
)


# -- tasks ----------------------------------------------------------------------------------
@register_task("vqav2", aliases=("vqav2_val",))
class VQAv2(VQAAccuracyTask):
    description = "VQAv2 val (VQA accuracy)"
    dataset = VQAV2_VAL


@register_task("vqav2_testdev", group=("paper-table4",))
class VQAv2TestDev(VQASubmissionTask):
    description = "VQAv2 test-dev: writes the EvalAI submission file"
    dataset = VQAV2_TESTDEV


@register_task("okvqa", group=("paper-table4",), aliases=("okvqa_val",))
class OKVQA(VQAAccuracyTask):
    description = "OK-VQA val (VQA accuracy)"
    dataset = OKVQA_VAL


@register_task("vizwiz", group=("paper-table4",), aliases=("vizwiz_val",))
class VizWiz(VQAAccuracyTask):
    description = "VizWiz-VQA val (VQA accuracy)"
    dataset = VIZWIZ_VAL


@register_task("vizwiz_test")
class VizWizTest(VQASubmissionTask):
    description = "VizWiz-VQA test: writes the submission file [{image, answer}]"
    dataset = VIZWIZ_TEST
    submission_key = "image"


@register_task("textvqa", group=("paper-table5",), aliases=("textvqa_val",))
class TextVQA(VQAAccuracyTask):
    description = "TextVQA val (VQA accuracy)"
    dataset = TEXTVQA_VAL


@register_task("gqa", group=("paper-table4",), aliases=("gqa_testdev",))
class GQA(Task):
    """Exact match after the paper's GQA post-processing of the stripped output."""

    description = "GQA test-dev balanced (exact match after GQA post-processing)"
    dataset = GQASource()
    prompts = VQA_PROMPTS
    generation = SHORT_ANSWER
    metrics = ("acc",)

    def score(self, doc: Document, response: Response, family: FamilyInfo) -> Scored:
        answer = M.gqa_postprocess((response.text or "").strip())
        correct = M.exact_match(answer, doc.fields["answers"])  # the best of eval_mm's list
        return Scored(answer=answer, scores={"acc": float(correct)})
