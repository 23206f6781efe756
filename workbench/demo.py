"""``python -m workbench.demo``: solve, certify and differentiate the seed examples and a few BOLIB problems."""
from __future__ import annotations

import sympy as sp

import workbench as wb


def seed_problems() -> dict[str, wb.BilevelProblem]:
    """The three seed examples of the README (answers derived there by hand)."""
    x, y = sp.symbols("x y", real=True)
    return {
        "substitution": wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
                                          upper_constraints=[x >= 0, x <= 1], lower_objective=(y - x) ** 2 / 2,
                                          name="seed-substitution"),
        "kkt": wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - 1) ** 2 + (y - 1) ** 2,
                                 upper_constraints=[x >= -2, x <= 2], lower_objective=y ** 2 / 2 + x * y,
                                 lower_constraints=[wb.named("shift", y - x - 1 >= 0), wb.named("sign", y >= 0)],
                                 name="seed-kkt"),
        "spurious": wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                                      upper_constraints=[x >= -1, x <= 1],
                                      lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2,
                                      name="seed-spurious"),
    }


def main() -> int:
    print("workbench demo: solve -> certify -> differentiate\n")
    problems = dict(seed_problems())
    for name in ("Bard1984a", "MitsosBarton2006Ex31", "AllendeStill2013"):
        problems[name] = wb.bolib.load(name)
    for key, p in problems.items():
        r = p.solve()
        print(r.summary())
        if r.status == "optimal":
            s = r.sensitivity()
            try:
                print(f"  sensitivity: status {s.status}, dy/dx = {(s.dy_dx.round(6) + 0.0).tolist()}, "
                      f"dF/dx = {(s.hypergradient.round(6) + 0.0).tolist()}")  # + 0.0: no "-0.0"
            except wb.WorkbenchError as why:  # a kink or a degenerate point: no number without a derivative
                print(f"  sensitivity: status {s.status}: {type(why).__name__}: {str(why)[:160]}")
                continue
            if s.status == "regular":
                chk = s.check()
                print(f"  finite-difference check (dy/dx, dlam/dx, dF/dx): max abs error {chk['max_abs']:.2e}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
