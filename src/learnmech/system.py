"""The four components of a learning system (paper §2), as a validated spec.

A :class:`System` is architecture + data + objective + learning rule, plus seed, dtype and
device. It is immutable, round-trips through YAML and JSON, and its content hash is the
run id under which the store keeps its results::

    system = System(
        architecture=DeepLinear(hidden=[32]),
        data=LinearTeacher(singular_values=[3, 2, 1, 0.5]),
        learning_rule=LearningRule(optimizer="gd", lr=0.02, steps=1000),
    )
    system.run_id              # 16 hex digits, stable across processes and versions
    System.from_yaml(system.to_yaml()) == system

Conventions fixed here:

* ``mse`` is ``L = 1/(2n) Σ_i ‖y_i − f(x_i)‖²``: it carries the ½, sums over outputs and
  averages over examples, so gradient-flow time is ``t = lr · steps``.
* ``cross_entropy`` is the mean over examples of ``−log softmax(f(x_i))_{y_i}``.
* ``gd`` is full-batch gradient descent; ``sgd`` needs ``batch_size``; ``momentum`` is
  heavy-ball (full batch unless ``batch_size`` is set); ``adam`` is Adam with decoupled
  weight decay (AdamW). For the others ``weight_decay`` λ adds λθ to the gradient, so
  gradient flow reads ``dθ/dt = −∇L − λθ``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from learnmech.errors import InputError

Activation = Literal["relu", "tanh", "gelu", "erf", "identity"]
Parametrization = Literal["sp", "ntp", "mup", "mf"]


class Spec(BaseModel):
    """Base of every spec model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Parametrized(Spec):
    parametrization: Parametrization = "sp"
    init_scale: float = Field(1.0, gt=0, description="σ: weight std is σ·(the plan's base std)")
    output_multiplier: float = Field(1.0, gt=0, description="α: extra factor on the readout")
    base_width: int | None = Field(
        None, gt=0, description="width at which mup equals sp; defaults to the width"
    )


class MLP(_Parametrized):
    """Fully connected network ``x -> W_L φ(... φ(W_1 x))`` with ``depth`` weight layers."""

    kind: Literal["mlp"] = "mlp"
    width: int = Field(128, gt=0)
    depth: int = Field(2, ge=1, description="number of weight layers")
    activation: Activation = "relu"
    bias: bool = True


class DeepLinear(_Parametrized):
    """Deep linear network ``x -> W_L ⋯ W_1 x``: no bias, no activation.

    ``init="gaussian"`` draws each weight from the plan's Gaussian; ``init="near_identity"``
    sets ``W_l = σ (I + ε G_l)`` with ``G_l`` standard Gaussian and ``ε = init_noise``
    (all layers square), the small near-aligned start of Saxe et al.'s worked example.
    """

    kind: Literal["deep_linear"] = "deep_linear"
    hidden: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [16])
    init: Literal["gaussian", "near_identity"] = "gaussian"
    init_noise: float = Field(0.1, ge=0)

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1


Architecture = Annotated[MLP | DeepLinear, Field(discriminator="kind")]


class LinearTeacher(Spec):
    """Whitened Gaussian inputs and targets ``y = T x + noise``, ``T = U diag(s) Vᵀ``.

    The training inputs are whitened exactly (``XᵀX/n = I``), so ``Σ_xx = I`` and
    ``Σ_yx = T`` on the training set when ``noise = 0``. ``U``, ``V`` are Haar-random
    (seeded by ``seed``) with ``basis="random"``, identity columns with ``"identity"``
    (then ``T`` is diagonal).
    """

    name: Literal["linear_teacher"] = "linear_teacher"
    basis: Literal["random", "identity"] = "random"
    d_in: int = Field(6, gt=0)
    d_out: int = Field(6, gt=0)
    singular_values: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [3.0, 2.0, 1.0, 0.5]
    )
    n_train: int = Field(256, gt=0)
    n_test: int = Field(256, ge=0)
    noise: float = Field(0.0, ge=0)
    seed: int = 0

    @model_validator(mode="after")
    def _check_shapes(self) -> LinearTeacher:
        if len(self.singular_values) > min(self.d_in, self.d_out):
            raise ValueError(
                f"singular_values has {len(self.singular_values)} entries; at most "
                f"min(d_in, d_out) = {min(self.d_in, self.d_out)} allowed"
            )
        if self.n_train < self.d_in:
            raise ValueError(f"n_train = {self.n_train} must be at least d_in = {self.d_in}")
        return self


