"""The one training loop of every model: the GNN strategies and the Hamiltonian model
(`gnn.train`) and the halo GN (`halos.train`). Resumable, stopped on a non-finite loss,
with a progress bar and a per-epoch history.

In:  a model with its optimiser and scheduler, a `Plan` (step counts, resume file, progress
     label), and per run `step_loss(step)`: the scalar loss of that step's batch (the caller
     draws the batch and runs the model; the loop does zero_grad, backward, the optimiser
     and scheduler steps).
Out: `LoopResult(step, history, train_seconds, finished)`, and the resume point (last.pt,
     `gnn.checkpoint.save_torch` of kind `Plan.resume_kind`) written at every epoch end,
     every `checkpoint_every` steps and at `stop_at_step`:
         {"model", "optimizer", "scheduler", "rng": {"cpu", "cuda"}, "step", "history",
          "train_seconds", "epoch_loss": [sum, steps], **identity}
     where `identity` is what the caller stores to recognise its run (configs, data).

Losses are summed on the device and read (one sync) every `log_every` steps, at a checkpoint
and at the last step; a NaN or inf among the losses since the last read stops the run with
a one-line `InputError` before anything is saved, so last.pt never holds a diverged model.
At each epoch end the history gains {"epoch", "step", "train_loss" (the epoch's mean loss,
carried across a resume), **epoch_metrics()}. train_seconds counts optimiser steps only: the
time `after_step` reports (message recording), the epoch metrics and the saving are left out.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from plumbing.errors import InputError
from plumbing.progress import progress_bar

from .checkpoint import load_torch, save_torch

# The fields of every resume point, with their types (`resume` checks a held file against them).
RESUME_FIELDS = {"model": dict, "optimizer": dict, "scheduler": dict, "rng": dict, "step": int, "history": list,
                 "train_seconds": (int, float), "epoch_loss": list}


@dataclass(frozen=True)
class Plan:
    """What a run does.

    Attributes:
        total_steps: optimiser steps of the whole run; steps_per_epoch: of one epoch.
        checkpoint_every: steps between resume points (also written every epoch).
        log_every: steps between reads of the summed loss (each one syncs the device).
        resume_path: last.pt; resume_kind: its `save_torch` kind.
        identity: the fields stored beside the loop's own in last.pt, e.g. the configs.
        label: the progress bar's text.
    """

    total_steps: int
    steps_per_epoch: int
    checkpoint_every: int
    log_every: int
    resume_path: Path
    resume_kind: str
    identity: dict
    label: str


@dataclass
class LoopResult:
    """Where a run stands: steps done, per-epoch history, seconds of optimiser steps, and
    whether it reached `Plan.total_steps`."""

    step: int
    history: list
    train_seconds: float
    finished: bool


class TrainingLoop:
    """`resume` (from last.pt, if any), then `run`; see the module docstring.

    Args:
        model, optimizer, scheduler: what is trained and saved.
        plan: the run's `Plan`.
        device: where the model and its losses live.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, plan: Plan,
                 device: torch.device):
        self.model, self.optimizer, self.scheduler, self.plan, self.device = model, optimizer, scheduler, plan, device
        self.step, self.history, self.train_seconds = 0, [], 0.0
        self.epoch_loss_sum, self.n_epoch = 0.0, 0   # the current epoch's, carried across resumes

    def resume(self, fields: dict[str, type], check: Callable[[dict], None]) -> dict | None:
        """Continue from `plan.resume_path` when it exists.

        Args:
            fields: {identity field: type} the held file must also have.
            check: raises InputError when the held file (fields checked) is another run's.
        Returns:
            The held state, or None when there is none (a fresh start).
        Raises:
            InputError: a foreign, malformed or other run's last.pt.
        """
        path = self.plan.resume_path
        if not path.exists():
            return None
        state = load_torch(path, self.plan.resume_kind, map_location=self.device)
        bad = next((k for k, kind in {**RESUME_FIELDS, **fields}.items() if not isinstance(state.get(k), kind)), None)
        if bad is not None:
            raise InputError(f"{path}: malformed resume point ({bad} is missing or of the wrong type)")
        check(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["cpu"])
        if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.step, self.history, self.train_seconds = state["step"], state["history"], state["train_seconds"]
        self.epoch_loss_sum, self.n_epoch = state["epoch_loss"]
        return state

    def run(self, step_loss: Callable[[int], Tensor], *, progress: bool = True, stop_at_step: int | None = None,
            epoch_metrics: Callable[[], dict] = dict, after_step: Callable[[int], float] | None = None,
            before_save: Callable[[], None] | None = None) -> LoopResult:
        """Train from the current step to the plan's last (or `stop_at_step`).

        Args:
            step_loss: step index -> scalar loss of that step's batch (with gradients).
            progress: show the progress bar.
            stop_at_step: stop after this global step as if interrupted, leaving last.pt.
            epoch_metrics: extra history fields at each epoch end (e.g. a validation MAE).
            after_step: called with each step done (and with 0 before a fresh start); returns
                the seconds it took, left out of train_seconds.
            before_save: called before each resume point is written.
        Returns:
            LoopResult; the model is left in eval mode.
        Raises:
            InputError: the loss became NaN or inf.
        """
        plan, model = self.plan, self.model
        bar = progress_bar(plan.total_steps, plan.label, enabled=progress, initial=self.step, unit="step")
        running, n_running = torch.zeros((), device=self.device), 0
        checked_step = self.step  # `running` sums the losses since this step: a NaN or inf among them stays in the sum
        epoch_loss = torch.tensor(self.epoch_loss_sum, device=self.device)
        if after_step is not None and self.step == 0:
            after_step(0)
        model.train()
        tick = time.perf_counter()
        while self.step < plan.total_steps and (stop_at_step is None or self.step < stop_at_step):
            loss = step_loss(self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            step = self.step
            running += loss.detach()
            epoch_loss += loss.detach()
            n_running += 1
            self.n_epoch += 1

            if after_step is not None:
                tick += after_step(step)  # kept out of train_seconds, reported apart
            end_of_epoch = step % plan.steps_per_epoch == 0
            checkpoint_now = end_of_epoch or step % plan.checkpoint_every == 0 or step == stop_at_step
            if checkpoint_now or step % plan.log_every == 0 or step == plan.total_steps:
                total = running.item()  # read only here (it syncs the device), before any save
                if not math.isfinite(total):  # so a NaN never reaches last.pt
                    bar.close()
                    _stop_not_finite(checked_step + 1, step, plan.resume_path)
                checked_step = step
                bar.set_postfix(loss=f"{total / n_running:.4g}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                bar.update(step - bar.n)
                running.zero_()
                n_running = 0
            if checkpoint_now:
                sync_device(self.device)
                self.train_seconds += time.perf_counter() - tick
                if end_of_epoch:
                    self.history.append({"epoch": step // plan.steps_per_epoch, "step": step,
                                         "train_loss": epoch_loss.item() / max(self.n_epoch, 1), **epoch_metrics()})
                    epoch_loss.zero_()
                    self.n_epoch = 0
                    model.train()
                if before_save is not None:
                    before_save()
                self._save(epoch_loss)
                tick = time.perf_counter()
        bar.close()
        model.eval()
        return LoopResult(self.step, self.history, self.train_seconds, self.step >= plan.total_steps)

    def _save(self, epoch_loss: Tensor) -> None:
        """Write the resume point (module docstring)."""
        device = self.device
        rng_cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        save_torch(self.plan.resume_path, self.plan.resume_kind, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": {"cpu": torch.get_rng_state(), "cuda": rng_cuda},
            "step": self.step, "history": self.history, "train_seconds": self.train_seconds,
            "epoch_loss": [epoch_loss.item(), self.n_epoch], **self.plan.identity})


def one_cycle(optimizer: torch.optim.Optimizer, lr: float, total_steps: int,
              final_div_factor: float) -> torch.optim.lr_scheduler.OneCycleLR:
    """OneCycleLR(max_lr=lr, total_steps, final_div_factor), stepped every batch by the loop."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps,
                                               final_div_factor=final_div_factor)


class Batches:
    """Batch k of pass p is the k-th slice of `order(p)`, a permutation of the training items
    seeded by the pass, so a resumed run sees the same batches.

    Args:
        n_items: training items; batch: items per batch (n_items // batch batches a pass).
        order: pass index -> a permutation (tensor or array) of the items' indices.
    """

    def __init__(self, n_items: int, batch: int, order: Callable[[int], object]):
        self.batch, self.per_pass, self.order = batch, n_items // batch, order
        self._pass, self._perm = -1, None

    def __call__(self, step: int):
        """The item indices [batch] of step `step`'s batch."""
        pass_index, k = divmod(step, self.per_pass)
        if pass_index != self._pass:
            self._pass, self._perm = pass_index, self.order(pass_index)
        return self._perm[k * self.batch:(k + 1) * self.batch]


def _stop_not_finite(first: int, last: int, resume_path: Path) -> None:
    """InputError: a loss of steps first..last (the window since the last check) was NaN or inf."""
    when = f"at step {last}" if first == last else f"between steps {first} and {last}"
    kept = f"; the last good resume point {resume_path} is kept" if resume_path.exists() else ""
    raise InputError(f"training loss became non-finite {when} (try a lower --lr or check the data){kept}")


def sync_device(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA; nothing elsewhere), so wall times are true."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
