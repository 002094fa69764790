"""The confidence evaluation: corpus (corpus.py), statistics (metrics.py), the run (run.py, `scripts/eval`)."""
