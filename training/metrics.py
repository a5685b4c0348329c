"""Correlation metrics of IQA practice: SRCC, and PLCC after a 4-parameter logistic fit.

PLCC measures linearity, but a model's scores and MOS are usually related monotonically, not
linearly; IQA papers (VQEG's practice, followed by Q-Bench and Q-Align) first map predictions to
MOS with a monotonic logistic and report the PLCC of the mapped values. The fit here is a small
Levenberg-Marquardt in numpy (no scipy needed):

    f(x) = (b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2,    b4 > 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def rankdata(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank (as Spearman's coefficient needs)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    a = np.asarray(x, dtype=np.float64) - np.mean(x)
    b = np.asarray(y, dtype=np.float64) - np.mean(y)
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def srcc(predictions: Sequence[float], mos: Sequence[float]) -> float:
    """Spearman rank-order correlation."""
    return pearson(rankdata(predictions), rankdata(mos))


def logistic4(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = np.clip(-(x - b[2]) / b[3], -60, 60)
    return (b[0] - b[1]) / (1 + np.exp(z)) + b[1]


@dataclass
class LogisticFit:
    """A fitted logistic, in the units of the original predictions."""

    params: tuple[float, float, float, float]
    converged: bool
    iterations: int
    rmse: float

    def __call__(self, x: Sequence[float]) -> np.ndarray:
        return logistic4(np.asarray(x, dtype=np.float64), np.asarray(self.params))


def fit_logistic(predictions: Sequence[float], mos: Sequence[float], max_iterations: int = 500) -> LogisticFit:
    """Least-squares fit of :func:`logistic4` by Levenberg-Marquardt.

    Predictions are standardised first (the fit is then well scaled whatever their range) and the
    parameters mapped back. Starts from the usual guess: plateaus at max/min MOS, centre at the mean
    prediction, slope one standard deviation; a negative correlation is absorbed by b1 < b2.
    """
    x_raw = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(mos, dtype=np.float64)
    centre, spread = float(x_raw.mean()), float(x_raw.std()) or 1.0
    x = (x_raw - centre) / spread
    rising = pearson(x, y) >= 0 if len(x) > 1 else True
    b = np.array([y.max(), y.min(), 0.0, 1.0]) if rising else np.array([y.min(), y.max(), 0.0, 1.0])
    damping = 1e-2
    residual = y - logistic4(x, b)
    cost = float(residual @ residual)
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported below)
        jacobian = _jacobian(x, b)
        gradient = jacobian.T @ residual
        normal = jacobian.T @ jacobian
        improved = False
        while damping < 1e12:
            step = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), gradient)
            candidate = b + step
            candidate[3] = max(abs(candidate[3]), 1e-6)
            new_residual = y - logistic4(x, candidate)
            new_cost = float(new_residual @ new_residual)
            if new_cost < cost:
                improved = True
                relative = (cost - new_cost) / max(cost, 1e-300)
                b, residual, cost = candidate, new_residual, new_cost
                damping = max(damping / 3, 1e-12)
                break
            damping *= 4
        if not improved or relative < 1e-12:
            converged = True
            break
    params = (float(b[0]), float(b[1]), float(b[2] * spread + centre), float(b[3] * spread))
    return LogisticFit(params=params, converged=converged, iterations=iterations,
                       rmse=float(np.sqrt(cost / max(1, len(y)))))


def _jacobian(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d f / d (b1, b2, b3, b4) for every x."""
    z = np.clip(-(x - b[2]) / b[3], -60, 60)
    e = np.exp(z)
    g = 1 / (1 + e)
    common = (b[0] - b[1]) * g * g * e
    return np.stack([g, 1 - g, -common / b[3], -common * (x - b[2]) / (b[3] * b[3])], axis=1)


def correlation_report(predictions: Sequence[float], mos: Sequence[float]) -> dict[str, object]:
    """SRCC, PLCC after the logistic fit, raw PLCC, and the fit itself."""
    n = len(predictions)
    if n < 3:
        return {"n": n, "srcc": None, "plcc": None, "plcc_raw": None, "fit": None}
    fit = fit_logistic(predictions, mos)
    mapped = fit(predictions)
    plcc = pearson(mapped, mos)
    return {"n": n, "srcc": srcc(predictions, mos), "plcc": plcc if np.isfinite(plcc) else None,
            "plcc_raw": pearson(predictions, mos),
            "fit": {"params": list(fit.params), "converged": fit.converged, "iterations": fit.iterations,
                    "rmse": fit.rmse}}
