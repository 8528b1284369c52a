"""Readable names for runs started without one: "adjective-noun-number" ("quiet-river-42").

A name is derived from the run's id (a hash of it), not drawn at random: the same run always gets
the same name, whoever names it (the SDK for nbtrack's own runs, the tracking server for a W&B
client's run created without a displayName, `nbtrack sync` replaying a log), and tests see stable
names without seeding anything. Some 1.4 million names: two runs of one project rarely share
one, and the id tells them apart where that matters (every table shows both).
"""

from __future__ import annotations

import hashlib

__all__ = ["ADJECTIVES", "NOUNS", "readable_name"]

ADJECTIVES = (
    "amber", "ancient", "autumn", "bold", "brave", "breezy", "bright", "calm", "cheerful", "clever",
    "cool", "cosmic", "crimson", "crisp", "curious", "daring", "dapper", "deep", "dry", "dusty",
    "eager", "electric", "elegant", "fancy", "fearless", "fine", "floral", "fluent", "fragrant",
    "fresh", "frosty", "gentle", "giddy", "glad", "golden", "graceful", "grand", "green", "happy",
    "hardy", "hidden", "hollow", "honest", "humble", "icy", "jolly", "keen", "kind", "lively",
    "lucky", "lunar", "mellow", "merry", "misty", "modest", "morning", "noble", "olive", "patient",
    "plucky", "polar", "proud", "quick", "quiet", "radiant", "rapid", "rosy", "royal", "rustic",
    "sandy", "scarlet", "serene", "sharp", "shiny", "silent", "silver", "sleek", "smooth", "snowy",
    "solar", "spring", "steady", "stellar", "stoic", "stormy", "sunny", "swift", "tidy", "tranquil",
    "twilight", "upbeat", "vivid", "warm", "wandering", "wild", "windy", "wise", "witty", "young",
    "zesty",
)  # fmt: skip

NOUNS = (
    "aurora", "bay", "bird", "blossom", "breeze", "brook", "butterfly", "canyon", "cedar", "cloud",
    "comet", "coral", "cosmos", "creek", "dawn", "delta", "dew", "dream", "dune", "eagle", "ember",
    "falcon", "feather", "fern", "field", "fire", "firefly", "flower", "fog", "forest", "fox",
    "frost", "galaxy", "garden", "glade", "glacier", "grove", "harbor", "haze", "hill", "horizon",
    "island", "lake", "leaf", "light", "lily", "meadow", "moon", "moss", "mountain", "nebula",
    "night", "oak", "ocean", "orbit", "otter", "owl", "pebble", "pine", "planet", "pond", "prairie",
    "rain", "reef", "ridge", "river", "sea", "shadow", "shore", "sky", "smoke", "snow", "sound",
    "spark", "star", "stone", "storm", "stream", "sun", "sunset", "surf", "thunder", "tide", "tree",
    "valley", "violet", "voice", "water", "wave", "willow", "wind", "wood", "yak", "zephyr",
    "lantern", "maple", "harvest", "summit", "orchid", "heron",
)  # fmt: skip

_NUMBERS = 140


def readable_name(run_id: str) -> str:
    """The run's readable name, the same every time for the same id: e.g. "quiet-river-42"."""
    digest = int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:8], "big")
    digest, adjective = divmod(digest, len(ADJECTIVES))
    digest, noun = divmod(digest, len(NOUNS))
    return f"{ADJECTIVES[adjective]}-{NOUNS[noun]}-{digest % _NUMBERS + 1}"
