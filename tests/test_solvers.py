"""Probability paths and ODE samplers (parnassus.solvers) on an analytic Gaussian problem."""

from __future__ import annotations

import math

import pytest
import torch

from parnassus.solvers import SOLVERS, CosinePath, LinearPath, evaluations, make_path, sample, sample_time

PATH_CLASSES = (LinearPath, CosinePath)

# data distribution x0 ~ N(MU, S^2), per dimension
MU = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
S = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)

# solver: (N, minimum observed order log2(err_N / err_2N), maximum or None)
ORDER_CASES = {
    "euler": (32, 0.9, 1.1),
    "midpoint": (32, 1.8, None),  # the linear path's Gaussian flow happens to give order 3 (h^2 term cancels)
    "heun": (32, 1.8, None),
    "pndm": (32, 3.5, None),  # RK4 warm-up keeps the full 4th order
    "dpmpp2m": (128, 1.7, None),  # O(h^2 log(1/h)) on a uniform-t grid: lambda steps do not shrink near t = 1
}


def gaussian_velocity(path):
    """Exact probability-flow velocity of x0 ~ N(MU, S^2) on ``path``."""

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(torch.float64)[:, None]
        a, s, da, ds = path.alpha(t), path.sigma(t), path.d_alpha(t), path.d_sigma(t)
        var = a * a * S * S + s * s
        x0_mean = MU + a * S * S / var * (x - a * MU)
        eps_mean = s / var * (x - a * MU)
        return da * x0_mean + ds * eps_mean

    return velocity


def gaussian_exact(path, x1: torch.Tensor, t_end: float) -> torch.Tensor:
    """Exact flow of x1 to ``t_end``: (x_t - alpha MU) / sqrt(V) is constant along it."""
    a1, s1 = path.alpha(1.0), path.sigma(1.0)
    z = (x1 - a1 * MU) / torch.sqrt(a1 * a1 * S * S + s1 * s1)
    a, s = path.alpha(t_end), path.sigma(t_end)
    return a * MU + torch.sqrt(a * a * S * S + s * s) * z


def test_order_of_accuracy():
    x1 = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rows, failures = [], []
    for path_class in PATH_CLASSES:
        path = path_class()
        velocity = gaussian_velocity(path)
        for t_end in (path.default_t_end, 0.3):
            exact = gaussian_exact(path, x1, t_end)
            for solver in SOLVERS:
                n, low, high = ORDER_CASES[solver]
                err_n, err_2n = ((sample(velocity, x1, path, solver, steps, t_end) - exact).abs().max().item()
                                 for steps in (n, 2 * n))
                order = math.log2(err_n / err_2n)
                rows.append(f"{path.name:7s} {t_end:5.2f} {solver:9s} {n:4d} {err_n:10.3e} {err_2n:10.3e} {order:6.2f}")
                if not (err_2n > 1e-12 and order >= low and (high is None or order <= high)):
                    failures.append(rows[-1])
    print("\npath    t_end solver       N      err_N     err_2N  order\n" + "\n".join(rows))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path_class", PATH_CLASSES)
def test_path_helpers_consistent(path_class):
    path = path_class()
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(9, 5, 3, dtype=torch.float64, generator=gen)
    eps = torch.randn(9, 5, 3, dtype=torch.float64, generator=gen)
    t = torch.cat([torch.tensor([0.0, 1.0, 1e-5]), torch.rand(6, generator=gen)]).to(torch.float64)
    x_t = path.interpolate(x0, eps, t)
    assert torch.allclose(x_t, path.alpha(t)[:, None, None] * x0 + path.sigma(t)[:, None, None] * eps)
    u = path.velocity_target(x0, eps, t)
    torch.testing.assert_close(path.x0_from_velocity(u, x_t, t), x0)
    torch.testing.assert_close(path.eps_from_velocity(u, x_t, t), eps)
    v = path.v_target(x0, eps, t)
    torch.testing.assert_close(path.velocity_from_v(v, x_t, t), u)
    if path_class is CosinePath:
        torch.testing.assert_close(path.velocity_from_v(v, x_t, t), 0.5 * math.pi * v)
    # 0-d and python-float times broadcast too; coefficients follow x's dtype
    torch.testing.assert_close(path.velocity_target(x0, eps, 0.25), path.velocity_target(x0, eps, torch.tensor(0.25)))
    assert path.velocity_target(x0.float(), eps.float(), t).dtype == torch.float32


