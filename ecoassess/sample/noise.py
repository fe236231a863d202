"""Spatially correlated random fields (spectral synthesis), all from an explicit numpy Generator."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fractal(rng: np.random.Generator, shape: tuple[int, int], beta: float = 3.0,
            cutoff_px: float | None = None) -> np.ndarray:
    """Zero-mean, unit-std power-law noise (power ∝ k^-beta); ``cutoff_px`` removes wavelengths longer than it."""
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    if cutoff_px:
        amp *= 1.0 - np.exp(-((k * cutoff_px) ** 4))
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    field = np.fft.irfft2(spec, s=shape)
    field -= field.mean()
    std = field.std()
    return (field / std if std > 0 else field).astype("float32")


def upsample(field: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling of a smooth field by an integer factor (cell-centre aligned)."""
    if factor == 1:
        return field
    h, w = field.shape
    out = ndimage.zoom(field, factor, order=1, mode="nearest", grid_mode=True)
    return out[: h * factor, : w * factor].astype("float32")


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)
