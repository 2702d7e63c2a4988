"""The paper protocol (PROTOCOL.md section 2) for the `qwen-vl` family, task by task: the raw
prompt template and the generation settings of every task in the paper's tables."""

from __future__ import annotations

import pytest

from qwenvl_eval import registry
from qwenvl_eval.model.families import QWEN_VL, QWEN_VL_CHAT
from qwenvl_eval.tasks.base import ScoringTask
from qwenvl_eval.types import Generation

VQA = "<img>{image}</img>{question} Answer:"
CAPTION = "<img>{image}</img>Describe the image in English:"
GROUNDING = "<img>{image}</img><ref>{expression}</ref><box>"
SCIENCEQA = (
    "<img>{image}</img>Context: {context}\nQuestion: {question}\nOptions: {options}\nAnswer:"
)


def gen(max_new: int, min_new: int, length_penalty: float) -> Generation:
    return Generation(max_new_tokens=max_new, min_new_tokens=min_new, length_penalty=length_penalty)


PAPER = {
    "nocaps": (CAPTION, gen(30, 8, 0.0)),
    "flickr30k": (CAPTION, gen(30, 8, 0.0)),
    "vqav2_testdev": (VQA, gen(10, 1, 1.0)),
    "okvqa": (VQA, gen(10, 1, 1.0)),
    "vizwiz": (VQA, gen(10, 1, 1.0)),
    "textvqa": (VQA, gen(10, 1, 1.0)),
    "gqa": (VQA, gen(10, 1, 1.0)),
    "docvqa": (VQA, gen(100, 1, 1.0)),
    "chartqa": (VQA, gen(100, 1, 1.0)),
    "ocrvqa": (VQA, gen(100, 1, 1.0)),
    "ai2d": (VQA, gen(10, 1, 1.0)),
    "scienceqa_img": (SCIENCEQA, None),
    **{name: (GROUNDING, gen(28, 10, 1.0)) for name in registry.resolve(["paper-table6"])},
}


def test_the_paper_groups_hold_exactly_the_papers_benchmarks():
    members = registry.resolve(["paper-table4", "paper-table5", "paper-table6"])
    assert sorted(members) == sorted(PAPER)


@pytest.mark.parametrize("family", [QWEN_VL, QWEN_VL_CHAT], ids=["qwen-vl", "qwen-vl-chat"])
@pytest.mark.parametrize("name", sorted(PAPER))
def test_raw_prompt_and_generation(name, family):
    template, generation = PAPER[name]
    task = registry.get_task(name)
    prompt = task.prompt_for(family.info)
    assert prompt.style == "raw" and prompt.template == template
    if generation is None:
        assert isinstance(task, ScoringTask)
    else:
        got = task.generation_for(family.info)
        assert (got.max_new_tokens, got.min_new_tokens, got.length_penalty) == (
            generation.max_new_tokens,
            generation.min_new_tokens,
            generation.length_penalty,
        )
        assert got.num_beams == 1 and got.do_sample is False  # greedy, as the paper overrides
