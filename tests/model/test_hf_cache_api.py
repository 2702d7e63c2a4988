"""Option scoring on the transformers backend uses only the supported cache API: no
deprecation warning (transformers 5.24 deprecates `past_key_values=`, removed in 5.40)."""

from __future__ import annotations

import warnings

import pytest

from qwenvl_eval.types import Image, ImageRef, ScoreRequest, Text

from .conftest import FAMILY_PRESETS


@pytest.mark.parametrize("family", list(FAMILY_PRESETS))
def test_option_scoring_raises_no_deprecation_warning(family, hf_runners, image_dir):
    runner = hf_runners[family]
    req = ScoreRequest(
        "s",
        (Image(ImageRef("img1", image_dir / "img1.png")), Text("Which one? Answer:")),
        (" A", " the cat sitting"),  # a multi-token option: the cached continuation runs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        (resp,) = list(runner.score_options([req]))
    # A warning turned error fails the item: the runner reports it on the response.
    assert resp.error is None, resp.error
    assert [o.num_tokens for o in resp.options][0] >= 1
    assert resp.options[1].num_tokens > 1
    assert runner._cache_kwarg in ("cache", "past_key_values")
