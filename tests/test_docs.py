"""The docs name tests as proof: each named test must exist, or the doc has gone stale."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_docs_guarantees_exists() -> None:
    doc = (ROOT / "docs" / "guarantees.md").read_text()
    named = set(re.findall(r"\b(test_\w+)\b", doc)) - {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    defined = {
        name
        for source in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", source.read_text(), flags=re.M)
    }
    assert named, "docs/guarantees.md names no test"
    missing = sorted(named - defined)
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"


SOURCE_DIRS = ("nbtrack", "tests", "docs", "proto", "benchmarks", "examples", ".ci")
RUN_FILES = {"code/cells.py"}  # files a run saves (named in the doc as such), not files of the repo


def test_every_file_named_in_docs_architecture_exists() -> None:
    """A name like `store/store.py` must be the end of a real file's path; a bare `feed.py` must
    name at least one file (the section around it says which folder)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([\w./-]+\.(?:py|js|md|sh|toml|css|html|proto))`", doc))
    files = [
        "/" + path.relative_to(ROOT).as_posix()
        for folder in SOURCE_DIRS
        if (ROOT / folder).is_dir()
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "node_modules" not in path.parts
    ]
    assert len(named) > 20, "docs/architecture.md names almost no file: the pattern is stale"
    # A URL the server answers (`/static/ui/app.js`) is a file under nbtrack/web/.
    missing = sorted(
        name
        for name in named - RUN_FILES
        if not any(f.endswith("/" + name.removeprefix("/static/")) for f in files)
    )
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_nbtrack_error_is_in_the_tree_of_errors_py() -> None:
    import importlib
    import pkgutil

    import nbtrack
    from nbtrack import errors

    for module in pkgutil.walk_packages(nbtrack.__path__, "nbtrack."):
        importlib.import_module(module.name)
    found: set[str] = set()
    todo = [errors.NbtrackError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    tree = errors.__doc__ or ""
    missing = sorted(name for name in found if not re.search(rf"\b{name}\b", tree))
    assert not missing, f"errors.py's tree does not list {missing}"


def test_the_front_end_vocabulary_is_generated_from_the_python_one() -> None:
    from nbtrack.vocabulary import js_module

    generated = "nbtrack/web/shared/vocabulary.js"
    committed = (ROOT / generated).read_text()
    assert committed == js_module(), f"{generated} is stale: python -m nbtrack.vocabulary > {generated}"


def test_media_type_names_are_spelled_only_in_the_vocabulary() -> None:
    """A `_type` name as a string literal in code (not in a docstring) is vocabulary.py's alone."""
    words = {'"image-file"', '"table-file"', '"histogram"', '"nbtrack-dropped"'}
    words |= {word.replace('"', "'") for word in words}
    found = []
    for path in (ROOT / "nbtrack").rglob("*.py"):
        if path.name == "vocabulary.py":
            continue
        with tokenize.open(path) as source:
            for token in tokenize.generate_tokens(source.readline):
                if token.type == tokenize.STRING and token.string in words:
                    found.append(f"{path.relative_to(ROOT)}:{token.start[0]} {token.string}")
    # "histogram" is also the panel's name for its histogram slot (extension/): not a _type.
    found = [place for place in found if not ("extension/" in place and "histogram" in place)]
    for path in (ROOT / "nbtrack" / "web").rglob("*.js"):  # (there "histogram" is a CSS class too)
        if path.name != "vocabulary.js":
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("//")[0]
                found += [
                    f"{path.relative_to(ROOT)}:{number} {w}"
                    for w in ('"image-file"', '"table-file"')
                    if w in code
                ]
    assert not found, f"use nbtrack.vocabulary's names: {found}"


def test_each_shared_word_is_defined_once() -> None:
    """The words of nbtrack/vocabulary.py are defined there and nowhere else (Python or JS)."""
    pattern = re.compile(
        r"^\s*(?:export\s+)?(?:const\s+)?(RUN_STATES|LIVE_STATES|RESERVED_KEYS|STEP_MAX|CELLS_KEY)\s*=|"
        r"^def (exit_state|format_duration)\(|\"finished\" if .* else \"failed\"",
        re.M,
    )
    found: dict[str, list[str]] = {}
    for folder, suffix in (("nbtrack", "*.py"), ("nbtrack/web", "*.js")):
        for path in (ROOT / folder).rglob(suffix):
            if "node_modules" in path.parts or path.name == "vocabulary.js":
                continue
            for match in pattern.finditer(path.read_text()):
                word = next(g for g in match.groups() if g) if any(match.groups()) else "exit rule"
                found.setdefault(word, []).append(str(path.relative_to(ROOT)))
    repeated = {word: places for word, places in found.items() if len(places) > 1}
    assert not repeated, f"defined more than once: {repeated}"
