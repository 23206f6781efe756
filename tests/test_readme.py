"""The README's ten-line example runs and prints what the README says it does."""
import re
from pathlib import Path

import pytest


def test_readme_example():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", text, re.S).group(1)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # the README's own code, nothing else
    r, x, y = env["r"], env["x"], env["y"]
    # values the README comments promise (derived by hand in tests/test_core_seed.py)
    assert r.status == "optimal"
    assert (r.leader[x], r.follower[y], r.multipliers["shift"]) == pytest.approx((0.5, 1.5, 2.0), abs=1e-5)
    assert r.sensitivity().dy_dx.tolist() == [[pytest.approx(1.0, abs=1e-8)]]
