"""W&B's framework integrations, unchanged, against a real `nbtrack server`.

PyTorch Lightning's `WandbLogger` and Hugging Face Transformers' `Trainer(report_to=["wandb"])`
train a tiny seeded model on the CPU inside the wandb client's venv (tests/wandb_client.py: torch,
lightning and transformers are pinned there by .ci/run). Each snippet records what the framework
handed to wandb (the loss of every step, the hyperparameters), then the run is read back with
`wandb.Api` (in that venv) and with `nbtrack.Api` (here), and both must hold exactly those values,
on SQLite and, with NBTRACK_TEST_POSTGRES_URL set, on PostgreSQL. Keras is not covered: its wandb
callbacks import TensorFlow (docs/wandb-compat.md says why it is left out).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import nbtrack
from nbtrack.api import StoredRun
from tests import test_wandb_client as base
from tests.capture_proxy import CaptureProxy
from tests.wandb_client import WandbEnv, require_wandb

env = base.env
same = base.same
rows_without_times = base.rows_without_times

FRAMEWORKS = ("torch", "lightning", "transformers", "accelerate")  # accelerate: transformers' Trainer


@functools.cache
def _missing_frameworks() -> str:
    """What the wandb venv cannot import of FRAMEWORKS ("" when all import)."""
    probe = f"import importlib.util as u; print(*(m for m in {FRAMEWORKS!r} if u.find_spec(m) is None))"
    done = subprocess.run(
        [str(require_wandb()), "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def frameworks() -> None:
    """Skips when the wandb venv lacks FRAMEWORKS, before any server starts; fails under CI=true
    (where .ci/run installs them), as tests/wandb_client.py does for the venv itself."""
    missing = _missing_frameworks()
    if missing:
        reason = (
            f"the wandb venv ({require_wandb()}) lacks {missing}: install what .ci/run installs there "
            "(torch==2.13.0 lightning==2.6.6 transformers==5.18.0 accelerate==1.15.0)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def framework_env(frameworks: None, env: WandbEnv) -> Iterator[tuple[WandbEnv, CaptureProxy]]:
    """`env` (SQLite, PostgreSQL), its venv holding the frameworks, seen through a CaptureProxy."""
    with CaptureProxy(env.server.url) as proxy:
        env.base_url = proxy.url
        yield env, proxy


def refused(proxy: CaptureProxy) -> list[tuple[str, str, str | None, Any]]:
    """Every request the server refused or answered with a GraphQL error (none expected)."""
    return [
        (r.method, r.path, r.operation, r.answer)
        for r in proxy.records
        if r.status >= 400 or (isinstance(r.answer, dict) and r.answer.get("errors"))
    ]


def read_back(snippet_out: dict[str, Any], wandb_env: WandbEnv) -> StoredRun:
    return nbtrack.Api(base_url=wandb_env.server.url, api_key=wandb_env.key).run(snippet_out["path"])


# Every key the client holds in its config, but its own "_wandb": iterating a wandb config yields them
# all, while its keys() and dict() hide those that begin with "_" (a model config's "_name_or_path").
LOCAL_CONFIG = """
def local_config(run):
    return {k: run.config[k] for k in run.config if k != "_wandb"}
"""

# The API read inside the snippet, after the run finished: what wandb.Api makes of the run.
WANDB_API_READ = """
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
read = api.run(path)
out["wandb_api"] = {
    "state": read.state,
    "config": dict(read.config),
    "history": read.history(pandas=False),
    "scan": list(read.scan_history()),
    "summary": {k: read.summary[k] for k in read.summary.keys() if not k.startswith("_")},
}
emit(out)
"""

LIGHTNING = (
    LOCAL_CONFIG
    + """
import os, torch, wandb
import lightning as L
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset

L.seed_everything(7, verbose=False)
x = torch.randn(32, 3)
y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1 * torch.randn(32, 1)

computed = []  # (global step, loss) as training_step computed it


class Regression(L.LightningModule):
    def __init__(self, lr=0.05, features=3, note="linear"):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(features, 1)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self.layer(inputs), targets)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        computed.append([self.global_step, loss.item()])
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


handed = []  # what Lightning handed the logger: (metrics, step)


class RecordingLogger(WandbLogger):
    def log_metrics(self, metrics, step=None):
        handed.append([dict(metrics), step])
        super().log_metrics(metrics, step)


