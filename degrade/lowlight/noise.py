"""Optional sensor noise for real low light: shot + read noise at the darkened signal level.

Beyond the paper (Lightroom adds no noise). A camera that photographs a dark scene collects
few photons and amplifies the sensor signal by an analogue/digital gain ``G`` (its ISO). If the
darkened image has linear value ``y``, the sensor held ``y / G``; its shot noise (variance
proportional to the signal) and read noise (constant variance) are amplified with it::

    Var[y_noisy] = G * shot * y + G**2 * read            (Brooks et al. 2019, with the gain explicit)

``shot`` and ``read`` are the base-gain (``G = 1``) noise levels of a [0, 1] linear signal.
The noise is the heteroscedastic Gaussian approximation of Poisson + Gaussian noise (as in
Brooks et al.'s unprocessing), so the operation is differentiable in the image and the
parameters (reparameterised: ``y + sqrt(Var) * z``). Channels get independent noise.

Each sample's standard normals ``z`` come from its own CPU ``torch.Generator`` and are then
moved to the image device, so the noise depends on (seed, image id) only -- not on the batch,
its size or the device.
"""

from __future__ import annotations

import math

from torch import Tensor

from fercore.checks import per_sample

from ..base import Noise, standard_normal

#: Brooks et al. (2019) read-noise model: log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26).
BROOKS_SLOPE, BROOKS_INTERCEPT, BROOKS_SIGMA = 2.18, 1.20, 0.26


def brooks_read_noise(shot: float, normal: float) -> float:
    """Read-noise variance paired with ``shot`` by Brooks et al.'s fit; ``normal`` ~ N(0, 1)."""
    return math.exp(BROOKS_SLOPE * math.log(shot) + BROOKS_INTERCEPT + BROOKS_SIGMA * normal)


def sample_normals(generators: Noise, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """``(B, *shape)`` standard normals in ``like``'s dtype and device: row ``i`` from
    ``generators[i]`` (one CPU generator per sample, drawn on the CPU and moved), or from one
    generator on ``like``'s device, or given as a tensor (:data:`~fercore.transform.Noise`)."""
    return standard_normal(generators, shape, like.device, batch=like.shape[0], dtype=like.dtype).to(like.dtype)


def noise_variance(linear: Tensor, shot: Tensor, read: Tensor, gain: Tensor) -> Tensor:
    """``G * shot * y + G**2 * read`` for ``(B, 3, H, W)`` ``linear`` and ``(B,)`` parameters."""
    shot, read, gain = (p.view(-1, 1, 1, 1) for p in (shot, read, gain))
    return gain * shot * linear.clamp_min(0.0) + gain * gain * read


def sensor_noise(linear: Tensor, shot: float | Tensor, read: float | Tensor, gain: float | Tensor,
                 generators: Noise) -> Tensor:
    """Add amplified shot + read noise to darkened linear light.

    Args:
        linear: ``(B, 3, H, W)`` linear light at the *output* (darkened) level, >= 0.
        shot: base-gain shot-noise factor, number or ``(B,)``, in [0, 0.1] (Brooks: 1e-4..0.012).
        read: base-gain read-noise variance, number or ``(B,)``, in [0, 0.01].
        gain: camera gain ``G`` (1 = base ISO), number or ``(B,)``, in [1, 1024].
        generators: one CPU ``torch.Generator`` per sample (a rebuilt set), or one generator on
            the images' device, or the normals (:data:`~fercore.transform.Noise`).

    Returns:
        ``(B, 3, H, W)`` noisy linear light, unclipped (may be negative, as raw data is).
    """
    b = linear.shape[0]
    shot = per_sample(shot, b, "shot_noise", linear, lo=0.0, hi=0.1, hint="Brooks et al. use 1e-4..0.012")
    read = per_sample(read, b, "read_noise", linear, lo=0.0, hi=0.01, hint="a variance; typical 1e-8..1e-4")
    gain = per_sample(gain, b, "camera_gain", linear, lo=1.0, hi=1024.0,
                       hint="the amplification a camera applied, 1 = base ISO")
    var = noise_variance(linear, shot, read, gain)
    z = sample_normals(generators, tuple(linear.shape[1:]), linear)
    return linear + var.clamp_min(1e-20).sqrt() * z
