"""Built-in tasks. Importing a module registers its tasks."""

from . import (  # noqa: F401
    captioning,
    fewshot,
    grounding,
    qwen2vl_choice,
    qwen2vl_mathvista,
    qwen2vl_mmmu,
    qwen2vl_open,
    qwen2vl_report,
    scienceqa,
    textdocs,
    vqa,
)
