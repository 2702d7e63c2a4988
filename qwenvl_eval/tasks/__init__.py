"""Built-in tasks. Importing a module registers its tasks."""

import importlib

# TODO(lead): replace by plain imports once every module has landed.
for _mod in ("vqa", "grounding", "fewshot", "captioning", "textdocs", "scienceqa"):
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_mod}":
            raise
