"""Demagnetizing field by zero-padded FFT convolution with the Newell tensor."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._grid import Grid
from ._newell import demag_tensor


def _fft_axes(lengths) -> tuple[int, ...]:
    """Spatial axes to transform, the longest last (rfft halves the last axis)."""
    axes = [a for a in range(3) if lengths[a] > 1]
    if not axes:
        return ()
    return tuple(sorted(axes, key=lambda a: lengths[a]))


class DemagKernel(eqx.Module):
    """Fourier transform of the Newell demagnetization tensor for a grid.

    The tensor is built in float64 NumPy once (near field from Newell's formulas, far field
    by Gauss quadrature of the cell-averaged dipole kernel, see `_newell`); only its
    real-valued transform is kept.
    Apply it with `demag_field`.

    **Arguments:**

    - `grid`: the simulation grid.
    """

    grid: Grid = eqx.field(static=True)
    axes: tuple = eqx.field(static=True)
    lengths: tuple = eqx.field(static=True)
    n_hat: jnp.ndarray  # (6, *transformed shape): xx, yy, zz, xy, xz, yz

    def __init__(self, grid: Grid):
        self.grid = grid
        tensor = demag_tensor(grid.shape, grid.cell)  # (6, Lx, Ly, Lz) wrap-around order
        lengths = tuple(int(n) for n in tensor.shape[1:])
        self.lengths = lengths
        self.axes = _fft_axes(lengths)
        if self.axes:
            axes = tuple(a + 1 for a in self.axes)
            hat = np.fft.rfftn(tensor, axes=axes)
            # the tensor is even/odd in each displacement, so its transform is real
            scale = np.max(np.abs(hat))
            if np.max(np.abs(hat.imag)) > 1e-9 * scale:  # pragma: no cover - internal check
                raise RuntimeError("demag tensor transform is not real: broken symmetry")
            self.n_hat = jnp.asarray(hat.real)
        else:
            self.n_hat = jnp.asarray(tensor)


def demag_field(kernel: DemagKernel, M: jnp.ndarray, *, planar: bool = False) -> jnp.ndarray:
    """Demagnetizing field H_d (A/m) of the magnetization `M = Ms m`, shape `(nx, ny, nz, 3)`.

    **Arguments:**

    - `kernel`: `DemagKernel` of the grid.
    - `M`: magnetization in A/m (zero in empty cells).
    - `planar`: promise that `M` has no z-component on a one-layer grid (`nz = 1`); the
      z-transforms are then skipped and `H_d` has no z-component either (in one layer the
      xz and yz couplings vanish by symmetry, so this is exact).

    **Returns:** H_d with the shape of `M`, in the precision of `M`.
    """
    shape = kernel.grid.shape
    comps = [M[..., 0], M[..., 1], M[..., 2]]
    if not kernel.axes:
        n = kernel.n_hat[:, 0, 0, 0]
        mx, my, mz = comps
        return -jnp.stack(
            [n[0] * mx + n[3] * my + n[4] * mz, n[3] * mx + n[1] * my + n[5] * mz, n[4] * mx + n[5] * my + n[2] * mz],
            axis=-1,
        )
    axes = kernel.axes
    L = kernel.lengths
    last, others = axes[-1], axes[:-1]
    one_layer = kernel.lengths[2] == 1
    if planar and not one_layer:
        raise ValueError("planar=True needs a one-layer grid (nz = 1)")

    def forward(c):
        # transform axis by axis so that the zero padding of the other axes is never touched
        x = jnp.fft.rfft(c, n=L[last], axis=last)
        for a in others:
            x = jnp.fft.fft(x, n=L[a], axis=a)
        return x

    def inverse(h):
        for a in reversed(others):
            h = jax.lax.slice_in_dim(jnp.fft.ifft(h, axis=a), 0, shape[a], axis=a)
        return jax.lax.slice_in_dim(jnp.fft.irfft(h, n=L[last], axis=last), 0, shape[last], axis=last)

    n = kernel.n_hat
    if planar:
        mh = [forward(c) for c in comps[:2]]
        hx = n[0] * mh[0] + n[3] * mh[1]
        hy = n[3] * mh[0] + n[1] * mh[1]
        out = [inverse(h) for h in (hx, hy)]
        return -jnp.stack(out + [jnp.zeros_like(out[0])], axis=-1)
    mh = [forward(c) for c in comps]
    if one_layer:  # one layer: xz and yz couplings vanish by symmetry
        hx = n[0] * mh[0] + n[3] * mh[1]
        hy = n[3] * mh[0] + n[1] * mh[1]
        hz = n[2] * mh[2]
    else:
        hx = n[0] * mh[0] + n[3] * mh[1] + n[4] * mh[2]
        hy = n[3] * mh[0] + n[1] * mh[1] + n[5] * mh[2]
        hz = n[4] * mh[0] + n[5] * mh[1] + n[2] * mh[2]
    out = [inverse(h) for h in (hx, hy, hz)]
    return -jnp.stack(out, axis=-1)
