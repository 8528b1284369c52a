"""nbval runs the example notebooks in fresh kernels: give them a throwaway nbtrack root and
the deterministic display (no ids or wall-clock values in text outputs)."""

from __future__ import annotations

import os
import tempfile

os.environ["NBTRACK_DIR"] = tempfile.mkdtemp(prefix="nbtrack-notebooks-")
os.environ["NBTRACK_DETERMINISTIC"] = "1"