logger = RecordingLogger(project="lightning", name="tiny-regression")
logger.log_hyperparams({"batch_size": 8, "schedule": {"epochs": 4, "kind": "constant"}})
trainer = L.Trainer(
    logger=logger, max_epochs=4, log_every_n_steps=1, accelerator="cpu", devices=1,
    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(Regression(), DataLoader(TensorDataset(x, y), batch_size=8))
run = logger.experiment
path = f"{run.entity}/{run.project}/{run.id}"
out = {"path": path, "computed": computed, "handed": handed, "local_config": local_config(run),
       "local_summary": {k: run.summary[k] for k in run.summary.keys() if not k.startswith("_")}}
wandb.finish()
"""
    + WANDB_API_READ
)


def test_lightning_wandb_logger(framework_env: tuple[WandbEnv, CaptureProxy]) -> None:
    wandb_env, proxy = framework_env
    out = wandb_env.run(LIGHTNING)
    assert refused(proxy) == []
    computed, handed = out["computed"], out["handed"]
    assert len(computed) == 16  # 4 epochs of 4 batches, one logged loss per step
    # what Lightning handed WandbLogger: every step's loss, as training_step computed it
    assert [metrics["train_loss"] for metrics, _ in handed] == [loss for _, loss in computed]
    expected = [
        {
            "_step": i,
            "train_loss": metrics["train_loss"],
            "epoch": metrics["epoch"],
            "trainer/global_step": step,
        }
        for i, (metrics, step) in enumerate(handed)
    ]
    assert [row["trainer/global_step"] for row in expected] == list(range(16))
    assert [row["epoch"] for row in expected] == [e for e in range(4) for _ in range(4)]

    hyperparameters = {
        "lr": 0.05,
        "features": 3,
        "note": "linear",
        "batch_size": 8,
        "schedule": {"epochs": 4, "kind": "constant"},
    }
    stored = read_back(out, wandb_env)
    assert stored.state == "finished"
    assert stored.name == "tiny-regression"
    assert stored.config == hyperparameters
    assert same(rows_without_times(stored.history()), expected)
    summary = {k: expected[-1][k] for k in ("train_loss", "epoch", "trainer/global_step")}
    assert same({k: stored.summary[k] for k in summary}, summary)

    read = out["wandb_api"]
    assert read["state"] == "finished"
    assert read["config"] == out["local_config"] == hyperparameters
    assert same(rows_without_times(read["history"]), expected)
    assert same(rows_without_times(read["scan"]), expected)
    assert same(read["summary"], summary) and same(out["local_summary"], summary)


TRANSFORMERS = (
    LOCAL_CONFIG
    + """
import os
os.environ.update(WANDB_PROJECT="transformers", WANDB_LOG_MODEL="false")  # as a user sets them
import torch, wandb
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

torch.manual_seed(0)
# a tiny BERT made from a config alone: nothing comes from a hub
model = BertForSequenceClassification(BertConfig(
    vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=16, num_labels=2,
))


class Sentences(torch.utils.data.Dataset):
    def __init__(self):
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 64, (32, 8), generator=generator)
        self.labels = torch.randint(0, 2, (32,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


args = TrainingArguments(
    output_dir=os.path.join(os.getcwd(), "trainer-out"), report_to=["wandb"], run_name="tiny-bert",
    logging_steps=1, max_steps=6, per_device_train_batch_size=8, learning_rate=1e-3, seed=3,
    save_strategy="no", use_cpu=True, disable_tqdm=True,
)
trainer = Trainer(model=model, args=args, train_dataset=Sentences())
trainer.train()
run = wandb.run
path = f"{run.entity}/{run.project}/{run.id}"
out = {"path": path, "log_history": trainer.state.log_history, "args": args.to_dict(),
       "num_parameters": model.num_parameters(), "local_config": local_config(run),
       "local_summary": {k: run.summary[k] for k in run.summary.keys() if not k.startswith("_")}}
wandb.finish()
"""
    + WANDB_API_READ
)

# What WandbCallback puts in the run's summary rather than in a history row.
TRAINER_TOTALS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
)


def test_transformers_trainer_report_to_wandb(framework_env: tuple[WandbEnv, CaptureProxy]) -> None:
    wandb_env, proxy = framework_env
    out = wandb_env.run(TRANSFORMERS)
    assert refused(proxy) == []
    log_history = out["log_history"]
    steps = [entry for entry in log_history if "loss" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3, 4, 5, 6]  # logging_steps=1, max_steps=6
    # Each log_history entry is one wandb row: its keys under "train/", its step as train/global_step.
    expected = [
        {
            "_step": i,
            **{f"train/{k}": v for k, v in entry.items() if k != "step" and k not in TRAINER_TOTALS},
            "train/global_step": entry["step"],
        }
        for i, entry in enumerate(log_history)
    ]
    [totals] = [entry for entry in log_history if "train_runtime" in entry]
    summary = {
        **{k: totals[k] for k in TRAINER_TOTALS},
        **{k: v for k, v in expected[-1].items() if k != "_step"},
        "train/loss": steps[-1]["loss"],
        "train/grad_norm": steps[-1]["grad_norm"],
        "train/learning_rate": steps[-1]["learning_rate"],
    }
    args = out["args"]

    stored = read_back(out, wandb_env)
    assert out["path"].split("/")[1] == "transformers" and stored.name == "tiny-bert"
    assert stored.state == "finished"
    assert same(rows_without_times(stored.history()), expected)
    assert same({k: stored.summary[k] for k in summary}, summary)
    # the config: the client's own, exactly; the training arguments and the model's config in it
    assert same(stored.config, out["local_config"])
    assert same({k: stored.config[k] for k in args}, args)
    assert stored.config["hidden_size"] == 16 and stored.config["num_hidden_layers"] == 2
    assert stored.config["model/num_parameters"] == out["num_parameters"]
    assert (args["max_steps"], args["logging_steps"], args["learning_rate"]) == (6, 1, 1e-3)

    read = out["wandb_api"]
    assert read["state"] == "finished"
    assert same(read["config"], out["local_config"])
    assert same(rows_without_times(read["history"]), expected)
    # scan_history reads the rows as columns: the last row's missing keys come as None
    columns = {k for row in expected for k in row}
    assert same(rows_without_times(read["scan"]), [{k: row.get(k) for k in columns} for row in expected])
    assert same({k: read["summary"][k] for k in summary}, summary)
    assert same(out["local_summary"], read["summary"])
