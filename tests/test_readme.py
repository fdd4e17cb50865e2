"""The README stays true: its engine example runs, and its flag table is the examples' flags."""
import os
import re

import numpy as np
import pytest

from tinylesion.cli import TASKS, build_parser

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def test_engine_example_runs(tmp_path, monkeypatch):
    """The "engine in five lines" block trains one step, saves and reloads its weights."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", _readme(), re.S)
              if "import tinylesion as tl" in b]
    assert blocks, "README.md has no Python example importing tinylesion as tl"
    monkeypatch.chdir(tmp_path)           # it writes weights.npz into the working folder
    scope = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert np.isfinite(float(scope["loss"].item()))
    assert (tmp_path / "weights.npz").exists()


def _flag_table():
    """The flags named in the first column of the README's shared-flags table."""
    flags = set()
    for line in _readme().splitlines():
        m = re.match(r"\| `(--[a-z-]+)[^|]*\|", line)
        if m:
            flags.update(re.findall(r"`(--[a-z-]+)", line.split("|")[1]))
    return flags


@pytest.mark.parametrize("task", sorted(TASKS))
def test_flag_table_matches_the_examples(task):
    documented = _flag_table()
    parser_flags = {opt for action in build_parser(task)._actions for opt in action.option_strings
                    if opt.startswith("--") and opt != "--help"}
    assert documented, "README.md has no flag table"
    assert parser_flags - documented == set(), "flags missing from the README's table"
    assert documented - parser_flags == set(), "flags in the README's table the example lacks"
