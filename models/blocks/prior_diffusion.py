"""Few-step diffusion on a prior vector (LRDif / LLDif Sec. 3.3, after DiffIR).

The prior ``Z`` is a vector, so the whole diffusion is tiny: a beta schedule of ``T`` steps
(default 4), an MLP denoiser ``eps_theta(concat(Z_t, t, c))`` and the DDPM posterior::

    q(Z_T | Z) = N(sqrt(abar_T) Z, (1 - abar_T) I)                                 (Eq. 14)
    Z_{t-1} = c1_t * Zhat_0(Z_t, t, c) + c2_t * Z_t  [+ sigma_t * n_t]             (Eq. 16)

``Zhat_0`` is the denoiser's output (``parameterization="x0"``, DiffIR) or is recovered from
its noise estimate (``"eps"``). The bracketed term is the *inserted noise* of LRDif's Table 5:
with it the reverse step samples the posterior, without it the step is its deterministic mean
(DiffIR). All noise is passed in by the caller, so a step's randomness is fully controlled.

Schedules (``make_betas``): ``"linear"`` -- DiffIR's ``linspace(sqrt(b0), sqrt(b1), T)^2``
with ``b0 = 0.1, b1 = 0.99`` (a single step uses ``b1``, so ``Z_T`` is always close to noise);
``"cosine"`` -- Nichol & Dhariwal's cosine ``abar``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SCHEDULES = ("linear", "cosine")
PARAMETERIZATIONS = ("x0", "eps")
KL_DIRECTIONS = ("s1||s2", "s2||s1")


def make_betas(schedule: str, steps: int, beta_start: float = 0.1, beta_end: float = 0.99) -> Tensor:
    """``(steps,)`` float64 noise variances ``beta_t`` of a named schedule (see module doc)."""
    from fercore.errors import ConfigError

    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"must be an integer >= 1, got {steps!r}", flag="T")
    if schedule == "linear":
        if not 0 < beta_start <= beta_end < 1:
            raise ConfigError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}",
                              flag="beta_start/beta_end")
        if steps == 1:
            return torch.tensor([beta_end], dtype=torch.float64)
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise ConfigError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}", flag="schedule")


class ResidualLinear(nn.Module):
    """``x + LeakyReLU(Linear(x))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.leaky_relu(self.fc(x), 0.1)


class PriorDenoiser(nn.Module):
    """``eps_theta(concat(Z_t, t, c))``: an MLP on the noisy prior, the step and the condition.

    ``t`` enters as the scalar ``t / (10 T)`` (DiffIR). Layers: ``Linear(2P + 1 -> P)`` +
    LeakyReLU, ``depth`` residual Linear + LeakyReLU blocks, ``Linear(P -> P)``.

    ``cond_skip=True`` (not in the papers; off by default) adds the condition to the output,
    ``c + MLP(...)``, with the last layer initialised to zero: an ``x0`` denoiser then starts
    by predicting the condition itself, so a freshly built chain returns ``c`` instead of a
    random vector (use it with the ``x0`` parameterisation, where output and condition are
    both priors).
    """

    def __init__(self, prior_dim: int, steps: int, depth: int = 1, cond_skip: bool = False):
        super().__init__()
        self.time_scale = 1.0 / (10.0 * steps)
        self.cond_skip = cond_skip
        self.inp = nn.Linear(2 * prior_dim + 1, prior_dim)
        self.body = nn.Sequential(*[ResidualLinear(prior_dim) for _ in range(depth)])
        self.out = nn.Linear(prior_dim, prior_dim)
        if cond_skip:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, z_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """``z_t``, ``cond``: ``(B, P)``; ``t``: ``(B,)`` step indices -> ``(B, P)``."""
        h = torch.cat([z_t, t.to(z_t.dtype)[:, None] * self.time_scale, cond], dim=1)
        out = self.out(self.body(F.leaky_relu(self.inp(h), 0.1)))
        return cond + out if self.cond_skip else out


