"""The spec: validation with clear errors, round trips, stable content hash."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnmech.errors import InputError
from learnmech.system import (
    MLP,
    DeepLinear,
    Digits,
    LearningRule,
    LinearTeacher,
    System,
    TeacherStudent,
)

architectures = st.one_of(
    st.builds(
        MLP,
        width=st.integers(1, 512),
        depth=st.integers(1, 6),
        activation=st.sampled_from(["relu", "tanh", "gelu", "erf", "identity"]),
        bias=st.booleans(),
        parametrization=st.sampled_from(["sp", "ntp", "mup", "mf"]),
        init_scale=st.floats(1e-4, 10),
        output_multiplier=st.floats(1e-3, 100),
    ),
    st.builds(DeepLinear, hidden=st.lists(st.integers(1, 64), min_size=0, max_size=4),
              init_scale=st.floats(1e-4, 10)),
)
rules = st.builds(
    LearningRule,
    optimizer=st.sampled_from(["gd", "momentum", "adam"]),
    lr=st.floats(1e-6, 10),
    steps=st.integers(0, 10_000),
    weight_decay=st.floats(0, 1),
)
systems = st.builds(
    System,
    architecture=architectures,
    data=st.one_of(st.builds(LinearTeacher, seed=st.integers(0, 99)),
                   st.builds(TeacherStudent, d_in=st.integers(1, 32))),
    learning_rule=rules,
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from(["float32", "float64"]),
)


@settings(max_examples=60, deadline=None)
@given(systems)
def test_yaml_and_json_round_trip_preserve_system_and_hash(system):
    assert System.from_yaml(system.to_yaml()) == system
    assert System.from_json(system.canonical_json()) == system
    assert System.from_yaml(system.to_yaml()).run_id == system.run_id


@settings(max_examples=40, deadline=None)
@given(systems, st.floats(-10, 0))
def test_nonpositive_learning_rate_is_rejected_naming_the_field(system, lr):
    raw = system.model_dump(mode="json")
    raw["learning_rule"]["lr"] = lr
    with pytest.raises(InputError) as info:
        System.from_dict(raw)
    assert info.value.field == "learning_rule.lr"
    assert info.value.value == lr


def test_run_id_changes_with_any_field_and_is_order_independent():
    base = System(architecture=MLP(), data=Digits(), objective="cross_entropy")
    assert base.updated({"learning_rule.lr": 0.2}).run_id != base.run_id
    assert base.updated({"seed": 1}).run_id != base.run_id
    raw = base.model_dump(mode="json")
    reordered = dict(reversed(list(raw.items())))
    assert System.from_dict(reordered).run_id == base.run_id


def test_run_id_is_stable_across_processes():
    code = ("from learnmech.system import *; "
            "print(System(architecture=MLP(), data=LinearTeacher()).run_id)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == System(architecture=MLP(), data=LinearTeacher()).run_id


@pytest.mark.parametrize(
    ("raw", "field", "allowed"),
    [
        ({"architecture": {"kind": "mlp", "widht": 3}, "data": {"name": "digits"}},
         "architecture.widht", "width"),
        ({"architecture": {"kind": "cnn"}, "data": {"name": "digits"}},
         "architecture", "'mlp'"),
        ({"architecture": {"kind": "mlp", "activation": "swish"}, "data": {"name": "digits"}},
         "architecture.activation", "'relu'"),
        ({"architecture": {"kind": "mlp"}, "data": {"name": "digits"},
          "learning_rule": {"optimizer": "sgd"}}, "learning_rule", "batch_size"),
        ({"architecture": {"kind": "mlp"}, "data": {"name": "linear_teacher"},
          "objective": "cross_entropy"}, "spec", "classification"),
        ({"architecture": {"kind": "mlp"}}, "data", "required"),
        ({"architecture": {"kind": "mlp"}, "data": {"name": "digits", "n_train": 1700}},
         "data", "1797"),
    ],
)
def test_bad_specs_name_field_and_allowed_values(raw, field, allowed):
    with pytest.raises(InputError) as info:
        System.from_dict(raw)
    assert info.value.field == field
    assert allowed in info.value.allowed


def test_updated_rejects_unknown_paths():
    system = System(architecture=MLP(), data=LinearTeacher())
    assert system.updated({"architecture.width": 7}).architecture.width == 7
    with pytest.raises(InputError, match=r"learning_rule\.rate"):
        system.updated({"learning_rule.rate": 0.1})


def test_load_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(InputError) as info:
        System.load(tmp_path / "nope.yaml")
    assert info.value.field == "file"
    bad = tmp_path / "bad.yaml"
    bad.write_text("architecture: [unclosed")
    with pytest.raises(InputError, match="valid YAML"):
        System.load(bad)