@pytest.mark.parametrize("path_class", PATH_CLASSES)
def test_path_schedule(path_class):
    path = path_class()
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(path.alpha(ends), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(path.sigma(ends), torch.tensor([0.0, 1.0], dtype=torch.float64))
    t = torch.linspace(0.01, 0.99, 11, dtype=torch.float64)
    h = 1e-6
    torch.testing.assert_close(path.d_alpha(t), (path.alpha(t + h) - path.alpha(t - h)) / (2 * h))
    torch.testing.assert_close(path.d_sigma(t), (path.sigma(t + h) - path.sigma(t - h)) / (2 * h))
    assert isinstance(make_path(path.name), path_class)


def test_make_path_unknown():
    with pytest.raises(ValueError, match="linear"):
        make_path("sigmoid")


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 4.0])
def test_sample_time(power):
    n = 100_000
    t = sample_time(n, power, torch.Generator().manual_seed(3))
    assert t.shape == (n,) and t.dtype == torch.float32
    assert t.min() >= 1e-5 and t.max() <= 1 - 1e-5
    assert abs(t.double().mean().item() - 1 / (power + 1)) < 0.005
    assert abs((t <= 0.1).double().mean().item() - 0.1 ** (1 / power)) < 0.01  # CDF: P(t <= x) = x^(1/p)
    same = LinearPath().sample_time(n, power, torch.Generator().manual_seed(3))
    assert torch.equal(t, same)


def test_sample_time_bad_power():
    with pytest.raises(ValueError):
        sample_time(10, 0.0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7])
def test_evaluation_count_and_calls(solver, steps):
    path = CosinePath()
    x1 = torch.randn(6, 4, 2, generator=torch.Generator().manual_seed(4))
    times: list[float] = []

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert not torch.is_grad_enabled()
        assert x.shape == x1.shape and x.dtype == torch.float32
        assert t.shape == (6,) and t.dtype == torch.float32 and bool((t == t[0]).all())
        times.append(t[0].item())
        return -x + 0.1 * t[:, None, None]

    out = sample(velocity, x1, path, solver, steps, t_end=0.05)
    assert len(times) == evaluations(solver, steps)
    assert times[0] == 1.0 and min(times) >= 0.05 - 1e-7
    assert out.shape == x1.shape and out.dtype == x1.dtype and torch.isfinite(out).all()


def test_evaluations_formula():
    assert [evaluations(s, 10) for s in SOLVERS] == [10, 20, 20, 19, 10]


def test_bad_arguments():
    x1 = torch.zeros(2, 3)
    path = LinearPath()
    with pytest.raises(ValueError, match="euler.*midpoint.*heun.*pndm.*dpmpp2m"):
        sample(lambda x, t: x, x1, path, "rk45", 10)
    with pytest.raises(ValueError, match="valid"):
        evaluations("ddim", 10)
    with pytest.raises(ValueError):
        sample(lambda x, t: x, x1, path, "euler", 0)
    with pytest.raises(ValueError):
        sample(lambda x, t: x, x1, path, "euler", 10, t_end=1.0)


@pytest.mark.parametrize("kind", ["flow", "diffusion"])
def test_objective_target_implies_the_path_velocity(kind):
    """Whatever the kind, the velocity implied by a perfect output is the path's velocity target."""
    from parnassus.solvers import Objective

    objective = Objective(kind)
    generator = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(4, 6, 3, generator=generator), torch.randn(4, 6, 3, generator=generator)
    t = torch.rand(4, generator=generator) * 0.98 + 0.01
    x_t = objective.path.interpolate(x0, eps, t)
    velocity = objective.velocity(objective.target(x0, eps, t), x_t, t)
    torch.testing.assert_close(velocity, objective.path.velocity_target(x0, eps, t))
    with pytest.raises(ValueError, match="unknown model kind"):
        Objective("sigmoid")
