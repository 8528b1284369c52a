"""The `nbtrack` command as a user meets it: --version, help texts, the hints of its errors, a reader
that stops early, the paths `sync` prints, and the runs table README shows. Each runs the real
`nbtrack` command in a subprocess."""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack.cli import _parser
from nbtrack.store import RunRow, Store
from nbtrack.tables import runs_table
from tests import serving
from tests.serving import ServerProcess, create_key, subprocess_env

server = serving.server

README = Path(__file__).resolve().parent.parent / "README.md"
TIMEOUT = 120  # seconds: a bound on every command, never a figure the tests measure
F_SETPIPE_SZ = 1031  # fcntl: a pipe's capacity (Linux)


def command() -> list[str]:
    """The installed `nbtrack` script beside this Python (this checkout's code: subprocess_env)."""
    script = Path(sys.executable).parent / "nbtrack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nbtrack.cli"]


def nbtrack_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, timeout=TIMEOUT, env=subprocess_env(), cwd=cwd
    )


def make_runs(root: Path, count: int, project: str = "mnist") -> None:
    with Store.at_root(root) as store:
        for i in range(count):
            store.upsert_run(
                "local", project, f"run{i:05d}", display_name=f"run-number-{i}", created_at=1e9 + i
            )
            store.write_summary("local", project, f"run{i:05d}", {"loss": 1 / (i + 1), "epoch": i})


# ---- --version, a bare `nbtrack`, help texts ---------------------------------------------------


def test_version_prints_the_installed_version() -> None:
    result = nbtrack_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"nbtrack {importlib.metadata.version('nbtrack')}"


def test_a_bare_nbtrack_prints_help_and_succeeds() -> None:
    result = nbtrack_cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nbtrack")
    for name in ("demo", "runs", "dump", "sync", "server", "--version"):
        assert name in result.stdout


def test_server_usage_shows_key_as_an_alternative_not_a_requirement() -> None:
    result = nbtrack_cli("server", "--help")
    assert result.returncode == 0, result.stderr
    usage = result.stdout.split("\n\n")[0].splitlines()
    assert usage[0].startswith("usage: nbtrack server ") and "key" not in usage[0]
    assert usage[1].split() == ["nbtrack", "server", "key", "{create,list}", "..."]
    assert "positional arguments" not in result.stdout  # `key` is not listed as an argument to give
    assert "nbtrack server key create ENTITY" in result.stdout


