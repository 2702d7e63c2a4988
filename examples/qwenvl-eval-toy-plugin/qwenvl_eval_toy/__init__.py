"""An example qwenvl-eval plug-in: the `toy_colours` task (tasks.py, data.py) and the `toy`
backend (backend.py declares it, engine.py answers). docs/adding-a-task.md and
docs/adding-a-backend.md walk through these files."""
