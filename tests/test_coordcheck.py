"""The μP verifier on correct μP, on SP and on deliberately broken μP."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from learnmech.coordcheck import _build, _update_ratio, previous_token_task, verify_mup
from learnmech.errors import InputError
from learnmech.models import char_transformer
from learnmech.param import parametrized

WIDTHS = (64, 128, 256, 512)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    x = torch.tensor(bunch.data[:256], dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-3)
    return x, torch.tensor(bunch.target[:256])


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def test_models_are_built_with_the_weights_torch_manual_seed_gives():
    """Reference: the factory called after ``torch.manual_seed``; the build leaves the
    global random state as it found it."""
    factories = [mlp, lambda n: parametrized(mlp, n, "mup", "adam", base_width=64)]
    for factory in factories:
        for seed in (0, 7):
            state = torch.get_rng_state()
            model, _ = _build(factory, 128, seed, "adam", 0.01)
            assert torch.equal(torch.get_rng_state(), state)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                built = factory(128)
            ref = built[0] if isinstance(built, tuple) else built
            for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters(),
                                         strict=True):
                assert torch.equal(p, q), name


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 0.01), ("sgd", 0.5)])
def test_mup_mlp_passes_and_sp_fails(digits, optimizer, lr):
    def factory(parametrization):
        return lambda n: parametrized(mlp, n, parametrization, optimizer, base_width=64,
                                      generator=torch.Generator().manual_seed(n))

    mup = verify_mup(factory("mup"), digits, WIDTHS, optimizer, lr=lr)
    assert mup.passed, mup.summary()
    sp = verify_mup(factory("sp"), digits, WIDTHS, optimizer, lr=lr)
    assert not sp.passed
    # SP: the readout's output blows up (∝ width under Adam, ∝ √width under SGD)
    readout = next(v for v in sp.failures if v.layer == "4" and v.metric == "activation")
    assert readout.problem == "blows up" and readout.exponent > 0.35
    if optimizer == "adam":  # hidden ΔW ∝ width under Adam with one learning rate
        assert any(v.layer == "2.weight" and v.problem == "blows up" for v in sp.failures)
    else:  # SGD: the input layer's update vanishes ∝ 1/√width
        assert any(v.layer == "0.weight" and v.problem == "vanishes" for v in sp.failures)


def test_hand_written_mup_is_verified_through_its_own_optimizer(digits):
    """An implementation that knows nothing of learnmech: manual init, manual Adam groups."""

    def model(width: int) -> nn.Sequential:
        net = mlp(width)
        with torch.no_grad():
            for layer in net[::2]:
                layer.bias.zero_()
                nn.init.normal_(layer.weight, std=layer.in_features**-0.5)
            net[4].weight.mul_(math.sqrt(64 / width))  # readout var ∝ 1/fan_in²
        return net

    def adam(broken: bool):
        def make(net: nn.Module) -> torch.optim.Optimizer:
            m = net[2].in_features / 64
            hidden = 0.01 if broken else 0.01 / m  # the bug: hidden lr not divided by m
            return torch.optim.Adam([
                {"params": net[0].parameters(), "lr": 0.01},
                {"params": net[2].parameters(), "lr": hidden},
                {"params": [net[4].weight], "lr": 0.01 / m},
                {"params": [net[4].bias], "lr": 0.01},
            ])
        return make

    good = verify_mup(model, digits, WIDTHS, adam(False))
    assert good.passed, good.summary()
    bad = verify_mup(model, digits, WIDTHS, adam(True))
    assert not bad.passed
    assert "2.weight" in bad.offending_layers()
    assert bad.offending_layers()[0] in ("2", "3", "4", "(output)", "2.weight")


def _transformer(**kwargs):
    def factory(width: int):
        return char_transformer(16, 16, width, depth=1, heads=1, parametrization="mup",
                                optimizer="adam", base_width=32,
                                generator=torch.Generator().manual_seed(0), **kwargs)
    return factory


def test_transformer_mup_passes_and_broken_attention_or_readout_fails():
    data = previous_token_task(vocab=16, length=16, batch=16)
    kw = {"widths": (32, 64, 128, 256), "optimizer": "adam", "lr": 0.03, "steps": 10}
    good = verify_mup(_transformer(), data, **kw)
    assert good.passed, good.summary()
    # 1/√d attention logits under μP: the learned part of q·k grows ∝ d, so logits blow up
    sqrt_attention = verify_mup(
        lambda n: _transformer(attention_scale=n**-0.5)(n), data, **kw)
    # seen twice: the logits module's output and the softmax input inside the attention
    assert set(sqrt_attention.offending_layers()) == {"blocks.0.attn.logits",
                                                      "blocks.0.attn.attention_logits"}
    assert all(v.problem == "blows up" for v in sqrt_attention.failures)
    # an unscaled readout (SP init, Adam lr not divided by width)
    readout = verify_mup(_transformer(roles={"readout.weight": "fixed"}), data, **kw)
    assert "readout" in readout.offending_layers()
    assert "readout.weight" in readout.offending_layers()
    assert "blocks.0.attn.logits" not in readout.offending_layers()


def test_result_reports_and_bad_input(digits):
    check = verify_mup(lambda n: parametrized(mlp, n, "sp", "adam"), digits, (64, 256),
                       "adam", lr=0.01, steps=1, metrics=("update",))
    record = check.to_json()
    assert record["passed"] is False
    assert record["offending_layers"] == check.offending_layers()
    assert {row["quantity"] for row in record["layers"]} == {"update"}
    assert "FAIL" in check.summary() and "2.weight" in check.table()
    figures = check.figures("SP")
    assert len(figures) == 1 and figures[0].curves
    with pytest.raises(InputError, match="widths"):
        verify_mup(mlp, digits, (64,))
    with pytest.raises(InputError, match="steps"):
        verify_mup(mlp, digits, (64, 128), steps=0)
    with pytest.raises(InputError, match="optimizer"):
        verify_mup(mlp, digits, (64, 128), optimizer="lion")


@pytest.mark.parametrize("lr", [1e30, 1e300])
def test_an_update_that_blows_the_weights_up_is_a_divergence(digits, lr):
    """One step: the loss before it is finite, so only the loss after it shows the
    divergence (at 1e300 the update overflows float32)."""
    check = verify_mup(lambda n: parametrized(mlp, n, "mup", "adam", base_width=64), digits,
                       (64, 128), "adam", lr=lr, steps=1)
    assert check.verdict == "fail" and check.diverged == (64, 128)
    assert "diverged" in check.summary()


def test_update_sizes_at_the_verifiers_tolerance_match_a_dense_svd(digits):
    """The spectral ratios at ``SPECTRAL_TOL`` against float64 dense SVDs, on Gaussian
    matrices (the slowest case: the top of their spectrum is not separated) and on the
    hidden weight of a μP MLP before and after three Adam steps."""
    g = torch.Generator().manual_seed(5)
    net, plan = parametrized(mlp, 256, "mup", "adam", base_width=64, generator=g)
    w0 = net[2].weight.detach().clone()
    opt = plan.make_optimizer(net, 0.01)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(digits[0]), digits[1]).backward()
        opt.step()
    pairs = [(w0, net[2].weight.detach() - w0)]
    pairs += [(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))
              for shape in [(128, 128), (512, 512), (300, 700), (2000, 128), (128, 2000)]]
    for a, b in pairs:
        want = (torch.linalg.svdvals(b.double())[0] / torch.linalg.svdvals(a.double())[0]).item()
        assert _update_ratio(a, b, vector_like=False) == pytest.approx(want, rel=2e-6)


def _cli(*args: str) -> subprocess.CompletedProcess:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = os.environ | {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "learnmech", "coordcheck", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_exit_codes_and_json(tmp_path):
    ok = _cli("mlp", "--widths", "64,128,256", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] is True
    sp = _cli("mlp", "--parametrization", "sp", "--widths", "64,128,256",
              "--plot", str(tmp_path / "cc.png"))
    assert sp.returncode == 1
    assert "blows up" in sp.stdout and (tmp_path / "cc.png").stat().st_size > 0
    bad = _cli("mlp", "--widths", "64")
    assert bad.returncode == 2 and "widths" in bad.stderr


def test_readme_example_on_a_hand_written_model():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(import torch\nfrom torch import nn\nfrom learnmech import "
                      r"verify_mup.*?)```", readme, re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["good"].passed
    assert namespace["bad"].offending_layers() == ["hid", "out", "(output)", "hid.weight"]


def _sdpa_forward(attn, x):
    """The library's attention written with F.scaled_dot_product_attention, its scale
    passed explicitly (the logits module is never called)."""
    b, t, c = x.shape
    q, k, v = (f(x).view(b, t, attn.heads, c // attn.heads).transpose(1, 2)
               for f in (attn.query, attn.key, attn.value))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                           scale=attn.logits.scale)
    return attn.out(out.transpose(1, 2).reshape(b, t, c))


def _exp_forward(attn, x):
    """Attention normalized by hand (exp / sum), no softmax: the verifier cannot see it."""
    b, t, c = x.shape
    q, k, v = (f(x).view(b, t, attn.heads, c // attn.heads).transpose(1, 2)
               for f in (attn.query, attn.key, attn.value))
    s = attn.logits.scale * (q @ k.transpose(-2, -1))
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    e = (s - s.amax(-1, keepdim=True)).exp()
    return attn.out(((e / e.sum(-1, keepdim=True)) @ v).transpose(1, 2).reshape(b, t, c))


def _patched(forward, **kwargs):
    import types

    def factory(width: int):
        model, plan = _transformer(**kwargs)(width)
        for block in model.blocks:
            block.attn.forward = types.MethodType(forward, block.attn)
        return model, plan
    return factory


def test_functional_attention_is_seen_or_the_verdict_is_inconclusive():
    data = previous_token_task(vocab=16, length=16, batch=16)
    kw = {"widths": (32, 64, 128, 256), "optimizer": "adam", "lr": 0.03, "steps": 10}
    good = verify_mup(_patched(_sdpa_forward), data, **kw)
    assert good.passed, good.summary()
    assert good.attention == ("blocks.0.attn.attention_logits",)
    sqrt_attention = verify_mup(
        lambda n: _patched(_sdpa_forward, attention_scale=n**-0.5)(n), data, **kw)
    assert sqrt_attention.verdict == "fail"
    assert "blocks.0.attn.attention_logits" in sqrt_attention.offending_layers()
    hidden = verify_mup(_patched(_exp_forward), data, **kw)
    assert hidden.verdict == "inconclusive" and not hidden.passed
    assert "blocks.0.attn" in hidden.unobserved and "INCONCLUSIVE" in hidden.summary()


class _MHAModel(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(16, width)
        self.attn = torch.nn.MultiheadAttention(width, 1, batch_first=True)
        self.readout = torch.nn.Linear(width, 16)

    def forward(self, x):
        h = self.embed(x)
        return self.readout(self.attn(h, h, h)[0])


def test_multihead_attention_logits_are_observed():
    data = previous_token_task(vocab=16, length=8, batch=8)
    check = verify_mup(_MHAModel, data, (32, 64), steps=1)
    assert check.attention == ("attn.attention_logits",)
    assert check.unobserved == ()
    assert any(v.layer == "attn.attention_logits" for v in check.verdicts)


# ---- a hand-written μP transformer at the verifier's defaults ------------------------------

class Block(nn.Module):
    def __init__(self, n, scale_power, sdpa):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(n, n, bias=False) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(n), nn.LayerNorm(n)
        self.fc, self.proj = nn.Linear(n, 4 * n), nn.Linear(4 * n, n)
        self.scale, self.sdpa = n ** -scale_power, sdpa
        nn.init.zeros_(self.q.weight)
    def forward(self, h):
        a = self.ln1(h)
        q, k, v = self.q(a), self.k(a), self.v(a)
        if self.sdpa:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:
            s = q @ k.transpose(-1, -2) * self.scale
            T = s.shape[-1]
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            att = s.softmax(-1) @ v
        h = h + self.o(att)
        return h + self.proj(F.gelu(self.fc(self.ln2(h))))

class HandMuP(nn.Module):
    """A hand-written one-block μP transformer: logits scaled 1/d (or ``scale_power``),
    zero query and readout, per-layer Adam rates in :func:`mup_adam`."""

    def __init__(self, n, scale_power=1.0, sdpa=True, vocab=16, T=16, sp_readout=False):
        super().__init__()
        self.n = n
        self.tok, self.pos = nn.Embedding(vocab, n), nn.Embedding(T, n)
        self.block = Block(n, scale_power, sdpa)
        self.ln = nn.LayerNorm(n)
        self.readout = nn.Linear(n, vocab, bias=False)
        self.sp_readout = sp_readout
        if not sp_readout:
            nn.init.zeros_(self.readout.weight)
    def forward(self, x):
        h = self.tok(x) + self.pos(torch.arange(x.shape[1]))
        return self.readout(self.ln(self.block(h)))

def mup_adam(model, lr=0.01, base=64):
    """Adam with μP rates: hidden and readout matrices at ``lr·base/n``, the rest at ``lr``
    (an SP readout keeps ``lr``)."""
    def hidden(name, p):
        return p.ndim == 2 and not name.startswith(("tok", "pos")) and not (
            model.sp_readout and name.startswith("readout"))
    groups = [[p for n, p in model.named_parameters() if hidden(n, p) == h] for h in (0, 1)]
    return torch.optim.Adam([{"params": groups[0], "lr": lr},
                             {"params": groups[1], "lr": lr * base / model.n}])


@pytest.mark.parametrize("sdpa", [True, False])
def test_hand_written_transformer_gets_the_right_verdict_at_defaults(sdpa):
    data = previous_token_task()
    good = verify_mup(lambda n: HandMuP(n, sdpa=sdpa), data, optimizer=mup_adam)
    assert good.verdict == "pass", good.summary()
    sqrt_d = verify_mup(lambda n: HandMuP(n, 0.5, sdpa=sdpa), data, optimizer=mup_adam)
    assert sqrt_d.verdict == "fail"
    assert "block.attention_logits" in sqrt_d.offending_layers()


def test_hand_written_sp_readout_fails_at_defaults():
    check = verify_mup(lambda n: HandMuP(n, sp_readout=True), previous_token_task(),
                       optimizer=mup_adam)
    assert check.verdict == "fail"
    assert any(layer.startswith("readout") for layer in check.offending_layers())


def test_builtin_transformer_passes_at_cli_defaults():
    assert _cli("transformer").returncode == 0
