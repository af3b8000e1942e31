"""Both command lines list their commands and report bad input as one clean error."""

from __future__ import annotations

from click.testing import CliRunner

from benchmark.cli import main as bench
from degrade.cli import main as degrade


def test_help_lists_commands():
    out = CliRunner().invoke(bench, ["--help"]).output
    assert "data" in out
    out = CliRunner().invoke(bench, ["data", "--help"]).output
    for cmd in ("check", "sources", "build-sample", "show", "crop"):
        assert cmd in out
    res = CliRunner().invoke(degrade, ["--help"])
    assert res.exit_code == 0


def test_missing_root_is_a_clean_error(tmp_path):
    res = CliRunner().invoke(bench, ["data", "check", "--src", "rafdb", "--root", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "nope" in res.output and "Traceback" not in res.output


def test_bad_src_opt_names_the_flag(ferplus_tree):
    res = CliRunner().invoke(bench, ["data", "check", "--src", "ferplus", "--root", str(ferplus_tree),
                                     "--src-opt", "classes"])
    assert res.exit_code == 2 and "--src-opt" in res.output


def test_contact_sheet(sample_root, tmp_path):
    from fercore.imageio import read_image

    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(bench, ["data", "show", "--src", "sample", "--out", str(out), "--per-class", "3"])
    assert res.exit_code == 0, res.output
    sheet = read_image(out)
    assert sheet.shape == (700, 300, 3) and sheet.std() > 10


def test_help_and_data_commands_start_without_torch():
    """`fer-bench --help`, `fer-degrade --help` and the data commands import no torch (seconds
    of start-up on a small machine); torch loads only where a command computes."""
    import subprocess
    import sys

    code = ("import sys, benchmark.cli, degrade.cli; "
            "sys.exit(0 if 'torch' not in sys.modules else 'torch imported at start-up')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_usage_errors_are_one_line_naming_the_flag_and_the_help():
    for cli, args, flag, where in [(degrade, ["udc", "--severity", "7"], "'--severity'", "udc --help"),
                                   (bench, ["run", "--nosuch"], "'--nosuch'", "run --help"),
                                   (bench, ["data", "crop", "--root", ".", "--out", "x", "--margin", "-1"],
                                    "'--margin'", "data crop --help")]:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
        assert flag in lines[0] and lines[0].endswith(f"{where})")
    assert CliRunner().invoke(bench, ["--version"]).exit_code == 0
    res = CliRunner().invoke(bench, ["data"])  # a bare group: its help
    assert "crop" in res.output and "error" not in res.output
