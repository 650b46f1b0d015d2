"""`invdesign._xla`: the XLA CPU flags are added only where the user has not chosen, and only
for the jaxlib they are known to work with (an unknown flag aborts XLA)."""

import os
import subprocess
import sys

from invdesign import _xla


def test_user_choices_are_kept_and_flags_are_not_repeated(monkeypatch):
    monkeypatch.setattr(_xla, "_jaxlib_minor", lambda: (0, 10))
    env = _xla.environment_with_cpu_flags({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true --foo=1"})
    flags = env["XLA_FLAGS"].split()
    assert "--xla_cpu_use_fusion_emitters=true" in flags and "--xla_cpu_use_fusion_emitters=false" not in flags
    assert "--foo=1" in flags and "--xla_cpu_experimental_ynn_fusion_type=" in flags
    again = _xla.environment_with_cpu_flags(env)
    assert again["XLA_FLAGS"] == env["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "--bar=2")
    _xla.set_compile_flags()
    assert os.environ["XLA_FLAGS"].split() == ["--bar=2", "--xla_cpu_use_fusion_emitters=false"]


def test_other_jaxlib_versions_get_no_flags(monkeypatch):
    for version in ((0, 4), (0, 11), None):
        monkeypatch.setattr(_xla, "_jaxlib_minor", lambda v=version: v)
        assert _xla.compile_flags() == "" and _xla.cpu_flags() == ""
        assert "XLA_FLAGS" not in _xla.environment_with_cpu_flags({})
        monkeypatch.delenv("XLA_FLAGS", raising=False)
        _xla.set_compile_flags()
        assert "XLA_FLAGS" not in os.environ


def test_importing_invdesign_sets_the_flag_and_jax_accepts_it():
    # a fresh interpreter with the user's XLA_FLAGS removed: the import adds the flag for
    # jaxlib 0.10 (and none otherwise), and XLA starts and computes with it
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = ("import os, invdesign, jax.numpy as jnp; from invdesign._xla import compile_flags; "
            "assert os.environ.get('XLA_FLAGS', '') == compile_flags(); print(float(jnp.sum(jnp.arange(4.0))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6.0"
