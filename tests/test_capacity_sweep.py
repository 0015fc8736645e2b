"""tools/capacity_sweep.py: the plan of runs, the statistics on made-up rows (against closed
forms), and the tool end to end with runs of a few steps (rows, resume, a diverged run)."""
import json

import numpy as np
import pytest
from scipy.stats import t

from tools import capacity_sweep as sweep
from training import config as config_lib


def _row(activation, seed, accuracy, model="fcn", scale=0.03125, init="swish", clip=0.0,
         epochs=40):
    init = init if activation.startswith("era") else None
    return {"model": model, "width_scale": scale, "activation": activation, "init": init,
            "clip_norm": clip, "seed": seed, "accuracy": accuracy, "diverged": accuracy is None,
            "epochs": epochs, "set": []}


def _welch(a, b):
    """Welch's interval written out: difference, then its 95 % half-width."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    diff = np.mean(a) - np.mean(b)
    half = t.ppf(0.975, dof) * np.sqrt(va + vb)
    return diff - half, diff + half


def test_sweep_statistics_on_made_up_rows(tmp_path):
    rows = ([_row("relu", s, a) for s, a in enumerate([0.90, 0.92, 0.94])]      # error 10, 8, 6
            + [_row("gelu", s, a) for s, a in enumerate([0.93, 0.93, 0.95])]    # 7, 7, 5
            + [_row("swish", 0, None), _row("swish", 1, 0.80), _row("swish", 2, 0.82)]
            + [_row("era2", s, a) for s, a in enumerate([0.96, 0.95, 0.97])]    # 4, 5, 3
            + [_row("era4", 0, 0.99)]
            + [_row("relu", s, 0.99, scale=1.0) for s in range(2)]
            + [_row("relu", 9, 0.10, epochs=10)])                 # another protocol: left out
    kept = sweep.pooled(rows)
    assert len(kept) == len(rows) - 1 and all(r["epochs"] == 40 for r in kept)
    grid = sweep.sweep_grid(kept)
    assert list(grid) == [("fcn", 0.03125), ("fcn", 1.0)]
    acts = grid[("fcn", 0.03125)]
    assert sweep.cell_text(acts["relu"]) == "8.00 ± 2.00 (3)"
    assert sweep.cell_text(acts["swish"]) == "19.00 ± 1.41 (2), 1 diverged"
    assert sweep.cell_text(acts["era4"]) == "1.00 (1)" and sweep.cell_text(acts["era2"]) == \
        "4.00 ± 1.00 (3)"
    assert sweep.best_fixed(acts, "error") == "gelu"                 # lowest mean error, 6.33
    low, high = _welch([4, 5, 3], [7, 7, 5])
    assert sweep.difference_text(acts["era2"], acts["gelu"]) == \
        f"-2.33 [{low:+.2f}, {high:+.2f}]"
    text = sweep.sweep_tables(grid)
    assert f"| fcn | 1/32 | gelu | -2.33 [{low:+.2f}, {high:+.2f}] | – |" in text
    assert "| fcn | 1 | relu | – | – |" in text
    figure = sweep.figure(grid, tmp_path / "fig.png")
    assert figure.stat().st_size > 10_000


def test_table1_statistics_on_made_up_rows():
    rows = ([_row("era2", s, a, scale=1.0, init="random") for s, a in enumerate([0.90, 0.94])]
            + [_row("era2", s, a, scale=1.0, init="random", clip=1.0)
               for s, a in enumerate([0.97, 0.95])]
            + [_row("era2", s, a, scale=1.0) for s, a in enumerate([0.98, 0.97])]
            + [_row("era2", 0, None, scale=1.0, clip=1.0)]
            + [_row("era2", 5, 0.5, scale=1.0, init="random", clip=0.5)]  # another clip: out
            + [_row("relu", 0, 0.97, scale=1.0)])
    clip, grid = sweep.table1_grid(rows)
    assert clip == 1.0 and list(grid) == [("fcn", 1.0, "era2")]
    arms = grid[("fcn", 1.0, "era2")]
    assert sweep.cell_text(arms[("random", False)]) == "8.00 ± 2.83 (2)"
    assert sweep.cell_text(arms[("swish", True)]) == "–, 1 diverged"
    low, high = _welch([3, 5], [10, 6])                        # clipped - unclipped, random
    line = sweep.table1_table(clip, grid).splitlines()[-1]
    assert line.startswith("| fcn | 1 | era2 | 8.00 ± 2.83 (2) | 4.00 ± 1.41 (2) | ")
    assert line.endswith(f"| -4.00 [{low:+.2f}, {high:+.2f}] |")


def test_table1_plan_reaches_the_config():
    args = sweep.parse_args(["--table1", "--models", "cnn", "--seeds", "0,1", "--clip", "0.5"])
    runs = sweep.plan(args)
    assert len(runs) == 2 * 2 * 2 * 2 and {r["width_scale"] for r in runs} == {1.0}
    run = next(r for r in runs if r["activation"] == "era4" and r["init"] == "random"
               and r["clip_norm"] == 0.5 and r["seed"] == 1)
    config = config_lib.apply_overrides(config_lib.load_config("digits_cnn"),
                                        sweep.overrides(run, ["train.steps=7"]))
    assert (config.model.activation, config.model.era.degree, config.model.era.init) == \
        ("era", 4, "random")
    assert (config.optimizer.clip_norm, config.train.seed, config.train.steps) == (0.5, 1, 7)
    default = sweep.parse_args([])
    assert default.widths == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]
    assert len(sweep.plan(default)) == 2 * 6 * 5 * 3
    assert all(r["init"] == ("swish" if r["activation"].startswith("era") else None)
               and r["clip_norm"] == 0 for r in sweep.plan(default))


@pytest.mark.parametrize("argv", [["--table1", "--activations", "relu"], ["--widths", "0"],
                                  ["--widths", "1/x"], ["--models", "mlp"], ["--clip", "0"],
                                  ["--set", "train.steps=2", "optimizer.clip_norm=1"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as err:
        sweep.parse_args(argv)
    assert err.value.code == 2 and "error:" in capsys.readouterr().err


def test_the_tool_writes_rows_resumes_and_records_divergence(tmp_path, monkeypatch, capsys):
    out, fig = tmp_path / "rows.json", tmp_path / "fig.png"
    argv = ["--models", "fcn", "--widths", "1/32,1/16", "--activations", "relu,era2",
            "--seeds", "0", "--out", str(out), "--figure", str(fig)]
    assert sweep.main([*argv, "--set", "train.steps=2"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4 and fig.is_file()
    assert {(r["width_scale"], r["activation"]) for r in rows} == {
        (w, a) for w in (1 / 32, 1 / 16) for a in ("relu", "era2")}
    for r in rows:
        assert not r["diverged"] and 0 <= r["accuracy"] <= 1 and r["steps"] == 2
        assert r["epochs"] == 40 and r["set"] == ["train.steps=2"] and r["commit"]
        assert r["seconds"] > 0 and r["clip_norm"] == 0
    params = {(r["width_scale"], r["activation"]): r["params"] for r in rows}
    assert params[(1 / 32, "relu")] == 4390 and params[(1 / 32, "era2")] == 4390 + 3 * 6

    import tools.classification_table as table
    monkeypatch.setattr(table, "run_one", lambda *a: pytest.fail("a finished run ran again"))
    capsys.readouterr()
    assert sweep.main([*argv, "--set", "train.steps=2"]) == 0
    assert "4 of 4 runs already" in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"] == rows
    monkeypatch.undo()

    diverging = ["--widths", "1/32", "--activations", "relu", "--set", "train.steps=5",
                 "optimizer.lr=1e9"]
    assert sweep.main([*argv, *diverging]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 5 and rows[-1]["diverged"] and rows[-1]["accuracy"] is None
    assert rows[-1]["steps"] < 5 and "optimizer.lr" in rows[-1]["diverged_because"]
    capsys.readouterr()
    assert sweep.main(["--report", "--out", str(out), "--figure", str(fig)]) == 0
    assert "1 rows of other protocols" in capsys.readouterr().out
    assert sweep.main(["--report", "--out", str(tmp_path / "none.json")]) == 2
