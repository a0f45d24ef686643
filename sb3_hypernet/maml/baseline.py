"""The linear feature baseline of MAML's policy-gradient inner step (Duan et al. 2016, supplementary 2; Finn et al.
2017 use it as rllab does): a ridge regression of the returns on hand-made features of the state and the time step,
refitted on every batch of episodes."""

from __future__ import annotations

import torch as th

#: Ridge coefficients tried in turn when the normal equations are singular (the first is rllab's 1e-5).
REGULARISATION = (1e-5, 1e-5 + 10, 1e-5 + 20, 1e-5 + 30, 1e-5 + 40)


class LinearFeatureBaseline:
    """Values from a linear regression on ``[s, s^2, t, t^2, t^3, 1]`` (``t`` the 1-based time step / 100), fitted
    by least squares on the returns of a batch of episodes.

    Tensors are time-major: ``(T, B, ...)`` for T steps of B episodes, with a ``mask`` of the steps that exist.

    :param obs_dim: size of an observation
    """

    def __init__(self, obs_dim: int):
        if obs_dim < 1:
            raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
        self.obs_dim = int(obs_dim)
        self.weight = th.zeros(self.feature_dim)

    @property
    def feature_dim(self) -> int:
        """Number of features: ``2 * obs_dim + 4``."""
        return 2 * self.obs_dim + 4

    def features(self, observations: th.Tensor, mask: th.Tensor) -> th.Tensor:
        """``(T, B, feature_dim)`` features, zero on masked-out steps."""
        ones = mask.unsqueeze(-1).to(observations.dtype)
        observations = observations.reshape(*mask.shape, -1) * ones
        time = th.cumsum(ones, dim=0) * ones / 100.0
        return th.cat([observations, observations**2, time, time**2, time**3, ones], dim=-1)

    def fit(self, observations: th.Tensor, returns: th.Tensor, mask: th.Tensor) -> None:
        """Fit the weights to the ``returns`` ``(T, B)`` of the episodes; ``RuntimeError`` if the normal equations
        stay singular at every regularisation of :data:`REGULARISATION`."""
        features = self.features(observations, mask).reshape(-1, self.feature_dim).double()
        targets = returns.reshape(-1, 1).double()
        gram, moments = features.T @ features, features.T @ targets
        eye = th.eye(self.feature_dim, dtype=th.float64)
        for coefficient in REGULARISATION:
            solution, info = th.linalg.solve_ex(gram + coefficient * eye, moments)
            if info.item() == 0 and th.isfinite(solution).all():
                self.weight = solution.reshape(-1).to(observations.dtype)
                return
        raise RuntimeError(
            "LinearFeatureBaseline: the normal equations X^T X stay singular at every regularisation "
            f"({', '.join(f'{c:g}' for c in REGULARISATION)})"
        )

    def predict(self, observations: th.Tensor, mask: th.Tensor) -> th.Tensor:
        """Values ``(T, B)`` of the steps."""
        return self.features(observations, mask) @ self.weight.to(observations.dtype)
