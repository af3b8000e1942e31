"""Figures of a UDC PSF for ``fer-degrade psf``: the PSF (log scale) and its MTF."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from fercore.atomic import atomic_write_bytes, atomic_write_text
from fercore.imageio import write_image

from .optics import mtf


def psf_log_image(kernel: np.ndarray, decades: float = 5.0, zoom: int = 4) -> np.ndarray:
    """``(3, K, K)`` PSF -> ``K*zoom x K*zoom x 3`` uint8: each channel in its own colour,
    ``log10`` of the value relative to the channel's peak, ``decades`` below the peak = black."""
    peak = kernel.max(axis=(1, 2), keepdims=True)
    lg = np.log10(np.maximum(kernel / peak, 10.0 ** -decades))
    img = ((lg + decades) / decades).clip(0, 1)
    rgb = (img.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    return np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)


def mtf_figure(kernel: np.ndarray, title: str) -> bytes:
    """PNG bytes of the MTF along the horizontal and vertical frequency axes, per channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = kernel.shape[-1]
    pad = max(256, k)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    colours = ("tab:red", "tab:green", "tab:blue")
    for c in range(3):
        big = np.zeros((pad, pad))
        o = pad // 2 - k // 2
        big[o:o + k, o:o + k] = kernel[c]
        m = mtf(big)
        f = np.arange(pad // 2 + 1) / pad
        axes[0].plot(f, m[0, :pad // 2 + 1], color=colours[c], label="RGB"[c])
        axes[1].plot(f, m[:pad // 2 + 1, 0], color=colours[c], label="RGB"[c])
    for ax, name in zip(axes, ("horizontal", "vertical")):
        ax.set_xlabel("cycles / pixel")
        ax.set_title(f"MTF, {name} frequencies")
        ax.set_xlim(0, 0.5)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("contrast")
    axes[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def save_psf_figures(udc, out: str | Path) -> list[Path]:
    """Write ``psf.npy``, ``psf.png``, ``mtf.png`` and ``psf.json`` for a :class:`~degrade.udc.UDC`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kernel = udc.psf_np
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(kernel.transpose(1, 2, 0)), allow_pickle=False)
    atomic_write_bytes(out / "psf.npy", buf.getvalue())
    write_image(out / "psf.png", psf_log_image(kernel))
    atomic_write_bytes(out / "mtf.png", mtf_figure(kernel, f"{udc.display.name}, pixel {udc.display.pixel_um} um"))
    atomic_write_text(out / "psf.json", json.dumps(udc.describe(), indent=2, sort_keys=True) + "\n")
    return [out / n for n in ("psf.npy", "psf.png", "mtf.png", "psf.json")]
