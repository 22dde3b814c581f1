"""Parts of the warren benchmark (bench/run.py)."""
