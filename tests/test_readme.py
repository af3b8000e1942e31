"""The documented commands stay true: the README's test command is what `.ci/run` runs, and
every `fer-bench` / `fer-degrade` command line in the shell blocks of the README and docs/
names real sub-commands and real options (so a renamed flag cannot leave the docs out of
date)."""

from __future__ import annotations

import re
import sys
import shlex
from pathlib import Path

import click
import pytest

from benchmark.cli import main as bench_main
from degrade.cli import main as degrade_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROGRAMS = {"fer-bench": bench_main, "fer-degrade": degrade_main}


def code_lines(text: str) -> list[str]:
    """Lines of the shell blocks of a Markdown text, backslash continuations joined."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.replace("\\\n", " ").splitlines() if ln.strip()]


def invocations(text: str = README) -> list[tuple[str, list[str]]]:
    """``(program, args)`` for every fer-bench / fer-degrade call in the shell blocks of ``text``."""
    calls = []
    for line in code_lines(text):
        for part in re.split(r"&&|\|", line):
            words = shlex.split(part, comments=True)
            for i, w in enumerate(words):
                name = Path(w).name
                if name in PROGRAMS:
                    calls.append((name, words[i + 1:]))
                    break
    return calls


def check_call(program: str, args: list[str]) -> click.Command:
    """The (sub-)command ``args`` name; asserts that it and every ``--flag`` after it exist."""
    cmd: click.Command = PROGRAMS[program]
    rest = list(args)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in cmd.commands, f"README: `{program} ... {name}` is not a command of {cmd.name}"
        cmd = cmd.commands[name]
    opts = {o for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    for word in rest:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            assert flag in opts, f"README: `{program} {cmd.name}` has no option {flag}"
    return cmd


def test_readme_test_command_is_what_ci_runs():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert ci_lines == [test_cmd]
    first = next(b.strip() for b in blocks if "pip install" in b)
    assert first.endswith("fer-bench run --methods lrdif,scn") and "constraints-cpu.txt" in first


@pytest.mark.parametrize("doc", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_docs_name_real_commands_and_options(doc):
    for program, args in invocations((ROOT / "docs" / doc).read_text()):
        check_call(program, args)


def test_readme_names_real_commands_and_options():
    calls = invocations()
    assert len(calls) >= 15     # the README documents every command with an example
    seen = set()
    for program, args in calls:
        seen.add((program, check_call(program, args).name))
    assert {("fer-bench", "run"), ("fer-bench", "tables"), ("fer-bench", "figures"), ("fer-bench", "reproduce"),
            ("fer-degrade", "udc"), ("fer-degrade", "lowlight"), ("fer-degrade", "psf"),
            ("fer-degrade", "verify")} <= seen


@pytest.mark.parametrize("args, message", [(["udc", "--no-such-flag"], "no option --no-such-flag"),
                                           (["nosuch"], "is not a command"),
                                           (["udc", "--seed=3", "--dispaly", "toled"], "no option --dispaly")])
def test_the_checker_itself_catches_drift(args, message):
    assert check_call("fer-degrade", ["udc", "--seed=3", "--display", "toled"]).name == "udc"
    with pytest.raises(AssertionError, match=message):
        check_call("fer-degrade", args)


def _readme_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "scripts" / "readme_figures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_readme_figures_are_the_committed_results():
    """Every measured table in the README is what its committed results file gives
    (scripts/readme_figures.py --write regenerates them, --rerun re-measures the files)."""
    mod = _readme_figures()
    assert mod.readme_differences(README) == []
    for target in mod.targets():  # README and docs/benchmark.md (the small real folders)
        assert mod.readme_differences(target.read_text(), target) == [], target


def test_small_real_block_states_chance_and_every_cell():
    """The docs' small-real table holds one cell per set, dataset and method of the committed file,
    and its summary line counts the cells above chance from the file's intervals."""
    mod = _readme_figures()
    rows = mod.read_rows(mod.RESULTS / "small-real.csv")
    text = mod.render_small_real(mod.RESULTS)
    for r in rows:
        assert f"{float(r['accuracy']):.1f} [{float(r['ci_low']):.1f}, {float(r['ci_high']):.1f}]" in text
    for name in {r["set"] for r in rows}:
        mine = [r for r in rows if r["set"] == name]
        chance = 100 / int(mine[0]["n_classes"])
        n_above = sum(float(r["ci_low"]) > chance for r in mine)
        assert f"{n_above} of {len(mine)} cells have the lower end" in text


def test_readme_figures_check_catches_an_edited_number():
    mod = _readme_figures()
    block = mod.block_pattern("main-job").search(README).group(2)
    first = re.search(r"\d+\.\d %", block).group(0)
    edited = README.replace(block, block.replace(first, "99.9 %", 1))
    assert mod.readme_differences(edited) == ["main-job"]
