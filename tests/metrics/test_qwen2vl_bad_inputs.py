"""The Qwen2-VL benchmark scorers give a defined result, never an exception, on bad responses."""

from __future__ import annotations

import math
import random

import pytest

from qwenvl_eval.metrics.hallusionbench import hallusion_yes_no
from qwenvl_eval.metrics.mathvista import mathvista_score
from qwenvl_eval.metrics.mmbench import Rotation, circular_hit
from qwenvl_eval.metrics.mme import mme_parse
from qwenvl_eval.metrics.mmmu import mmmu_open_correct, mmmu_parse_choice, mmmu_parse_open
from qwenvl_eval.metrics.ocrbench import ocrbench_score
from qwenvl_eval.metrics.vlmeval_choice import infer_choice

BAD = [None, 7, 3.5, math.nan, "", [], {}, b"bytes", [None]]
CHOICES = {"A": "nan", "B": "None", "C": "7"}


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_bad_response_is_unanswered(bad) -> None:
    # Missing responses are read as "": never the text "nan"/"None"/"7" of an option.
    assert infer_choice(bad, CHOICES) is None
    assert not circular_hit([Rotation(bad, CHOICES, "A")])
    assert ocrbench_score(bad, ["x"], "Doc-oriented VQA") == 0
    assert mme_parse(bad) == "other"
    assert hallusion_yes_no(bad) == "Unknown"
    assert mathvista_score(bad, "7", "free_form", "integer", None) == ("", None, False)
    assert mmmu_parse_open(bad) == [""]
    assert mmmu_open_correct(bad, [7.0]) is False
    assert mmmu_parse_choice(bad, CHOICES, random.Random(0)).random
