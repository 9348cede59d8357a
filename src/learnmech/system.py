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
import itertools
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from learnmech.errors import InputError
from learnmech.memory import require_memory

Activation = Literal["relu", "tanh", "gelu", "erf", "identity"]
Parametrization = Literal["sp", "ntp", "mup", "mf"]


#: Seeds lie in [0, 2**63): every generator (torch, numpy) takes them unchanged.
Seed = Annotated[int, Field(ge=0, lt=2**63)]


class Spec(BaseModel):
    """Base of every spec model: unknown fields are errors, instances are immutable,
    numbers are finite and ``true``/``false`` is never read as a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        for name, v in raw.items():
            field = cls.model_fields.get(name)
            values = v if isinstance(v, list | tuple) else [v]
            if field is not None and _numeric(field.annotation) and any(
                    isinstance(x, bool) for x in values):
                raise PydanticCustomError("bool_number", "{field}: a number, not true/false",
                                          {"field": name, "value": v})
        return raw


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
    seed: Seed = 0

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
    seed: Seed = 0


class Digits(Spec):
    """scikit-learn's bundled 8×8 digits (1797 images, 10 classes), pixels scaled to [0, 1]
    and, with ``standardize``, centred and scaled per pixel on the training split."""

    name: Literal["digits"] = "digits"
    n_train: int = Field(1000, gt=0)
    n_test: int = Field(500, ge=0)
    standardize: bool = True
    seed: Seed = 0

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
    seed: Seed = 0


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
    seed: Seed = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", v):
            raise ValueError("'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU index) or 'mps'")
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

    # ---- resources ------------------------------------------------------------------
    def memory_estimate(self) -> int:
        """Bytes training needs, roughly: ``4P`` numbers for the ``P`` parameters
        (weights, gradients, two optimizer moments), ``3 n w L`` for activations and
        their gradients over the ``n`` examples (``w`` the widest layer, ``L`` layers),
        the data ``n (d_in + d_out)`` and a teacher's weights and activations, times the
        dtype's size. A lower bound good to a small factor, computed without allocating."""
        d_in, d_out = _data_dims(self.data)
        n = getattr(self.data, "n_train", 4) + getattr(self.data, "n_test", 0)
        arch = self.architecture
        hidden = ([arch.width] * (arch.depth - 1) if isinstance(arch, MLP)
                  else list(arch.hidden))
        widths = [d_in, *hidden, d_out]
        params = sum(a * b + b for a, b in itertools.pairwise(widths))
        numbers = 4 * params + 3 * n * max(widths) * len(widths) + n * (d_in + d_out)
        if isinstance(self.data, TeacherStudent):
            t = self.data
            numbers += t.teacher_width * (t.d_in + t.teacher_width * t.teacher_depth + t.d_out)
            numbers += n * t.teacher_width * t.teacher_depth
        return numbers * (8 if self.dtype == "float64" else 4)

    # ---- round trips ----------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: Any) -> System:
        """Validate a plain mapping; bad input raises :class:`InputError`."""
        if not isinstance(raw, dict):  # named by type only: never echo a file's contents
            raise InputError("spec", f"a {type(raw).__name__}", "a mapping with the fields "
                             "architecture, data, objective, learning_rule, seed, dtype, device")
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise _input_error(err, raw) from None
        except RecursionError:
            raise InputError("spec", "a deeply nested value", "fields nested at most a few "
                             "levels deep") from None

    @classmethod
    def from_yaml(cls, text: str, name: str = "spec") -> System:
        return cls.from_dict(parse_yaml(text, name))

    @classmethod
    def from_json(cls, text: str, name: str = "spec") -> System:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(name, f"invalid JSON at line {err.lineno}, column {err.colno}",
                             f"valid JSON ({err.msg})") from None
        except RecursionError:
            raise InputError(name, "JSON nested too deeply", "a spec nested at most a few "
                             "levels deep") from None
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | Path) -> System:
        """Read a ``.yaml``/``.yml``/``.json`` spec file."""
        text = read_text(path, "an existing .yaml, .yml or .json spec file")
        name = str(path)
        return (cls.from_json(text, name) if Path(path).suffix == ".json"
                else cls.from_yaml(text, name))

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


def _data_dims(data: Any) -> tuple[int, int]:
    """``(d_in, d_out)`` of a data spec, read from the spec alone (nothing loaded)."""
    if isinstance(data, LinearTeacher | TeacherStudent):
        return data.d_in, data.d_out
    if isinstance(data, Digits):
        return 64, 10
    if isinstance(data, FashionMNIST):
        return 784, data.classes
    return 4, 7  # hierarchy: 4 items, 7 properties


def check_memory(system: System, budget: int | None = None) -> None:
    """Raise :class:`InputError` when ``system``'s :meth:`System.memory_estimate`
    exceeds ``budget`` bytes (default :func:`learnmech.memory.memory_budget`)."""
    require_memory("spec", f"{system.architecture.kind} on {system.data.name}",
                   system.memory_estimate(), "make width, depth, d_in or n_train smaller",
                   budget)


#: Largest spec or sweep file read, in bytes.
MAX_FILE_BYTES = 1 << 20


def read_text(path: str | Path, allowed: str) -> str:
    """The UTF-8 text of the file at ``path`` (at most :data:`MAX_FILE_BYTES`); a missing,
    oversized, binary or non-UTF-8 file is an :class:`InputError` naming the file only."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file", str(path), allowed)
    if p.stat().st_size > MAX_FILE_BYTES:
        raise InputError("file", str(path), f"a file of at most {MAX_FILE_BYTES} bytes")
    try:
        text = p.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError):
        raise InputError("file", str(path), "a readable UTF-8 text file") from None
    if "\x00" in text:
        raise InputError("file", str(path), "a text file (this one holds NUL bytes)")
    return text


def parse_yaml(text: str, name: str = "spec") -> Any:
    """``yaml.safe_load(text)``; errors name the line and column, never the text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(err, "problem", None) or "unreadable"
        raise InputError(name, f"invalid YAML at {where}", f"valid YAML ({problem})") from None
    except RecursionError:
        raise InputError(name, "YAML nested too deeply", "a file nested at most a few "
                         "levels deep") from None


def _numeric(ann: Any) -> bool:
    """Whether the annotation ``ann`` admits a number (int or float) but not a bool."""
    stack, kinds = [ann], set()
    while stack:
        a = stack.pop()
        if isinstance(a, type):
            kinds.add(a)
        stack.extend(typing.get_args(a))
    return bool(kinds & {int, float}) and bool not in kinds


def _input_error(err: ValidationError, raw: Any) -> InputError:
    """Turn pydantic's first error into an :class:`InputError` naming field/value/allowed."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not _is_union_tag(p, first["loc"])]
    field = ".".join(loc) or "spec"
    value = first.get("input")
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind == "bool_number":
        field = ".".join([*loc, ctx["field"]])
        value, allowed = ctx["value"], "a number, not true/false"
    elif kind == "extra_forbidden":
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
