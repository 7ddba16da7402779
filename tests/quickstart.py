"""The README's quick-start blocks (section "## Quick start"), shared by tests/test_envs.py and
tests/test_readme_replay.py."""
from __future__ import annotations

import re

from conftest import REPO

TEST_COMMAND = re.compile(r"python -m pytest tests\b")
RUN_COMMAND = re.compile(r"(^|&& )snakemake --cores \d+$")


def quickstart_blocks() -> list[list[str]]:
    """The bash blocks of the README's quick start, each as its command lines: [CPU block, GPU block]."""
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)^## ", readme, flags=re.S | re.M)
    assert section, "README.md has no '## Quick start' section"
    blocks = re.findall(r"^```bash\n(.*?)^```", section.group(1), flags=re.S | re.M)
    return [[line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
            for block in blocks]


def test_command(block: list[str]) -> str:
    """The block's line that runs the test suite."""
    (line,) = [line for line in block if TEST_COMMAND.search(line)]
    return line


test_command.__test__ = False  # a helper, not a test
