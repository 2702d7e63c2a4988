"""The toy backend's declaration: what the entry point (group `qwenvl_eval.backends`) names.
Kept light: the harness imports it whenever it starts, and imports the engine (engine.py)
only when `--backend toy` is chosen."""

from __future__ import annotations

from qwenvl_eval.model.backends import Backend, Option

# --8<-- [start:backend]
TOY = Backend(
    "toy",
    loader="qwenvl_eval_toy.engine:ToyRunner",  # called as loader(model, runner_options)
    package="qwenvl-eval-toy-plugin",  # its version is recorded in results.json
    options=(
        Option(
            "toy_answer",
            str,
            help="answer this word to every question instead of looking at the image.",
            fingerprint=True,  # it changes the answers: another value, another run directory
        ),
    ),
    # A runner setting the engine cannot honour is said in each task's notes when set.
    unhonoured={"batch_size": "the toy engine answers one request at a time"},
    description="toy engine: names the colour in the middle of the image",
    resolver="qwenvl_eval_toy.engine:toy_model",
    family_of="qwenvl_eval.model.presets:family_of",
    local_weights=False,  # it loads no checkpoint: nothing to fingerprint
)
# --8<-- [end:backend]
