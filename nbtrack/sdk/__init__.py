"""The user-facing SDK: the run a user starts, logs to and finishes, and what it is made of.

`session.py` (init/log/finish and the current run), `run.py` (`Run`), `run_state.py` (config and
summary), `values.py` (what log() accepts), `media.py` (Image, Histogram, Table), `resume.py`
(continuing a run). Imported lazily by `nbtrack/__init__.py`: the internal process never loads it.
"""
