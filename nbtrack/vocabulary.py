"""Words every layer shares, defined once, at the bottom: the user side, the internal process,
the store and the server all import them from here (and nothing else from each other for them).
"""

from __future__ import annotations

__all__ = ["RESERVED_KEYS", "STEP_MAX"]

# nbtrack stamps these on rows itself (the last two in a notebook: internal/provenance.py); a
# user's row may not set them.
RESERVED_KEYS = frozenset({"_step", "_runtime", "_timestamp", "_cell", "_attempt"})
# Steps are int64 in records and the store, and the handler counts on from the last one, so a step
# must leave room above it; 2**53 - 1 is also the largest integer a browser (the panel) holds exactly.
STEP_MAX = 2**53 - 1
