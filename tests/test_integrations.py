"""MonitorCallback under pytorch-lightning and the Hugging Face Trainer, on real tiny
models built from code and configs (no downloads)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from test_monitor import digits_mlp, half_mse

pl = pytest.importorskip("pytorch_lightning")
transformers = pytest.importorskip("transformers")


class FullBatchGD(pl.LightningModule):
    """The plain loop's tanh MLP, trained by full-batch GD inside Lightning."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.net, _, _ = digits_mlp()
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        loss = half_mse(self(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_lightning_callback_sees_progressive_sharpening(tmp_path) -> None:
    from learnmech.integrations.lightning import MonitorCallback

    _, x, y = digits_mlp()
    loader = DataLoader(TensorDataset(x, y), batch_size=len(x))
    callback = MonitorCallback(probes=["sharpness", "update_rms"], every=300)
    logger = pl.loggers.CSVLogger(tmp_path)
    trainer = pl.Trainer(max_steps=1200, logger=logger, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", log_every_n_steps=50)
    trainer.fit(FullBatchGD(lr=0.3), loader)
    frame = callback.monitor.frame()
    sharp = frame[frame.probe == "sharpness"].set_index("step")
    assert list(sharp.index) == [1, 300, 600, 900, 1200]
    assert sharp.ratio[1] < 0.5
    assert all(abs(sharp.ratio[s] - 1) <= 0.1 for s in (900, 1200))
    assert set(frame[frame.probe == "update_rms"].layer) == {"net.0", "net.2", "net.4"}
    with open(logger.log_dir + "/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [r for r in rows if r.get("learnmech/sharpness")]
    assert len(logged) == 5
    assert float(logged[-1]["learnmech/sharpness"]) == pytest.approx(sharp.value[1200])


def tiny_gpt2() -> nn.Module:
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2,
                                     n_head=2)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


class TokenSet(torch.utils.data.Dataset):
    def __init__(self, n: int = 64, length: int = 16) -> None:
        gen = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 64, (n, length), generator=gen)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def test_transformers_callback_on_a_tiny_gpt2(tmp_path) -> None:
    from learnmech.integrations.transformers import MonitorCallback

    model = tiny_gpt2()
    callback = MonitorCallback(probes=["sharpness", "update_rms", "noise_scale",
                                       "kernel_movement"], every=5)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=10, per_device_train_batch_size=8,
        learning_rate=1e-3, lr_scheduler_type="constant", report_to=[], save_strategy="no",
        use_cpu=True,
        logging_steps=5, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=TokenSet(),
                                   callbacks=[callback])
    trainer.train()
    frame = callback.monitor.frame()
    assert sorted(set(frame.step)) == [1, 5, 10]
    assert set(frame.probe) == {"sharpness", "update_rms", "output_change", "noise_scale",
                                "kernel_movement"}
    sharp = frame[frame.probe == "sharpness"].set_index("step")
    assert sharp.value.notna().all() and (sharp.value > 0).all()
    # AdamW's threshold with the trainer's β₁ and peak learning rate
    assert sharp.theory[10] == pytest.approx((2 + 2 * 0.9) / (0.1 * 1e-3))
    updated = set(frame[frame.probe == "update_rms"].layer)
    assert {"transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj"} <= updated
    logged = [e for e in trainer.state.log_history if "learnmech/sharpness" in e]
    assert [e["step"] for e in logged] == [1, 5, 10]
    assert model.training  # the trainer's mode, restored after each reading
