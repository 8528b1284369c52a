"""The front end ships as plain files of the package: nbtrack/web/ (shared/, widget/, ui/).

No symbolic links (a checkout without them would lose the files), every file under nbtrack/web/ is
package data, and every relative import of a module there names a file there: the server serves
the folder at /static/ as it is, so an import that resolves on disk resolves over HTTP too.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nbtrack"
WEB = PACKAGE / "web"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']""", re.M)


def web_files() -> list[Path]:
    return sorted(path for path in WEB.rglob("*") if path.is_file())


def test_the_package_holds_no_symbolic_links() -> None:
    links = [str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*") if path.is_symlink()]
    assert not links, f"symbolic links in the package: {links}"


def test_every_front_end_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["nbtrack"]
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    files = web_files()
    assert len(files) > 20 and {"shared", "widget", "ui"} <= {p.name for p in WEB.iterdir()}
    missing = [str(path.relative_to(ROOT)) for path in files if path not in shipped]
    assert not missing, f"front-end files the wheel would leave out: {missing}"


def test_every_relative_import_names_a_front_end_file() -> None:
    broken = []
    modules = [path for path in web_files() if path.suffix == ".js"]
    for path in modules:
        here = path.relative_to(WEB).parent.as_posix()
        for specifier in IMPORT.findall(path.read_text()):
            target = posixpath.normpath(posixpath.join(here, specifier))
            if (
                not specifier.startswith(("./", "../"))
                or target.startswith("../")
                or not (WEB / target).is_file()
            ):
                broken.append(f"{path.relative_to(WEB)}: {specifier}")
    assert len(modules) > 20
    assert not broken, f"imports that do not name a file under nbtrack/web/: {broken}"