@pytest.mark.parametrize("subcommand", ["create", "list"])
def test_key_commands_say_their_store_holds_the_keys(subcommand: str) -> None:
    result = nbtrack_cli("server", "key", subcommand, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "--dir ROOT nbtrack root whose store holds the keys" in text
    assert "to serve" not in text


def test_every_argument_of_every_command_has_help_that_fits_its_command() -> None:
    """No argument left without a help text, and no --dir help copied from another command."""
    dir_help: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
                continue
            assert action.help, f"{parser.prog}: {action.dest} has no help text"
            if "--dir" in action.option_strings:
                dir_help[parser.prog] = action.help

    walk(_parser())
    assert set(dir_help) == {
        "nbtrack demo",
        "nbtrack runs",
        "nbtrack sync",
        "nbtrack server",
        "nbtrack server key create",
        "nbtrack server key list",
        "nbtrack server compact",
        "nbtrack server gc",
        "nbtrack run rename",
        "nbtrack run edit",
        "nbtrack run delete",
    }
    assert "written under" in dir_help["nbtrack demo"]
    assert "to read" in dir_help["nbtrack runs"]
    assert "receives the runs" in dir_help["nbtrack sync"]
    assert "to serve" in dir_help["nbtrack server"]
    assert "holds the keys" in dir_help["nbtrack server key create"]
    assert "holds the keys" in dir_help["nbtrack server key list"]
    assert "runs to compact" in dir_help["nbtrack server compact"]
    assert "artifacts to collect" in dir_help["nbtrack server gc"]
    assert all("runs to change" in dir_help[f"nbtrack run {sub}"] for sub in ("rename", "edit", "delete"))
    # only key create and list share one, and run's three subcommands another
    assert len(dir_help.values()) - len(set(dir_help.values())) == 1 + 2


# ---- hints of errors -------------------------------------------------------------------------


def test_runs_in_an_empty_folder_names_the_dir_option(tmp_path: Path) -> None:
    result = nbtrack_cli("runs", cwd=tmp_path)
    assert result.returncode == 1
    assert "--dir" in result.stderr and "dir=" not in result.stderr and "nbtrack demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_project_fails_and_lists_the_projects_there_are(root: Path) -> None:
    make_runs(root, 1, project="mnist")
    make_runs(root, 1, project="cifar")
    for asked in ("mnsit", "someone/mnist"):
        result = nbtrack_cli("runs", asked, "--dir", str(root))
        assert result.returncode == 1 and result.stdout == ""
        assert f"no project '{asked}'" in result.stderr
        assert "local/mnist" in result.stderr and "local/cifar" in result.stderr
    assert nbtrack_cli("runs", "local/mnist", "--dir", str(root)).returncode == 0


@pytest.mark.parametrize("verb", [("rename", "new"), ("edit", "--notes", "n"), ("delete", "--yes")])
def test_an_unknown_run_names_the_command_that_lists_runs(root: Path, verb: tuple[str, ...]) -> None:
    """A terminal user is pointed at `nbtrack runs`, not at the Python API's Api().runs()."""
    make_runs(root, 1, project="mnist")
    result = nbtrack_cli("run", verb[0], "local/mnist/nosuch", *verb[1:], "--dir", str(root))
    assert result.returncode == 1 and "no run 'nosuch' in project 'local/mnist'" in result.stderr
    assert f"nbtrack runs local/mnist --dir {root}" in result.stderr, result.stderr
    assert "Api()" not in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_named_with_the_option_to_change_it(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = nbtrack_cli("server", "--port", str(port), "--dir", str(root))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr


# ---- a reader that stops early -----------------------------------------------------------------


def read_one_line_then_close(*args: str) -> tuple[int, str, str]:
    """Run nbtrack into a one-page pipe, read its first line and close the pipe (as `| head -1`
    does); the exit status, that line and what it wrote to stderr."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)  # so that a few kB of output outrun the reader
    with open(read_end, "rb") as reader:
        process = subprocess.Popen(
            [*command(), *args], stdout=write_end, stderr=subprocess.PIPE, env=subprocess_env()
        )
        os.close(write_end)
        first = reader.readline().decode()
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    return process.returncode, first, err.decode()


def test_dump_into_a_reader_that_stops_early_ends_quietly(root: Path) -> None:
    with nbtrack.init(project="big", dir=root, mode="offline") as run:
        for i in range(2000):
            run.log({"loss": 1 / (i + 1), "text": "x" * 20})
    log = next(run.dir.glob("*.nbt"))
    status, first, err = read_one_line_then_close("dump", str(log))
    assert '"header"' in first
    assert (status, err) == (0, "")


def test_runs_into_a_reader_that_stops_early_ends_quietly(root: Path) -> None:
    make_runs(root, 300)
    status, first, err = read_one_line_then_close("runs", "mnist", "--dir", str(root))
    assert first.split()[:3] == ["id", "name", "state"]
    assert (status, err) == (0, "")


# ---- paths `nbtrack sync` prints -------------------------------------------------------------


def test_sync_names_a_run_whose_entity_the_server_decides_by_project_and_id(
    server: ServerProcess, tmp_path: Path
) -> None:
    run = nbtrack.init(project="online-demo", base_url=server.url)
    run.log({"x": 1})
    run.finish()
    log = next(run.dir.glob("*.nbt"))
    # With a key, the server's runs of entity "local" are not bob's: the log goes to a run it does
    # not hold, and it decides the entity.
    key = create_key(server, "bob")
    result = nbtrack_cli("sync", str(log), "--base-url", server.url, "--api-key", key)
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"{log}: online-demo/{run.id} 1 rows, finished"), line
    # Into a local store the entity is known, and printed.
    result = nbtrack_cli("sync", str(log), "--dir", str(tmp_path / "other"))
    assert result.stdout.startswith(f"{log}: local/online-demo/{run.id} 1 rows"), result.stdout


# ---- the runs table is the one README shows ----------------------------------------------------


def readme_runs_example() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = text.split("    $ nbtrack runs mnist\n", 1)[1].split("\n\n", 1)[0]
    return [line.removeprefix("    ") for line in block.splitlines()]


def test_the_runs_table_is_exactly_what_readme_shows() -> None:
    lines = readme_runs_example()
    columns = lines[0].split()
    rows = []
    for line in lines[2:]:
        cells = re.split(r" {2,}", line)
        run_id, name, state, created, runtime, row_count, *summary = cells
        minutes = re.fullmatch(r"(\d+) min (\d+) s", runtime)
        seconds = int(minutes[1]) * 60 + int(minutes[2]) if minutes else float(runtime.removesuffix(" s"))
        keys = columns[6:]
        rows.append(
            RunRow(
                entity="local",
                project="mnist",
                run_id=run_id,
                display_name=name,
                state=state,
                config={},
                summary={key: float(value) for key, value in zip(keys, summary, strict=False)},
                metrics=[],
                tags=[],
                notes=None,
                group=None,
                job_type=None,
                host=None,
                program=None,
                created_at=time.mktime(time.strptime(created, "%Y-%m-%d %H:%M")),
                updated_at=0.0,
                runtime=float(seconds),
                exit_code=None,
                history_line_count=int(row_count),
                last_step=None,
            )
        )
    assert runs_table(rows).splitlines() == lines


def test_nbtrack_runs_prints_the_columns_readme_shows(root: Path) -> None:
    with nbtrack.init(project="mnist", dir=root, name="quiet-river-42") as run:
        for step in range(3):
            run.log({"train/loss": 0.5 / (step + 1), "epoch": step})
    result = nbtrack_cli("runs", "mnist", "--dir", str(root))
    assert result.returncode == 0, result.stderr
    header, rule, line = result.stdout.splitlines()
    readme = readme_runs_example()
    assert (
        header.split()[:6] == readme[0].split()[:6] == ["id", "name", "state", "created", "runtime", "rows"]
    )
    assert set(header.split()[6:]) == {"train/loss", "epoch"}
    assert set(rule) == {"-", " "}
    assert re.fullmatch(
        rf"{run.id}  quiet-river-42  finished  \d{{4}}-\d\d-\d\d \d\d:\d\d  \d+\.\d s +3 .*", line
    ), line


def test_the_real_nbtrack_script_is_what_these_tests_run() -> None:
    """The console script exists where pip installs it (these tests must not only run `-m`)."""
    assert shutil.which("nbtrack", path=str(Path(sys.executable).parent)) is not None


def test_sync_into_a_reader_gone_still_delivers_every_log(root: Path, tmp_path: Path) -> None:
    runs = []
    for i in range(3):
        with nbtrack.init(project="off", dir=root, mode="offline") as run:
            run.log({"i": i})
        runs.append(run.id)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    target = tmp_path / "target"
    result = subprocess.run(
        [*command(), "sync", str(root), "--dir", str(target)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        env=subprocess_env(),
    )
    os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")
    with Store.at_root(target) as store:
        assert sorted(row.run_id for row in store.list_runs("off")) == sorted(runs)


def test_a_postgresql_store_without_its_driver_names_the_extra_to_install() -> None:
    # psycopg made unimportable in that process only, as on a machine with just nbtrack[server].
    code = (
        "import sys; sys.modules['psycopg'] = None; from nbtrack.cli import main; "
        "sys.exit(main(['server', '--db', 'postgresql://nobody@127.0.0.1:1/none']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=subprocess_env()
    )
    assert done.returncode != 0
    assert "pip install 'nbtrack[postgresql]'" in done.stderr
    assert "Traceback" not in done.stderr
