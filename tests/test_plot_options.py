"""``immodel plot DIR --out FOLDER --format png,svg,pdf``: where figures go and in which
formats; a bad format or an --out that is a file is one error line."""

from __future__ import annotations

import pytest

from immodel.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "run"
    argv = ["run", "baseline", "--set", "workload.users=30", "--set", "duration_s=5"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def test_out_and_format_choose_the_folder_and_the_files(run_dir, tmp_path, capsys):
    target = tmp_path / "figs"
    assert main(["plot", str(run_dir), "--out", str(target), "--format", "pdf,png"]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted(
        f"{stem}.{ext}"
        for stem in ("latency_ecdf", "latency_tail", "load_timeline")
        for ext in ("pdf", "png")
    )
    assert sorted(printed) == sorted(str(target / n) for n in names)
    assert (target / "latency_ecdf.pdf").read_bytes().startswith(b"%PDF")
    assert not (run_dir / "figures").exists()


def test_default_is_png_and_svg_in_dir_figures(run_dir, capsys):
    assert main(["plot", str(run_dir)]) == 0
    capsys.readouterr()
    suffixes = {p.suffix for p in (run_dir / "figures").iterdir()}
    assert suffixes == {".png", ".svg"}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--format", "png,gif"], "--format must be a comma-separated list of png, svg, pdf"),
        (["--format", ","], "--format must be"),
    ],
)
def test_bad_format_is_one_error_line(run_dir, capsys, extra, fragment):
    assert main(["plot", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_out_that_is_a_file_is_one_error_line(run_dir, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["plot", str(run_dir), "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