class PriorDiffusion(nn.Module):
    """Schedule buffers, forward noising and the ``T``-step reverse chain around a denoiser.

    Args:
        denoiser: module ``(z_t, t, cond) -> (B, P)``.
        steps: ``T``.
        schedule, beta_start, beta_end: see :func:`make_betas`.
        parameterization: ``"x0"`` (denoiser predicts the clean prior) or ``"eps"`` (noise).
    """

    def __init__(self, denoiser: nn.Module, steps: int = 4, schedule: str = "linear",
                 beta_start: float = 0.1, beta_end: float = 0.99, parameterization: str = "x0"):
        super().__init__()
        from fercore.errors import ConfigError

        if parameterization not in PARAMETERIZATIONS:
            raise ConfigError(f"unknown parameterization {parameterization!r}; choose one of "
                              f"{', '.join(PARAMETERIZATIONS)}", flag="parameterization")
        if getattr(denoiser, "cond_skip", False) and parameterization != "x0":
            raise ConfigError("adds the condition to the denoiser's clean-prior estimate; it needs "
                              "parameterization='x0'", flag="denoiser_skip")
        self.denoiser = denoiser
        self.steps = steps
        self.parameterization = parameterization
        betas = make_betas(schedule, steps, beta_start, beta_end)
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
        buffers = {
            "betas": betas,
            "alphas_cumprod": abar,
            "sqrt_alphas_cumprod": abar.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - abar).sqrt(),
            "sqrt_recip_alphas_cumprod": (1 / abar).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1 / abar - 1).sqrt(),
            "posterior_std": (betas * (1 - abar_prev) / (1 - abar)).sqrt(),
            "posterior_c1": betas * abar_prev.sqrt() / (1 - abar),
            "posterior_c2": (1 - abar_prev) * alphas.sqrt() / (1 - abar),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)
        # the same numbers as Python floats for the reverse loop (no indexing ops per step)
        self._coef = {name: [float(v) for v in value] for name, value in buffers.items()}

    def q_sample(self, z0: Tensor, t: int, noise: Tensor) -> Tensor:
        """Eq. 14: ``sqrt(abar_t) z0 + sqrt(1 - abar_t) noise`` (``t`` 0-based, ``T-1`` last)."""
        c = self._coef
        return c["sqrt_alphas_cumprod"][t] * z0 + c["sqrt_one_minus_alphas_cumprod"][t] * noise

    def predict_x0(self, z_t: Tensor, t: int, cond: Tensor) -> Tensor:
        """The denoiser's estimate of the clean prior at step ``t`` (one denoiser call)."""
        tt = torch.full((z_t.shape[0],), t, device=z_t.device, dtype=torch.long)
        out = self.denoiser(z_t, tt, cond)
        if self.parameterization == "x0":
            return out
        c = self._coef
        return c["sqrt_recip_alphas_cumprod"][t] * z_t - c["sqrt_recipm1_alphas_cumprod"][t] * out

    def reverse_step(self, z_t: Tensor, t: int, cond: Tensor, noise: Tensor | None = None) -> Tensor:
        """Eq. 16: posterior mean from ``Zhat_0``; plus ``sigma_t * noise`` when ``noise`` is
        given and ``t > 0`` (the inserted noise)."""
        c = self._coef
        z = c["posterior_c1"][t] * self.predict_x0(z_t, t, cond) + c["posterior_c2"][t] * z_t
        if noise is not None and t > 0:
            z = z + c["posterior_std"][t] * noise
        return z

    def reverse(self, z_T: Tensor, cond: Tensor, step_noise: Tensor | None = None) -> Tensor:
        """Run the ``T`` reverse steps from ``z_T``; ``step_noise``: ``(T, B, P)`` inserted
        noise (row ``t`` used at step ``t``) or ``None`` for deterministic means."""
        z = z_T
        for t in reversed(range(self.steps)):
            z = self.reverse_step(z, t, cond, None if step_noise is None else step_noise[t])
        return z

    def train_chain(self, z0: Tensor, cond: Tensor, start_noise: Tensor,
                    step_noise: Tensor | None = None) -> Tensor:
        """Training: noise the target prior to step ``T`` (Eq. 14), then run all ``T``
        reverse steps (gradients flow through the whole chain)."""
        return self.reverse(self.q_sample(z0, self.steps - 1, start_noise), cond, step_noise)


def prior_kl(z_s1: Tensor, z_s2: Tensor, temperature: float = 1.0, direction: str = "s1||s2") -> Tensor:
    """LRDif Eq. 17: KL divergence between the softmax-normalised priors, batch mean.

    ``"s1||s2"``: ``sum p1 log(p1 / p2)`` with ``p_i = softmax(z_i / temperature)`` (the
    stage-1 prior is the target, as DiffIR's KD loss); ``"s2||s1"`` swaps the arguments.
    ``z_s1``, ``z_s2``: ``(B, P)`` -> scalar >= 0 (zero iff the softmaxes are equal).
    """
    from fercore.errors import ConfigError

    if direction not in KL_DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r}; choose one of {', '.join(KL_DIRECTIONS)}",
                          flag="kl_direction")
    if temperature <= 0:
        raise ConfigError(f"must be > 0, got {temperature}", flag="kl_temperature")
    log_p1 = F.log_softmax(z_s1 / temperature, dim=-1)
    log_p2 = F.log_softmax(z_s2 / temperature, dim=-1)
    if direction == "s2||s1":
        log_p1, log_p2 = log_p2, log_p1
    return F.kl_div(log_p2, log_p1, reduction="batchmean", log_target=True)
