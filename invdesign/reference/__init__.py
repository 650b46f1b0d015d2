"""Independent reference implementations for the tests and the accuracy studies.

This subpackage sits behind the ``test`` extra: nothing else in `invdesign` imports it, and
its mpmath-based modules need mpmath, which is declared only in the ``test`` extra of
``pyproject.toml`` (``pip install -e ".[test]"``). Importing one of them without mpmath raises
an `ImportError` saying so. The references never import the `invdesign` physics they check,
so a reference and the code under test share no code.

- `invdesign.reference.newell`: Newell's (1993) cell-pair demagnetization tensor and
  Aharoni's (1998) prism factors, evaluated in mpmath (checks `invdesign.micromag`).
- `invdesign.reference.levitation`: mpmath on-axis loop fields and their derivatives, a
  numpy Biot-Savart quadrature, a finite-difference Hessian and a Dijkstra minimax escape
  level (check `invdesign.fields` and `invdesign.levitation`).
- `invdesign.reference.paper_loop`: the cavity paper's N-loop algorithm (appendix A,
  Fig. 10) as a literal Python loop, numpy and scipy only (checks the cavity N-loop model;
  the speed baseline of ``studies/benchmarks/bench_cavity.py``).
"""
