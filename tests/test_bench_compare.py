"""bench/compare_eval.py: several models' eval.md main tables side by side, with differences from the first."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bench_scripts import load_bench


def compare_eval():
    return load_bench("compare_eval")


def write_eval(folder: Path, within: str, mcq: str, extra: str = "") -> Path:
    folder.mkdir()
    (folder / "eval.md").write_text(
        "# eval\n\n| figure | target | model | brisque |\n|---|---|---|---|\n"
        f"| 1a. within | ≥ 0.950 | {within} | 0.5 |\n| 2. MCQ accuracy | ≥ 90.0% | {mcq} | – |\n{extra}"
        "\nnotes\n\n| other | table |\n|---|---|\n| x | 1 |\n", encoding="utf-8")
    return folder


def test_three_models_with_differences_from_the_first(tmp_path, capsys):
    a = write_eval(tmp_path / "a", "0.900 **MISS**", "80.0% **MISS**")
    b = write_eval(tmp_path / "b", "0.950 **PASS**", "79.0% **MISS**")
    c = write_eval(tmp_path / "c", "0.925 **MISS**", "85.5% **MISS**", "| 3. new figure |  | 7/19 | |\n")
    assert compare_eval().main([str(a), str(b), str(c), "--names", "v5,v9,soup"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| figure | target | v5 | v9 | soup | v9 - v5 | soup - v5 |"
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]}
    assert rows["1a. within"][5:] == ["+0.050", "+0.025"]
    assert rows["2. MCQ accuracy"][5:] == ["-0.010", "+0.055"]  # percentages compared as fractions
    assert rows["3. new figure"][2:5] == ["–", "–", "7/19"] and rows["3. new figure"][5:] == ["", ""]
    assert "x" not in rows  # only the first table of each file


def test_one_name_per_folder(tmp_path):
    a = write_eval(tmp_path / "a", "0.9", "80%")
    b = write_eval(tmp_path / "b", "0.9", "80%")
    with pytest.raises(SystemExit):
        compare_eval().main([str(a), str(b), "--names", "only-one"])
