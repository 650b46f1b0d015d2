"""Physical constants in SI units (CODATA 2018)."""

MU0 = 1.25663706212e-6
"""Vacuum permeability mu_0 in T m / A."""

G0 = 9.80665
"""Standard gravitational acceleration in m / s^2."""
