"""Built-in tasks. Importing a module registers its tasks."""

from . import captioning, fewshot, grounding, scienceqa, textdocs, vqa  # noqa: F401
