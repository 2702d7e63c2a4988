"""Run files: the predictions store, results.json, tables. The only code that writes them."""
