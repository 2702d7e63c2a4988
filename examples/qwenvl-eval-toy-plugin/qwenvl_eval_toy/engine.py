"""The toy engine: answers a question about an image with the name of the palette colour
nearest to the image's middle pixel (or with `--toy-answer`). It implements the `Runner`
interface every backend implements (qwenvl_eval/model/base.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qwenvl_eval.model import backends
from qwenvl_eval.model.base import Runner, RunnerOptions, RunnerStats, check_generate_requests
from qwenvl_eval.model.presets import PRESETS, ResolvedModel, family_of
from qwenvl_eval.types import GenerateRequest, Image, Response, ScoreRequest

PALETTE = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def nearest_colour(rgb: tuple[int, int, int]) -> str:
    return min(
        PALETTE, key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, PALETTE[name], strict=True))
    )


# --8<-- [start:resolver]
def toy_model(spec: str, family: str | None = None) -> ResolvedModel:
    """What `--model` names, as this engine needs it: only its family (prompts)."""
    preset = spec if spec in PRESETS else None
    return ResolvedModel(spec, Path(spec), family_of(spec, family), None, preset)


# --8<-- [end:resolver]


# --8<-- [start:runner]
class ToyRunner(Runner):
    supports_option_scoring = False  # option-scoring tasks are refused before any request

    def __init__(self, model: ResolvedModel, options: RunnerOptions) -> None:
        self.family = model.family
        self.stats = RunnerStats()
        self.options = options
        # Typed: an instance of TOY.options_type, built from the declared Options.
        self.fixed_answer: str | None = options.backend_options.toy_answer

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        check_generate_requests(requests)
        for request in requests:
            start = time.perf_counter()
            response = self._answer(request)
            self.stats.items += 1
            self.stats.errors += response.error is not None
            self.stats.seconds += time.perf_counter() - start
            yield response  # yielded at once: the results store writes it before the next

    def _answer(self, request: GenerateRequest) -> Response:
        images = [part.image for part in request.parts if isinstance(part, Image)]
        if not images:
            return Response(id=request.id, error="the toy engine needs an image")
        if self.fixed_answer is not None:
            return Response(id=request.id, text=self.fixed_answer)
        image = images[0].open()
        middle = image.getpixel((image.width // 2, image.height // 2))
        return Response(id=request.id, text=nearest_colour(middle))

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        raise NotImplementedError("the toy engine has no log-probabilities")

    def provenance(self) -> dict[str, Any]:
        return {"backend": "toy", "dtype": "none", "device": "cpu", "palette": sorted(PALETTE)}

    def notes(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> list[str]:
        return backends.setting_notes(self.options)  # e.g. a --batch-size it cannot honour


# --8<-- [end:runner]
