"""Concrete design problems built from the `invdesign` library."""
