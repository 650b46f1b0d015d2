"""Benchmark: one NSGA-II generation, vectorized jitted vmap vs pymoo's elementwise loop.

The problem has real per-point work: two coaxial current loops (radii, separation and
currents are the design parameters); the field `B` is evaluated with
`invdesign.fields.loop_field` on a small sphere of observation points around the trap
centre. Objectives: maximise the mean `|B|^2` on the sphere above its centre value (trap
strength, T^2) and minimise the resistive-power proxy `sum_i I_i^2 2 pi a_i` (A^2 m).
Constraint: the largest `|B|` on the sphere stays below 1 T.

Both paths run the identical NSGA-II (same seed, same operators) through pymoo's ask/tell
loop and evaluate with the same jitted single-point function of the normalised vector:

- vectorized: `invdesign.optimize.PymooProblem`, whose `_evaluate` makes one
  jitted `vmap` call over the population padded to `pop`;
- elementwise: a pymoo `ElementwiseProblem` calling the jitted single-point function once
  per individual (pymoo's default looped runner).

Compile time (first call) is reported separately; the per-generation times are the median
over `--gens` timed generations after `--warmup` warm-up generations. Prints the time per
generation spent in evaluation and in total, and the ratios elementwise / vectorized.

    python studies/benchmarks/bench_nsga2.py [--pop 200] [--gens 5] [--points 32]

Measured on the 2-core CPU development machine (jax 0.10.2, pymoo 0.6.2, pop 200):

- two-loops (32 points): evaluation 1.5 ms vectorized vs 15.8 ms with a jitted
  element-wise loop (10x), whole generation 11.7 ms vs 25.9 ms (2.2x); against the plain
  un-jitted element-wise loop 1702 ms (1123x evaluation, 146x per generation);
- coil-trap-pareto (equilibrium + Hessian + 40 x 40 escape-barrier flood per design):
  77 ms vs 119 ms (1.5x): the jitted single design is already dominated by real work.

On CPU the jitted element-wise path pays ~50 us of JAX dispatch per individual, and pymoo's
own NSGA-II bookkeeping (~9 ms per generation at pop 200) bounds the whole-generation ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import ElementwiseProblem

import invdesign  # noqa: F401  (x64)
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    PymooProblem,
    VectorizedEvaluator,
)

try:
    from invdesign.fields import loop_field
except ImportError:  # pragma: no cover
    # TODO: remove once invdesign.fields.loop_field is always available; this stand-in only
    # has comparable work (a few hundred flops per point and loop), not the exact field.
    def loop_field(points, radius, current, center, normal):
        d = points[..., None, :] - center
        z = d[..., 2]
        r2 = d[..., 0] ** 2 + d[..., 1] ** 2
        a = radius
        k2 = 4 * a * jnp.sqrt(r2) / ((a + jnp.sqrt(r2)) ** 2 + z**2)
        poly = sum(0.1 * (i + 1) * k2**i for i in range(20))
        bz = 2e-7 * jnp.pi * current * a**2 / (a**2 + z**2 + r2) ** 1.5 * poly
        return jnp.stack([0.0 * bz, 0.0 * bz, bz], axis=-1).sum(axis=-2)


def sphere_points(n: int, radius: float) -> np.ndarray:
    """`n` Fibonacci points on a sphere of the given radius (m)."""
    i = np.arange(n) + 0.5
    theta = np.arccos(1 - 2 * i / n)
    phi = np.pi * (1 + 5**0.5) * i
    return radius * np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])


def two_loop_problem(n_points: int) -> DesignProblem:
    space = DesignSpace(
        [
            Parameter("radius_1", 1e-3, 1e-2, "m", long_name="radius of loop 1", log=True),
            Parameter("radius_2", 1e-3, 1e-2, "m", long_name="radius of loop 2", log=True),
            Parameter("separation", 1e-3, 2e-2, "m", long_name="distance between the loops"),
            Parameter("current_1", 1.0, 100.0, "A", long_name="current of loop 1", log=True),
            Parameter("current_2", -100.0, 100.0, "A", long_name="current of loop 2"),
        ]
    )
    points = jnp.asarray(sphere_points(n_points, 5e-4))

    def evaluate(p):
        radius = jnp.stack([p["radius_1"], p["radius_2"]])
        current = jnp.stack([p["current_1"], p["current_2"]])
        half = 0.5 * p["separation"]
        center = jnp.stack([jnp.stack([0.0, 0.0, -half]), jnp.stack([0.0, 0.0, half])])
        normal = jnp.array([0.0, 0.0, 1.0])
        b_sphere = loop_field(points, radius, current, center, normal)
        b_center = loop_field(jnp.zeros(3), radius, current, center, normal)
        b2 = jnp.sum(b_sphere**2, axis=-1)
        return {
            "trap": jnp.mean(b2) - jnp.sum(b_center**2),
            "power": jnp.sum(current**2 * 2 * jnp.pi * radius),
            "b_max": jnp.sqrt(jnp.max(b2)) - 1.0,
        }

    return DesignProblem(
        "two_loops",
        space,
        evaluate,
        [Objective("trap", sense="max", units="T^2", scale=1e-6), Objective("power", units="A^2 m", scale=1.0)],
        [Constraint("b_max", units="T")],
    )


class ElementwiseDesign(ElementwiseProblem):
    """pymoo elementwise problem: one jitted single-point call per individual, with the same
    objective signs / scales and constraint scales as `PymooProblem`."""

    def __init__(self, problem: DesignProblem, one):
        super().__init__(n_var=len(problem.space), n_obj=len(problem.objectives),
                         n_ieq_constr=len(problem.constraints), xl=0.0, xu=1.0)
        self.design, self.one, self.eval_time = problem, one, 0.0

    def _evaluate(self, x, out, *args, **kwargs):
        t0 = time.perf_counter()
        o = {k: np.asarray(float(v)) for k, v in self.one(x).items()}
        out["F"] = self.design.objective_matrix(o)
        if self.design.constraints:
            out["G"] = self.design.constraint_matrix(o)
        self.eval_time += time.perf_counter() - t0


class TimedVectorized(PymooProblem):
    """`PymooProblem` that accumulates the time spent in `_evaluate`."""

    eval_time = 0.0

    def _evaluate(self, x, out, *args, **kwargs):
        t0 = time.perf_counter()
        super()._evaluate(x, out, *args, **kwargs)
        self.eval_time += time.perf_counter() - t0


def run(pm_problem, pop: int, warmup: int, gens: int, seed: int):
    algo = NSGA2(pop_size=pop, eliminate_duplicates=True)
    algo.setup(pm_problem, termination=("n_gen", warmup + gens), seed=seed, verbose=False)
    total, evals = [], []
    for g in range(warmup + gens):
        e0, t0 = pm_problem.eval_time, time.perf_counter()
        infills = algo.ask()
        algo.evaluator.eval(pm_problem, infills)
        algo.tell(infills=infills)
        if g >= warmup:
            total.append(time.perf_counter() - t0)
            evals.append(pm_problem.eval_time - e0)
    return statistics.median(total), statistics.median(evals), algo.pop.get("F")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop", type=int, default=200)
    parser.add_argument("--gens", type=int, default=5, help="timed generations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed generations first")
    parser.add_argument("--points", type=int, default=32, help="observation points on the sphere")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager-gens", type=int, default=1,
                        help="generations timed with the un-jitted elementwise loop (0: skip)")
    parser.add_argument("--problem", choices=["two-loops", "coil-trap-pareto"], default="two-loops",
                        help="two-loops: field on a sphere of points; coil-trap-pareto: the "
                             "concentric-trap Pareto problem (equilibrium, Hessian, escape barrier)")
    args = parser.parse_args()

    if args.problem == "coil-trap-pareto":
        from invdesign_problems.coil_trap import pareto_problem

        problem = pareto_problem()
    else:
        problem = two_loop_problem(args.points)
    space = problem.space
    one = jax.jit(lambda z: problem._traced_evaluate(space.from_unit(z)))
    z0 = np.full(len(space), 0.5)
    t0 = time.perf_counter()
    jax.block_until_ready(one(z0))
    compile_one = time.perf_counter() - t0

    evaluator = VectorizedEvaluator(problem, args.pop)
    t0 = time.perf_counter()
    evaluator(np.tile(z0, (args.pop, 1)))
    compile_vec = time.perf_counter() - t0

    # Both paths agree on the values.
    Z = np.random.default_rng(1).random((8, len(space)))
    _, batch = evaluator(Z)
    single = [one(z) for z in Z]
    for k in batch:
        np.testing.assert_allclose(batch[k], [float(s[k]) for s in single], rtol=1e-10, atol=1e-300)

    vec_total, vec_eval, F_vec = run(TimedVectorized(problem, evaluator), args.pop, args.warmup, args.gens, args.seed)
    ew_total, ew_eval, F_ew = run(ElementwiseDesign(problem, one), args.pop, args.warmup, args.gens, args.seed)
    same = F_vec.shape == F_ew.shape and np.allclose(F_vec, F_ew, rtol=1e-9)
    eager = None
    if args.eager_gens > 0:
        # the plain elementwise loop: pymoo calls the (un-jitted) JAX function per individual
        plain = lambda z: problem._traced_evaluate(space.from_unit(jnp.asarray(z)))  # noqa: E731
        eager = run(ElementwiseDesign(problem, plain), args.pop, 1, args.eager_gens, args.seed)

    what = f"{args.points} field points x 2 loops" if args.problem == "two-loops" else args.problem
    print(f"NSGA-II, pop {args.pop}, {what} per evaluation, "
          f"median of {args.gens} generations after {args.warmup} warm-up ({jax.devices()[0].platform})")
    print(f"compile: vectorized {compile_vec * 1e3:8.1f} ms   single-point {compile_one * 1e3:8.1f} ms (excluded below)")
    print(f"evaluation per generation: vectorized {vec_eval * 1e3:8.2f} ms   elementwise {ew_eval * 1e3:8.2f} ms   "
          f"ratio {ew_eval / vec_eval:6.1f}x")
    print(f"whole generation:          vectorized {vec_total * 1e3:8.2f} ms   elementwise {ew_total * 1e3:8.2f} ms   "
          f"ratio {ew_total / vec_total:6.1f}x")
    if eager is not None:
        print(f"un-jitted elementwise loop: evaluation {eager[1] * 1e3:8.1f} ms   whole generation "
              f"{eager[0] * 1e3:8.1f} ms   ratios vs vectorized: evaluation {eager[1] / vec_eval:6.1f}x, "
              f"generation {eager[0] / vec_total:6.1f}x")
    print(f"identical populations in both runs: {same}")


if __name__ == "__main__":
    main()
