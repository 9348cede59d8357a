"""Networks built from a :class:`~learnmech.system.System`'s architecture and its plan."""

from learnmech.models.network import Network, activation_fn, build_model, lecun_mlp

__all__ = ["Network", "activation_fn", "build_model", "lecun_mlp"]
