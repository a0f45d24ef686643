"""Diagnostics of the recurrent meta-RL policies: how much actor and critic read the latent (NeurIPS 2023, Figure
11) and how their parameters split between encoder, hypernetwork and base networks (CoRL 2022, section 5.3)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.type_aliases import PyTorchObs

from sb3_hypernet.common.generated_layers import GeneratedLinear


class PolicyDiagnostics:
    """Mixed into :class:`~sb3_hypernet.MetaRecurrentPolicy`: read-only measurements of a built policy."""

    def latent_gradient_norms(
        self, obs: PyTorchObs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> dict[str, float]:
        """Sensitivity of actor and critic to the latent embedding (NeurIPS 2023, section 5 and Figure 11).

        The latent embedding is what the policy reads of the trajectory (the hypernetwork's input). Returns
        ``{"actor": ..., "value": ...}``: ``actor`` is the mean over samples of the Frobenius norm of
        d(actor output)/d(latent embedding), the actor output being the logits or the Gaussian mean; ``value`` is
        the mean over samples of the L2 norm of d(value)/d(latent embedding), the quantity of Figure 11.
        """
        with th.no_grad():
            (condition, state), _ = self._encode(obs, lstm_states, episode_starts)
            latent, embedded_state = self.mlp_extractor.embed(condition, state)
        latent = latent.detach().requires_grad_(True)
        with th.enable_grad():
            actor = self.action_net(self.mlp_extractor.actor_output(latent, embedded_state))
            value = self.value_net(self.mlp_extractor.critic_output(latent, embedded_state))
            # Samples are independent, so one vector-Jacobian product per output unit gives every sample's row.
            units = th.eye(actor.shape[1], device=actor.device).unsqueeze(1).expand(-1, *actor.shape)
            (actor_jacobian,) = th.autograd.grad(actor, latent, units, is_grads_batched=True)
            (value_gradient,) = th.autograd.grad(value.sum(), latent)
        return {
            "actor": float(actor_jacobian.pow(2).sum(dim=(0, 2)).sqrt().mean()),
            "value": float(value_gradient.norm(dim=1).mean()),
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the trajectory encoder, the hypernetwork and the base (actor and critic) networks.

        For hypernetwork policies the base network's weights are generated: they count as the number generated
        per sample (CoRL 2022, section 5.3 compares models by both numbers).
        """
        head = self.mlp_extractor
        generated = [m for m in head.modules() if isinstance(m, GeneratedLinear)]
        hypernetwork = sum(p.numel() for m in generated for p in m.parameters())
        hypernetwork += sum(
            p.numel() for name, p in head.named_parameters() if "hypernet_trunk" in name or ".film." in name
        )
        head_total = sum(p.numel() for p in head.parameters())
        outputs = sum(p.numel() for p in [*self.action_net.parameters(), *self.value_net.parameters()])
        encoder = sum(p.numel() for p in self.history_encoder.parameters())
        return {
            "encoder": encoder,
            "hypernetwork": hypernetwork,
            "base_network": head_total - hypernetwork + outputs + sum(m.n_generated for m in generated),
            "total": sum(p.numel() for p in self.parameters()),
        }
