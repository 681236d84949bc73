"""The CLI surface: help for every group, exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from vseg import __version__
from vseg.cli import app

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "prep"),
        (["prep"], "puzzles"),
        (["prep", "synth"], "--shots-per-movie"),
        (["prep", "puzzles"], "--strict"),
        (["prep", "check"], "--split"),
        (["pretrain"], "scrl"),
        (["pretrain", "scrl"], "SCRL"),
        (["pretrain", "hico"], "HiCo"),
        (["embed"], "--split"),
        (["segment"], "predict"),
        (["demo"], "--out"),
    ],
)
def test_every_group_and_command_has_help(runner, args, expected):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_help_shows_defaults_from_the_config_model(runner):
    result = runner.invoke(app, ["prep", "puzzles", "--help"], env={"COLUMNS": "200"})
    assert "[default: 0/1]" in result.output
    result = runner.invoke(app, ["prep", "synth", "--help"], env={"COLUMNS": "200"})
    assert "[default: 240]" in result.output and "[default: 12]" in result.output


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "vseg", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pretrain" in result.stdout and "segment" in result.stdout
    version = subprocess.run([sys.executable, "-m", "vseg", "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == f"vseg {__version__}"


def test_unknown_set_key_fails_with_exit_2_naming_the_key_and_the_nearest(runner, synth_root, tmp_path):
    result = runner.invoke(
        app, ["prep", "puzzles", str(synth_root / "240P"), "--out", str(tmp_path / "p"), "--set", "jpeg_qualty=90"]
    )
    assert result.exit_code == 2
    assert "unknown config key 'jpeg_qualty'" in result.output
    assert "did you mean 'jpeg_quality'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "p").exists()  # nothing written before the config is valid


def test_unknown_key_in_a_config_file_names_the_file(runner, synth_root, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("shots_per_puzzel: 8\n")
    result = runner.invoke(
        app, ["prep", "puzzles", str(synth_root / "240P"), "--out", str(tmp_path / "p"), "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "'shots_per_puzzel'" in result.output and str(config) in result.output
    assert "'shots_per_puzzle'" in result.output


def test_bad_value_type_is_named(runner, tmp_path):
    result = runner.invoke(app, ["prep", "synth", str(tmp_path / "s"), "--set", "fps=fast"])
    assert result.exit_code == 2
    assert "config key 'fps' (from --set)" in result.output and "'fast'" in result.output


def test_missing_config_file_is_one_line(runner, tmp_path):
    result = runner.invoke(app, ["prep", "synth", str(tmp_path / "s"), "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: no such config file or preset" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_path_is_one_red_line_with_exit_2(runner, tmp_path):
    result = runner.invoke(app, ["prep", "puzzles", str(tmp_path / "missing"), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'missing'}: keyframe folder not found"


def test_debug_prints_the_traceback_and_without_it_one_line(tmp_path):
    """As a user runs it (``python -m vseg``, what the console script calls): the same error, with and without."""
    args = ["prep", "puzzles", str(tmp_path / "missing"), "--out", str(tmp_path / "p")]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "300"}  # a wide terminal: rich wraps no line
    debug = subprocess.run([sys.executable, "-m", "vseg", "--debug", *args], capture_output=True, text=True, env=env)
    assert debug.returncode == 1, debug.stderr[-2000:]
    assert "Traceback (most recent call last)" in debug.stderr.splitlines()[0]  # rich's framed traceback
    assert "vseg/prep/puzzles.py" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == f"DataError: {tmp_path / 'missing'}: keyframe folder not found"
    plain = subprocess.run([sys.executable, "-m", "vseg", *args], capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr + plain.stdout
    assert (plain.stderr + plain.stdout).strip() == f"error: {tmp_path / 'missing'}: keyframe folder not found"


def test_pretrain_hico_without_data_is_one_line(runner, tmp_path):
    result = runner.invoke(app, ["pretrain", "hico", "--config", "hico/cpu_tiny", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: no training data: pass --data DIR (the output of vseg prep clips)")
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["pretrain", "hico", "-c", "hico/cpu_tiny", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert f"{tmp_path / 'nowhere' / 'training'}: piece folder not found" in missing.output


def test_presets_load_by_name(runner, tmp_path):
    result = runner.invoke(
        app,
        [
            "prep",
            "synth",
            str(tmp_path / "s"),
            "--config",
            "synth/cpu_tiny",
            "--set",
            "movies=1",
            "--shots-per-movie",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    written = (tmp_path / "s" / "vseg_synth.yaml").read_text()
    assert "movies: 1\n" in written and "shots_per_movie: 3\n" in written
    assert "scene_shots:\n- 3\n- 10\n" in written  # from the preset


def test_quiet_prints_nothing_on_success_but_still_prints_errors(runner, tmp_path):
    result = runner.invoke(
        app, ["--quiet", "prep", "synth", str(tmp_path / "s"), "--movies", "1", "--shots-per-movie", "2"]
    )
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "s" / "240P" / "tt9000000" / "shot_0001_img_2.jpg").is_file()
    failed = runner.invoke(app, ["-q", "prep", "synth", str(tmp_path / "t"), "--movies", "0"])
    assert failed.exit_code == 2 and "config key 'movies'" in failed.output


def test_help_shows_every_default_including_the_ones_written_by_hand(runner):
    result = runner.invoke(app, ["pretrain", "scrl", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for default in ("[default: runs/scrl]", "[default: from the config]", "[default: start fresh"):
        assert default in result.output
    check = runner.invoke(app, ["prep", "check", "--help"], env={"COLUMNS": "200"})
    assert "[default: every movie of the split file]" in check.output


def _commands(command, path=()):
    """Every command of the click tree under ``command`` (groups too: a group's callback can take options; a group may
    build its commands when asked, as ``vseg pretrain`` does)."""
    yield path, command
    if hasattr(command, "list_commands"):
        context = typer.Context(command)
        for name in command.list_commands(context):
            yield from _commands(command.get_command(context, name), (*path, name))


def test_help_defaults_come_from_the_config_models_never_from_help_text(runner):
    """No option's help has a hand-typed default; a config-backed option shows its field's default and description."""

    from vseg.cli.options import FieldDefault

    config_backed = 0
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            where = f"vseg {' '.join(path)} {param.name}"
            assert "[default:" not in (getattr(param, "help", None) or "").replace("\\[", "["), where
            if not isinstance(getattr(param, "show_default", None), FieldDefault):
                continue
            config_backed += 1
            model, key = param.show_default.model, param.show_default.key
            *sections, name = key.split(".")
            defaults = model()
            for section in sections:
                defaults = getattr(defaults, section)
            default = getattr(defaults, name)
            if default is None:
                expected = "from the config"
            elif isinstance(default, bool):
                expected = (param.opts if default else param.secondary_opts)[0].lstrip("-")
            else:
                expected = str(default)
            assert param.show_default == expected, where
            description = type(defaults).model_fields[name].description
            assert param.help == f"{description[0].upper()}{description[1:]}.", where
        if command.params:
            shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output
            assert "[default: (" not in shown, path
    assert config_backed >= 40
