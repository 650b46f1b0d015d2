"""Equinox surrogate models (magnetization dynamics, hysteresis): added by later work."""