class Hierarchy(Spec):
    """Saxe et al.'s items × properties: canary, salmon, oak, rose × grow, move, roots, fly,
    swim, leaves, petals. Inputs are ``√4 · one-hot`` so that ``Σ_xx = I``."""

    name: Literal["hierarchy"] = "hierarchy"


class TeacherStudent(Spec):
    """Gaussian inputs, targets from a random MLP teacher (LeCun init, seeded)."""

    name: Literal["teacher_student"] = "teacher_student"
    d_in: int = Field(16, gt=0)
    d_out: int = Field(1, gt=0)
    teacher_width: int = Field(8, gt=0)
    teacher_depth: int = Field(2, ge=1)
    activation: Activation = "relu"
    n_train: int = Field(512, gt=0)
    n_test: int = Field(512, ge=0)
    noise: float = Field(0.0, ge=0)
    seed: int = 0


class Digits(Spec):
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes), pixels scaled to [0, 1]
    and, with ``standardize``, centred and scaled per pixel on the training split."""

    name: Literal["digits"] = "digits"
    n_train: int = Field(1000, gt=0)
    n_test: int = Field(500, ge=0)
    standardize: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _check_sizes(self) -> Digits:
        if self.n_train + self.n_test > 1797:
            raise ValueError(
                f"n_train + n_test = {self.n_train + self.n_test}; digits has 1797 examples"
            )
        return self


class FashionMNIST(Spec):
    """Fashion-MNIST (Debian's ``dataset-fashion-mnist``): 28×28 images flattened to 784,
    10 classes. ``n_train`` examples from the 60,000 training images and ``n_test`` from
    the 10,000 test images, drawn with ``seed``; ``classes`` keeps the first labels only."""

    name: Literal["fashion_mnist"] = "fashion_mnist"
    n_train: int = Field(2000, gt=0, le=60000)
    n_test: int = Field(1000, ge=0, le=10000)
    classes: int = Field(10, ge=2, le=10)
    standardize: bool = True
    seed: int = 0


Data = Annotated[
    LinearTeacher | Hierarchy | TeacherStudent | Digits | FashionMNIST,
    Field(discriminator="name"),
]

CLASSIFICATION = (Digits, FashionMNIST)


class LearningRule(Spec):
    """Optimizer and its hyperparameters. ``steps`` counts parameter updates."""

    optimizer: Literal["gd", "sgd", "momentum", "adam"] = "gd"
    lr: float = Field(0.1, gt=0)
    steps: int = Field(1000, ge=0)
    batch_size: int | None = Field(None, gt=0, description="None: full batch")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)

    @field_validator("betas")
    @classmethod
    def _check_betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must lie in [0, 1); got {v}")
        return v

    @model_validator(mode="after")
    def _check_batch(self) -> LearningRule:
        if self.optimizer == "gd" and self.batch_size is not None:
            raise ValueError("gd is full-batch: leave batch_size unset or use optimizer 'sgd'")
        if self.optimizer == "sgd" and self.batch_size is None:
            raise ValueError("sgd needs a batch_size (use optimizer 'gd' for full batch)")
        return self


class System(Spec):
    """A learning system: the paper's four components plus seed, dtype and device."""

    architecture: Architecture
    data: Data
    objective: Literal["mse", "cross_entropy"] = "mse"
    learning_rule: LearningRule = Field(default_factory=LearningRule)
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        head = v.split(":")[0]
        if head not in {"auto", "cpu", "cuda", "mps"} or (":" in v and head != "cuda"):
            raise ValueError("device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        return v

    @model_validator(mode="after")
    def _check_objective(self) -> System:
        if self.objective == "cross_entropy" and not isinstance(self.data, CLASSIFICATION):
            raise ValueError(
                f"cross_entropy needs a classification data set; {self.data.name} is regression"
            )
        return self

    # ---- identity -------------------------------------------------------------------
    def canonical_json(self) -> str:
        """JSON with every field (defaults included) and sorted keys: the hashed form."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    # ---- round trips ----------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: Any) -> System:
        """Validate a plain mapping; bad input raises :class:`InputError`."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise _input_error(err, raw) from None

    @classmethod
    def from_yaml(cls, text: str) -> System:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InputError("spec", text[:60], f"valid YAML ({err})") from None
        return cls.from_dict(raw)

    @classmethod
    def from_json(cls, text: str) -> System:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError("spec", text[:60], f"valid JSON ({err})") from None
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | Path) -> System:
        """Read a ``.yaml``/``.yml``/``.json`` spec file."""
        p = Path(path)
        if not p.is_file():
            raise InputError("file", str(path), "an existing .yaml, .yml or .json spec file")
        text = p.read_text()
        return cls.from_json(text) if p.suffix == ".json" else cls.from_yaml(text)

    def updated(self, changes: dict[str, Any]) -> System:
        """A copy with dotted-path fields replaced, validated again.

        ``system.updated({"learning_rule.lr": 0.05, "seed": 3})``
        """
        raw = self.model_dump(mode="json")
        for path, value in changes.items():
            node = raw
            *parents, leaf = path.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    raise InputError(path, value, "a dotted path to an existing spec field")
                node = node[key]
            if leaf not in node:
                raise InputError(path, value, f"one of the fields {sorted(node)}")
            node[leaf] = value
        return System.from_dict(raw)


def _input_error(err: ValidationError, raw: Any) -> InputError:
    """Turn pydantic's first error into an :class:`InputError` naming field/value/allowed."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not _is_union_tag(p, first["loc"])]
    field = ".".join(loc) or "spec"
    value = first.get("input")
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = "no such field; the fields here are " + ", ".join(_fields_at(loc[:-1], raw))
    elif kind == "missing":
        allowed = "this field is required"
        value = None
    elif kind == "literal_error":
        allowed = f"one of {ctx.get('expected')}"
    elif kind == "union_tag_invalid":
        allowed = f"one of {ctx.get('expected_tags')}"
    elif kind == "union_tag_not_found":
        allowed = f"a mapping with the field {ctx.get('discriminator')}"
    else:
        allowed = first["msg"].removeprefix("Value error, ")
    more = len(err.errors()) - 1
    if more:
        allowed += f" (and {more} more problem{'s' * (more > 1)} in the spec)"
    return InputError(field, value, allowed)


_TAGS = {
    "mlp", "deep_linear", "linear_teacher", "hierarchy", "teacher_student", "digits",
    "fashion_mnist",
}


def _is_union_tag(part: Any, loc: tuple[Any, ...]) -> bool:
    return isinstance(part, str) and part in _TAGS


def _fields_at(loc: list[str], raw: Any) -> list[str]:
    """Field names of the spec model found by following ``loc`` from :class:`System`."""
    model: type[BaseModel] = System
    node = raw
    for key in loc:
        node = node.get(key) if isinstance(node, dict) else None
        ann = model.model_fields[key].annotation if key in model.model_fields else None
        candidates = [
            c
            for c in getattr(ann, "__args__", (ann,))
            if isinstance(c, type) and issubclass(c, BaseModel)
        ]
        if not candidates:
            return []
        model = candidates[0]
        for c in candidates:
            tag = next(iter(f for f in ("kind", "name") if f in c.model_fields), None)
            if tag and isinstance(node, dict) and c.model_fields[tag].default == node.get(tag):
                model = c
    return sorted(model.model_fields)
