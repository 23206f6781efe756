"""A handful of BOLIB problems against their published best-known values, and the benchmark CLI."""
import json
import subprocess
import sys

import pytest

import workbench as wb

# name -> BOLIB's best-known upper value (from the literature, shipped in the JSON).
CASES = ["Bard1984a", "MitsosBarton2006Ex31", "Vogel2012", "AllendeStill2013", "ShimizuAiyoshi1981Ex1"]


def test_data_is_shipped_with_attribution():
    assert len(wb.bolib.names()) == 165 and len(wb.bolib.names(with_best_known=True)) == 153
    from importlib import resources
    text = resources.files("workbench").joinpath("data/BOLIB_README.md").read_text()
    assert "Zhou, Zemkoho & Tin" in text


@pytest.mark.parametrize("name", CASES)
def test_bolib_problem_reaches_best_known(name):
    p = wb.bolib.load(name)
    best = p.info["F_best"]
    r = p.solve(method="auto", time_limit=20)
    assert r.status == "optimal", r.summary()
    assert r.upper_value <= best + 0.01 * max(1.0, abs(best))
    # independent check of the claim: SciPy (not Ipopt) finds no better follower reply
    from workbench.bench.verify import verify_point
    v = verify_point(p, r.x, r.y)
    assert v.feasible and v.follower_optimal


def test_bolib_load_keeps_variable_order_and_start():
    p = wb.bolib.load("AiyoshiShimizu1984Ex2")
    assert [str(s) for s in p.leader] == ["x1", "x2"] and [str(s) for s in p.follower] == ["y1", "y2"]
    assert p.point_vector(None, "leader").tolist() == [10.0, 10.0]
    with pytest.raises(wb.ModelError, match="no BOLIB problem"):
        wb.bolib.load("NoSuchProblem")


def test_benchmark_cli(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "workbench.bench", "bolib", "--out", str(out), "--jobs", "2",
           "--only", "Bard1984a", "MitsosBarton2006Ex31", "--summary", str(tmp_path / "s.md")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    recs = json.loads(out.read_text())
    assert [r["name"] for r in recs] == ["Bard1984a", "MitsosBarton2006Ex31"]
    for r in recs:
        assert {"name", "x", "y", "upper_value", "lower_value", "status", "certified", "time_s"} <= set(r)
        assert r["solved"] and not r["false_claim"]
    assert "2/2]" in done.stdout and "| workbench" in (tmp_path / "s.md").read_text()
