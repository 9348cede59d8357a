"""Networks: the spec's MLP/DLN (:class:`Network`), a residual MLP and a char transformer."""

from learnmech.models.network import Network, Trace, activation_fn, build_model, lecun_mlp
from learnmech.models.resmlp import ResMLP, res_mlp
from learnmech.models.transformer import CharTransformer, char_transformer

__all__ = [
    "CharTransformer",
    "Network",
    "ResMLP",
    "Trace",
    "activation_fn",
    "build_model",
    "char_transformer",
    "lecun_mlp",
    "res_mlp",
]
