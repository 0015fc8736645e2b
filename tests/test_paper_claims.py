"""tools/paper_claims.py: pooling, per-cell statistics and the ERA-minus-best interval."""
import json

import numpy as np
import pytest

from tools import paper_claims as claims


def _row(act, seed, pa, head="transformer", width=64, steps=3000, sha="a" * 64,
         diverged=False):
    return {"head": head, "width": width, "activation": act, "seed": seed,
            "mpjpe": None if diverged else pa + 40, "pa_mpjpe": None if diverged else pa,
            "mpvpe": None if diverged else pa + 60, "diverged": diverged,
            "backbone_sha256": sha, "protocol": {"steps": steps, "batch": 64},
            "mean_body": {"mpjpe": 390.0, "pa_mpjpe": 155.0, "mpvpe": 460.0}}


def test_welch_interval_matches_the_closed_form():
    a, b = [100.0, 102.0, 101.0], [104.0, 103.0, 108.0, 105.0]
    diff, low, high = claims.welch_interval(a, b)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    from scipy.stats import t
    half = t.ppf(0.975, dof) * np.sqrt(va + vb)
    assert diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (low, high) == pytest.approx((diff - half, diff + half))
    assert claims.welch_interval([1.0], b) is None


def test_paired_interval_matches_the_closed_form_over_common_seeds():
    a = [_row("era4", s, v) for s, v in enumerate([100.0, 102.5, 101.0, 99.0])]
    b = [_row("gelu", s, v) for s, v in enumerate([101.0, 103.0, 102.5])]   # no seed 3
    diff, low, high, n = claims.paired_interval(a, b, "pa_mpjpe")
    d = np.array([-1.0, -0.5, -1.5])
    from scipy.stats import t
    half = t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert n == 3 and diff == pytest.approx(d.mean())
    assert (low, high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert claims.paired_interval(a[:1], b, "pa_mpjpe") is None


def test_cells_pool_one_backbone_and_protocol_and_count_divergence(tmp_path, capsys):
    rows = [_row("relu", s, 110 + s) for s in range(3)] + \
        [_row("gelu", s, 108 + s) for s in range(3)] + \
        [_row("era4", s, 105 + s) for s in range(3)] + \
        [_row("swish", 0, 0, diverged=True), _row("swish", 1, 111)] + \
        [_row("relu", 9, 50, sha="b" * 64), _row("relu", 8, 50, steps=6000)]
    pooled = claims.pooled(rows)
    assert len(pooled) == 11        # the other backbone's and the other protocol's are left out
    grid = claims.cells(pooled)
    acts = grid[("transformer", 64)]
    assert acts["swish"]["diverged"] == 1 and len(acts["swish"]["runs"]) == 1
    assert claims.best_fixed(acts) == "gelu"
    lucky = dict(acts, relu={"runs": [_row("relu", 0, 90)], "diverged": 0})
    assert claims.best_fixed(lucky) == "gelu"          # one seed does not displace three
    few = {a: {"runs": [_row(a, 0, v)], "diverged": 0} for a, v in zip(claims.FIXED, (3, 1, 2))}
    assert claims.best_fixed(few) == "gelu"            # none at three seeds: the lowest mean
    assert claims.best_fixed({a: {"runs": [], "diverged": 0} for a in claims.FIXED}) is None
    m, s, n = claims.mean_std(acts["era4"]["runs"], "pa_mpjpe")
    assert (m, n) == (106.0, 3) and s == pytest.approx(1.0)
    assert "+0.0" not in claims.differences(grid) and "-3.0 [" in claims.differences(grid)
    assert len(claims.pooled(rows, steps=6000)) == 1
    cpu = dict(_row("relu", 7, 60), protocol={"steps": 3000, "batch": 64, "variant": "cpu"})
    assert cpu not in claims.pooled(rows + [cpu] * 20)     # the CPU head's set: never pooled
    assert claims.pooled(rows + [cpu], variant="cpu") == [cpu]
    seeds = claims.per_seed(grid).splitlines()     # a diverged seed is a gap, not a number
    assert seeds[0] == "| head-width | activation | seed 0 | seed 1 | seed 2 |"
    assert "| transformer-64 | swish | – | 111.0 | – |" in seeds
    assert "| transformer-64 | era4 | 105.0 | 106.0 | 107.0 |" in seeds

    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": rows}))
    assert claims.main(["--rows", str(path), "--figure", str(tmp_path / "fig.png")]) == 0
    out = capsys.readouterr().out
    assert "1 diverged" in out and (tmp_path / "fig.png").stat().st_size > 10_000
    assert "106.0 ± 1.0 (3) [paper 47.3 ± 1.1]" in out     # ours beside Table 9
    assert claims.main(["--rows", str(tmp_path / "missing.json")]) == 2


def test_paper_gap_is_era_minus_the_papers_best_fixed_activation():
    assert claims.paper_gap(("transformer", 64), "era4") == pytest.approx(47.3 - 50.0)  # ReLU
    assert claims.paper_gap(("transformer", 256), "era4") == pytest.approx(42.5 - 43.3)  # GELU
    assert claims.paper_gap(("mixer", 64), "era2") == pytest.approx(50.9 - 51.4)   # "ERA 50.9"
    assert claims.paper_gap(("mixer", 256), "era2") is None       # the quote gives no ERA-2
    assert claims.paper_gap(("transformer", 16), "era4") is None  # nor width 16


def test_era_gaps_give_welch_and_paired_intervals_against_the_best_fixed():
    acts = claims.cells([_row("gelu", s, 108 + s) for s in range(3)] +
                        [_row("era4", s, v) for s, v in enumerate((105, 106.5, 107))] +
                        [_row("era2", 0, 104)])[("transformer", 64)]
    best, gaps = claims.era_gaps(acts)
    assert best == "gelu"
    welch, paired = gaps["era4"]
    assert welch == pytest.approx(claims.welch_interval([105, 106.5, 107], [108, 109, 110]))
    assert paired[0] == pytest.approx(-17 / 6) and paired[3] == 3
    assert gaps["era2"] == (None, None)          # one run: no interval either way
    assert claims.era_gaps(claims.cells([_row("era4", 0, 100)])[("transformer", 64)]) is None


def test_doc_blocks_are_rewritten_from_the_rows_and_the_prose_is_kept(tmp_path, capsys):
    rows = [_row(a, s, v + s) for a, v in (("gelu", 108), ("era4", 105)) for s in range(3)]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": rows}))
    doc = tmp_path / "page.md"
    marked = ("Intro 1.\n<!-- paper_claims:table9 -->\n{}\n<!-- /paper_claims:table9 -->\n"
              "Middle.\n<!-- paper_claims:gaps_pa_mpjpe -->\n{}\n"
              "<!-- /paper_claims:gaps_pa_mpjpe -->\nEnd.\n")
    doc.write_text(marked.format("| stale |", "old"))
    args = ["--rows", str(path), "--figure", str(tmp_path / "f.png"), "--doc", str(doc)]
    assert claims.main(args) == 0
    blocks = claims.sections(rows, claims.cells(rows))
    text = doc.read_text()
    assert text == marked.format(blocks["table9"], blocks["gaps_pa_mpjpe"])
    assert "106.0 ± 1.0 (3) [paper 47.3 ± 1.1]" in text and "stale" not in text
    assert "rewrote 2 block(s)" in capsys.readouterr().out
    assert claims.main(args) == 0 and doc.read_text() == text        # idempotent

    cpu_rows = [dict(r, protocol={**r["protocol"], "variant": "cpu"}, pa_mpjpe=r["pa_mpjpe"] - 9)
                for r in rows]
    path.write_text(json.dumps({"rows": rows + cpu_rows}))
    doc.write_text(text + "<!-- paper_claims:cpu_table9 -->\n<!-- /paper_claims:cpu_table9 -->\n")
    assert claims.main(args + ["--variant", "cpu"]) == 0     # the second set: its own blocks
    cpu_table = claims.sections(cpu_rows, claims.cells(cpu_rows))["table9"]
    assert doc.read_text() == text + ("<!-- paper_claims:cpu_table9 -->\n" + cpu_table +
                                      "\n<!-- /paper_claims:cpu_table9 -->\n")
    assert "97.0 ± 1.0 (3)" in cpu_table
    capsys.readouterr()

    doc.write_text("<!-- paper_claims:mpjpe -->\nno end\n")
    assert claims.main(args) == 2                                    # unclosed: refused
    assert doc.read_text() == "<!-- paper_claims:mpjpe -->\nno end\n"
    assert "has no closing" in capsys.readouterr().err


def _paired_text(diffs):
    """A paired 95 % t interval in the table's format, from the closed form."""
    from scipy.stats import t
    d = np.asarray(diffs, float)
    half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}] ({len(d)})"


