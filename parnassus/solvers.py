"""Probability paths and ODE samplers for flow matching and diffusion, independent of any network.

Time runs from ``t = 0`` (data) to ``t = 1`` (noise), as in the Parnassus entire-event paper (eqs. 6-7;
inverted with respect to Lipman et al.). An affine path interpolates

    x_t = alpha(t) * x0 + sigma(t) * eps,    alpha(0) = sigma(1) = 1,  alpha(1) = sigma(0) = 0,

with ``eps ~ N(0, 1)``. :class:`LinearPath` is flow matching / rectified flow (``alpha = 1 - t``,
``sigma = t``); :class:`CosinePath` is the variance-preserving cosine diffusion path used with
v-prediction (``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)``).

:func:`sample` integrates the probability-flow ODE ``dx/dt = velocity(x, t)`` from ``t = 1`` (standard normal
noise) down to ``t_end`` with one of :data:`SOLVERS`; :func:`evaluations` gives the number of velocity
calls it makes. The velocity is any callable ``velocity(x, t)``, where ``t`` is a tensor of shape
``(x.shape[0],)`` (0-d when ``x`` is 0-d) filled with the current time, on ``x``'s device and in its dtype.

Time-tensor broadcasting in the path helpers: ``t`` may be a float, a 0-d tensor, a ``(batch,)`` tensor
(expanded with trailing singleton dimensions to match ``x``), or any tensor already broadcastable to ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Velocity = Callable[[Tensor, Tensor], Tensor]

SOLVERS = ("euler", "midpoint", "heun", "pndm", "dpmpp2m")
"""Names accepted by :func:`sample` and :func:`evaluations`."""

TIME_EPS = 1e-5
"""Training times from :func:`sample_time` lie in ``[TIME_EPS, 1 - TIME_EPS]``."""

PNDM_WARMUP = 3
"""PNDM: number of classical 4th-order Runge-Kutta steps (4 velocity calls each) before Adams-Bashforth."""


def _as_tensor(t: Tensor | float) -> Tensor:
    """``t`` as a tensor (python floats become float64 0-d tensors)."""
    return t if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)


def _like(coef: Tensor, x: Tensor) -> Tensor:
    """A time coefficient cast to ``x``'s dtype/device, with trailing singleton dims so it broadcasts to ``x``."""
    coef = coef.to(dtype=x.dtype, device=x.device)
    if 0 < coef.ndim < x.ndim:
        coef = coef.reshape(coef.shape + (1,) * (x.ndim - coef.ndim))
    return coef


