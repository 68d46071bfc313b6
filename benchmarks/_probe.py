"""Linear (ridge) probes of embeddings, shared by the teacher benchmarks.

Features are standardised with the fitting set's mean and standard deviation; ridge is
solved in closed form with an unpenalised intercept (the fitting targets' mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ALPHAS = np.logspace(-3, 4, 15)  # the ridge grid of every probe here


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge on standardised features; returns weights and intercept."""
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ (y - y.mean()))
    return weights, float(y.mean())


def fold_labels(n: int, folds: int, seed: int) -> np.ndarray:
    """A seeded fold number (0..folds-1) per sample, as balanced as a permutation allows."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def choose_alpha(
    x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = ALPHAS, folds: int = 5, seed: int = 0
) -> float:
    """Alpha with the lowest k-fold cross-validated MAE on the fitting set."""
    fold = np.random.default_rng(seed).integers(0, folds, len(y))
    errors = []
    for alpha in alphas:
        mae = []
        for k in range(folds):
            fit, held = fold != k, fold == k
            w, b = ridge_fit(x[fit], y[fit], alpha)
            mae.append(np.abs(x[held] @ w + b - y[held]).mean())
        errors.append(np.mean(mae))
    return float(alphas[int(np.argmin(errors))])


def standardise(fit: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``fit`` and ``others`` scaled by ``fit``'s per-column mean and std (constant columns
    stay at 0)."""
    mean, std = fit.mean(0), fit.std(0) + 1e-8
    return [(a - mean) / std for a in (fit, *others)]


def regression_scores(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Coefficient of determination R² and mean absolute error."""
    residual = ((prediction - target) ** 2).sum()
    total = ((target - target.mean()) ** 2).sum()
    return {"r2": 1.0 - float(residual / total), "mae": float(np.abs(prediction - target).mean())}


def fit_and_score(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    alphas: Sequence[float] = ALPHAS,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Standardise on the training rows, pick alpha by inner 5-fold CV, predict the test rows."""
    a, b = standardise(train_x, test_x)
    alpha = choose_alpha(a, train_y, alphas, seed=seed)
    weights, intercept = ridge_fit(a, train_y, alpha)
    return b @ weights + intercept, alpha


def cross_validated_probe(
    x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, alphas: Sequence[float] = ALPHAS
) -> dict[str, float]:
    """K-fold ridge probe: R² and MAE of the pooled out-of-fold predictions, median alpha."""
    fold = fold_labels(len(y), folds, seed)
    prediction = np.empty(len(y))
    chosen = []
    for k in range(folds):
        fit, held = fold != k, fold == k
        prediction[held], alpha = fit_and_score(x[fit], y[fit], x[held], alphas, seed)
        chosen.append(alpha)
    return {**regression_scores(prediction, y), "alpha": float(np.median(chosen))}