def test_era_vs_fixed_pairs_era4_with_each_fixed_activation_beside_the_paper():
    rows = [_row("relu", s, v) for s, v in enumerate((110.0, 112.0, 111.5))] + \
        [_row("gelu", s, 108.0 + s) for s in range(3)] + \
        [_row("era4", s, v) for s, v in enumerate((105.0, 106.5, 107.0))] + \
        [_row("era4", 0, 113.0, width=16), _row("relu", 0, 116.0, width=16),
         _row("relu", 1, 115.0, width=16), _row("era4", 1, 114.5, width=16)]
    grid = claims.cells(rows)
    lines = claims.era_vs_fixed(grid).splitlines()
    assert lines[0].startswith("| head | width | era4 − relu (pa_mpjpe, paired)")
    relu, gelu = _paired_text([-5.0, -5.5, -4.5]), _paired_text([-3.0, -2.5, -3.0])
    # Table 9 at Transformer-64: ERA-4 47.3, ReLU 50.0, GELU 50.8; its Swish diverged (N/A).
    assert lines[3] == f"| transformer | 64 | {relu}; paper -2.7 | {gelu}; paper -3.5 | – |"
    assert lines[2] == f"| transformer | 16 | {_paired_text([-3.0, -0.5])} | – | – |"
    assert "paper" not in claims.era_vs_fixed(grid, "mpjpe")     # Table 9 is PA-MPJPE only