def sample_time(n: int, power: float = 1.0, generator: torch.Generator | None = None, *,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` training times ``t = u ** power`` with ``u ~ U(0, 1)``, clamped to ``[1e-5, 1 - 1e-5]``.

    ``power = 1`` is uniform; ``power > 1`` shifts mass towards ``t = 0`` (data, low noise), ``power < 1``
    towards ``t = 1`` (noise). The density is ``t ** (1 / power - 1) / power`` and the mean ``1 / (power + 1)``.
    ``device`` defaults to the generator's device (CPU without a generator).
    """
    if power <= 0:
        raise ValueError(f"power must be > 0, got {power}")
    if device is None and generator is not None:
        device = generator.device
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return (u**power).clamp(TIME_EPS, 1.0 - TIME_EPS).to(dtype)


class AffinePath:
    """An affine probability path ``x_t = alpha(t) x0 + sigma(t) eps``; subclasses define the schedule."""

    name: str = "affine"
    default_t_end: float = 0.0
    """End time used by :func:`sample` when ``t_end`` is not given."""

    sample_time = staticmethod(sample_time)

    def alpha(self, t: Tensor | float) -> Tensor:
        """Data coefficient ``alpha(t)``."""
        raise NotImplementedError

    def sigma(self, t: Tensor | float) -> Tensor:
        """Noise coefficient ``sigma(t)``."""
        raise NotImplementedError

    def d_alpha(self, t: Tensor | float) -> Tensor:
        """``d alpha / dt``."""
        raise NotImplementedError

    def d_sigma(self, t: Tensor | float) -> Tensor:
        """``d sigma / dt``."""
        raise NotImplementedError

    def _coefs(self, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``alpha, sigma, alpha', sigma'`` at ``t``, broadcastable to ``x``."""
        t = _as_tensor(t)
        return tuple(_like(f(t), x) for f in (self.alpha, self.sigma, self.d_alpha, self.d_sigma))  # type: ignore[return-value]

    def interpolate(self, x0: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
        """The noisy point ``x_t = alpha x0 + sigma eps``."""
        a, s, _, _ = self._coefs(t, x0)
        return a * x0 + s * eps

    def velocity_target(self, x0: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
        """Flow-matching regression target ``dx_t/dt = alpha' x0 + sigma' eps``."""
        _, _, da, ds = self._coefs(t, x0)
        return da * x0 + ds * eps

    def v_target(self, x0: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
        """v-prediction target (Salimans & Ho) ``v = alpha eps - sigma x0``."""
        a, s, _, _ = self._coefs(t, x0)
        return a * eps - s * x0

    def velocity_from_v(self, v: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """Velocity ``dx/dt`` implied by a v-prediction at ``x_t``.

        Solving ``x_t = a x0 + s eps``, ``v = a eps - s x0`` gives
        ``dx/dt = ((a a' + s s') x_t + (a s' - s a') v) / (a^2 + s^2)``; ``= (pi/2) v`` on the cosine path.
        """
        a, s, da, ds = self._coefs(t, x_t)
        return ((a * da + s * ds) * x_t + (a * ds - s * da) * v) / (a * a + s * s)

    def x0_from_velocity(self, u: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """Data prediction implied by velocity ``u`` at ``x_t``: ``(s' x_t - s u) / (s' a - s a')``."""
        a, s, da, ds = self._coefs(t, x_t)
        return (ds * x_t - s * u) / (ds * a - s * da)

    def eps_from_velocity(self, u: Tensor, x_t: Tensor, t: Tensor | float) -> Tensor:
        """Noise prediction implied by velocity ``u`` at ``x_t``: ``(a u - a' x_t) / (s' a - s a')``."""
        a, s, da, ds = self._coefs(t, x_t)
        return (a * u - da * x_t) / (ds * a - s * da)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearPath(AffinePath):
    """Flow matching / rectified flow: ``alpha = 1 - t``, ``sigma = t``. Sampling ends at ``t = 0`` by default."""

    name = "linear"

    def alpha(self, t: Tensor | float) -> Tensor:
        return 1.0 - _as_tensor(t)

    def sigma(self, t: Tensor | float) -> Tensor:
        return _as_tensor(t).clone()

    def d_alpha(self, t: Tensor | float) -> Tensor:
        return torch.full_like(_as_tensor(t), -1.0)

    def d_sigma(self, t: Tensor | float) -> Tensor:
        return torch.ones_like(_as_tensor(t))


class CosinePath(AffinePath):
    """Cosine diffusion path (v-prediction): ``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)``.

    Sampling ends at ``t = 0`` exactly by default: every helper is finite there (``x0_from_velocity`` divides
    by ``pi / 2``), DPM-Solver++ takes its last step to ``sigma = 0`` as the data prediction, and Euler,
    midpoint and PNDM (for ``steps > 3``) never evaluate the velocity at ``t_end``. The true velocity at
    ``t -> 0`` stays finite only for data with a smooth density; for (nearly) discrete features pass a
    small ``t_end`` (e.g. ``1e-3``) to :func:`sample`.
    """

    name = "cosine"

    def alpha(self, t: Tensor | float) -> Tensor:
        return torch.cos(0.5 * math.pi * _as_tensor(t))

    def sigma(self, t: Tensor | float) -> Tensor:
        return torch.sin(0.5 * math.pi * _as_tensor(t))

    def d_alpha(self, t: Tensor | float) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * _as_tensor(t))

    def d_sigma(self, t: Tensor | float) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * _as_tensor(t))


PATHS: dict[str, type[AffinePath]] = {"linear": LinearPath, "cosine": CosinePath}


def make_path(name: str) -> AffinePath:
    """The path called ``name`` (``"linear"`` or ``"cosine"``)."""
    try:
        return PATHS[name]()
    except KeyError:
        raise ValueError(f"unknown path {name!r}; valid: {', '.join(PATHS)}") from None


class Objective:
    """What a network is trained to output and what velocity that output implies, for one kind of model.

    ``"flow"``: conditional flow matching on the linear path, the output is the velocity ``dx/dt``;
    ``"diffusion"``: the cosine path with v-prediction, the velocity follows from
    :meth:`AffinePath.velocity_from_v`. Training regresses :meth:`target`; sampling integrates
    :meth:`velocity`, so neither needs to know which kind it has.
    """

    KINDS = {"flow": "linear", "diffusion": "cosine"}

    def __init__(self, kind: str):
        if kind not in self.KINDS:
            raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(self.KINDS)}")
        self.kind = kind
        self.path = make_path(self.KINDS[kind])

    def target(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """The regression target at ``x_t = path.interpolate(x0, eps, t)``."""
        return self.path.velocity_target(x0, eps, t) if self.kind == "flow" else self.path.v_target(x0, eps, t)

    def velocity(self, output: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The velocity ``dx/dt`` a network output at ``x_t`` stands for."""
        return output if self.kind == "flow" else self.path.velocity_from_v(output, x_t, t)

    def __repr__(self) -> str:
        return f"Objective({self.kind!r})"


def _check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")


def evaluations(solver: str, steps: int) -> int:
    """Number of velocity calls :func:`sample` makes with ``solver`` and ``steps`` steps.

    euler, dpmpp2m: ``steps``; midpoint, heun: ``2 * steps``; pndm: ``steps + 3 * min(steps, 3)``
    (its first three steps are 4-call Runge-Kutta steps).
    """
    _check_solver(solver)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if solver in ("midpoint", "heun"):
        return 2 * steps
    if solver == "pndm":
        return steps + 3 * min(steps, PNDM_WARMUP)
    return steps


def _log(value: float) -> float:
    return math.log(value) if value > 0 else -math.inf


@torch.no_grad()
def sample(velocity: Velocity, x1: Tensor, path: AffinePath, solver: str, steps: int,
           t_end: float | None = None) -> Tensor:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t = 1`` (``x = x1``, standard normal) to ``t_end``.

    Uses exactly ``steps`` steps on the uniform grid ``t_i = 1 + (t_end - 1) i / steps`` and
    :func:`evaluations` velocity calls. ``t_end`` defaults to ``path.default_t_end`` (0 for both paths).
    Solvers:

    - ``"euler"``: explicit Euler (1st order).
    - ``"midpoint"``: explicit midpoint Runge-Kutta (2nd order).
    - ``"heun"``: Heun's Runge-Kutta, trapezoidal corrector (2nd order); evaluates at ``t_end`` too.
    - ``"pndm"``: pseudo linear multistep (Liu et al. 2022): 4th-order Adams-Bashforth on the velocity,
      with classical 4th-order Runge-Kutta for the first three steps (4th order overall).
    - ``"dpmpp2m"``: DPM-Solver++(2M) (Lu et al. 2022), multistep on the data prediction
      ``path.x0_from_velocity`` in ``lambda = log(alpha / sigma)`` (2nd order). Written in the form
      ``x_t = alpha_t D + (sigma_t / sigma_s)(x_s - alpha_s D)``, finite at ``alpha_s = 0`` (``t = 1``);
      a step to ``sigma = 0`` is first order and returns ``alpha_t`` times the data prediction.

    Runs under ``torch.no_grad``; the result has ``x1``'s shape, dtype and device.
    """
    _check_solver(solver)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t_end = path.default_t_end if t_end is None else float(t_end)
    if not 0.0 <= t_end < 1.0:
        raise ValueError(f"t_end must be in [0, 1), got {t_end}")
    grid = [1.0 + (t_end - 1.0) * i / steps for i in range(steps)] + [t_end]

    def call(x: Tensor, t: float) -> Tensor:
        time = torch.full(x.shape[:1], t, dtype=x.dtype, device=x.device)
        return velocity(x, time).to(x.dtype)

    x = x1.clone()
    if solver == "dpmpp2m":
        return _dpmpp2m(call, x, path, grid)
    history: list[Tensor] = []  # pndm: velocities at previous grid points, newest last
    for i in range(steps):
        t, h = grid[i], grid[i + 1] - grid[i]
        if solver == "euler":
            x = x + h * call(x, t)
        elif solver == "midpoint":
            k1 = call(x, t)
            x = x + h * call(x + 0.5 * h * k1, t + 0.5 * h)
        elif solver == "heun":
            k1 = call(x, t)
            k2 = call(x + h * k1, grid[i + 1])
            x = x + 0.5 * h * (k1 + k2)
        elif i < PNDM_WARMUP:  # pndm warm-up: classical RK4
            k1 = call(x, t)
            k2 = call(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = call(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = call(x + h * k3, grid[i + 1])
            history.append(k1)
            x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        else:  # pndm: 4th-order Adams-Bashforth on the uniform grid
            history = history[-3:] + [call(x, t)]
            f3, f2, f1, f0 = history
            x = x + (h / 24.0) * (55.0 * f0 - 59.0 * f1 + 37.0 * f2 - 9.0 * f3)
    return x


def _dpmpp2m(call: Callable[[Tensor, float], Tensor], x: Tensor, path: AffinePath, grid: list[float]) -> Tensor:
    """DPM-Solver++(2M) along ``grid`` (decreasing times), data prediction from the velocity."""
    times = torch.tensor(grid, dtype=torch.float64)
    alpha, sigma = path.alpha(times).tolist(), path.sigma(times).tolist()
    lam = [_log(a) - _log(s) if s > 0 else math.inf for a, s in zip(alpha, sigma, strict=True)]
    prev_x0: Tensor | None = None
    prev_h = math.inf
    for i in range(len(grid) - 1):
        x0 = path.x0_from_velocity(call(x, grid[i]), x, grid[i])
        a_s, s_s, a_t, s_t = alpha[i], sigma[i], alpha[i + 1], sigma[i + 1]
        h = lam[i + 1] - lam[i]
        if s_t == 0.0:  # step to sigma = 0 (infinite h): first order, x_t = alpha_t * x0
            return a_t * x0
        data = x0
        if prev_x0 is not None and math.isfinite(prev_h):  # an infinite previous step (from alpha = 0) gives r = inf
            data = x0 + (h / (2.0 * prev_h)) * (x0 - prev_x0)
        x = a_t * data + (s_t / s_s) * (x - a_s * data)
        prev_x0, prev_h = x0, h
    return x
