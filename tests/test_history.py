"""gnn.history: the messages recorded during training are the model's, on fixed edges, at the
steps asked for; recording changes nothing in training; an interrupted run's history resumes
without gaps or duplicates; the file is read strictly.

Runs are tiny (16-wide, one hidden layer, 20 steps on random spring states) so each takes
about a second; whether the recorded R² rises as a model learns is checked in test_train.py
(`test_tiny_bottleneck_run_learns_the_force`), which trains long enough to learn.
"""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from gnn.messages import robust_affine_r2, significance, sparsity, top_components
from gnn.checkpoint import RESUME_KIND, load_model, load_torch, save_torch
from gnn.config import ModelConfig, TrainConfig
from gnn.history import HISTORY_FILE, load_history, save_history
from gnn.model import GNN
from gnn.train import train
from plumbing.errors import InputError
from test_train import SPRING, spring_data

MODEL = ModelConfig(strategy="bottleneck", hidden=16, n_hidden_layers=1)
RECORDED = TrainConfig(epochs=2, batch_size=32, device="cpu", checkpoint_every=4, message_history_every=10,
                       message_history_edges=300)


@pytest.fixture(scope="module")
def data():
    return {**spring_data(320, n_test=64), "law": SPRING}


@pytest.fixture(scope="module")
def recorded(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("recorded")
    return train(data, MODEL, RECORDED, out, progress=False), out


def _messages(model, history):
    with torch.no_grad():
        mu, _ = model.edge_stats(torch.from_numpy(history.x_recv.astype(np.float32)),
                                 torch.from_numpy(history.x_send.astype(np.float32)))
    return mu.numpy().astype(np.float64)


def test_rows_are_the_models_messages_at_the_asked_steps(recorded):
    result, out = recorded
    history = load_history(out)
    assert list(history.step) == [0, 10, 20]                      # before training, every 10 steps, the last
    assert history.values.shape == (3, 300, 2) and history.x_recv.shape == (300, 6)
    assert history.top.shape == history.r2_force.shape == history.r2_accel.shape == (3, 2)
    assert history.affine_force.shape == (3, 2, 3) and history.scores.shape == (3, 2)
    assert result.metrics["message_history_seconds"] == pytest.approx(history.seconds.sum())
    assert (history.seconds > 0).all()

    # The last row: the trained model's messages and their analysis, recomputed here.
    final = _messages(load_model(out)[0], history)
    top = top_components(significance(final), 2)
    np.testing.assert_array_equal(history.top[-1], top)
    np.testing.assert_allclose(history.values[-1], final[:, top], rtol=1e-6, atol=1e-6)
    assert history.sparsity[-1] == pytest.approx(sparsity(final, top))
    for k, comp in enumerate(top):
        r2, coef, fitted = robust_affine_r2(final[:, comp], history.force)
        assert history.r2_force[-1, k] == pytest.approx(r2)
        np.testing.assert_allclose(history.fitted(2)[:, k], fitted, rtol=1e-9, atol=1e-9)

    # The first row: the untrained model, the same initial weights as training's.
    torch.manual_seed(RECORDED.seed)
    untrained = _messages(GNN(MODEL), history)
    assert not np.allclose(untrained, final)
    np.testing.assert_allclose(history.values[0], untrained[:, history.top[0]], rtol=1e-6, atol=1e-6)


def test_recording_changes_nothing_in_training(data, recorded, tmp_path):
    result, _ = recorded
    plain = train(data, MODEL, dataclasses.replace(RECORDED, message_history_every=0), tmp_path,
                  progress=False)
    assert not (tmp_path / HISTORY_FILE).exists() and plain.metrics["message_history_seconds"] is None
    for p, q in zip(plain.model.parameters(), result.model.parameters()):
        assert torch.equal(p, q)
    without_law = train({k: v for k, v in data.items() if k != "law"}, MODEL, RECORDED, tmp_path / "arrays",
                        progress=False)
    assert not (tmp_path / "arrays" / HISTORY_FILE).exists()     # arrays without a law: nothing to compare to
    assert without_law.metrics["message_history_seconds"] is None


def test_an_interrupted_run_continues_its_history(data, recorded, tmp_path):
    _, whole = recorded
    train(data, MODEL, RECORDED, tmp_path, progress=False, stop_at_step=12)
    assert list(load_history(tmp_path).step) == [0, 10]
    # As if killed after the history was written but before last.pt: rows past the resume
    # point are dropped and recorded again.
    shutil.copy(whole / HISTORY_FILE, tmp_path / HISTORY_FILE)
    train(data, MODEL, RECORDED, tmp_path, progress=False)
    got, want = load_history(tmp_path), load_history(whole)
    assert list(got.step) == [0, 10, 20]
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.r2_force, want.r2_force, rtol=1e-6)


def test_a_resume_point_from_before_the_history_settings_resumes_with_their_defaults(data, tmp_path):
    defaults = dataclasses.replace(RECORDED, message_history_every=TrainConfig.message_history_every,
                                   message_history_edges=TrainConfig.message_history_edges)
    train(data, MODEL, defaults, tmp_path, progress=False, stop_at_step=12)
    state = load_torch(tmp_path / "last.pt", RESUME_KIND)
    state["train_config"] = {k: v for k, v in state["train_config"].items() if not k.startswith("message_history")}
    save_torch(tmp_path / "last.pt", RESUME_KIND, {k: v for k, v in state.items() if k not in ("kind", "version")})
    with pytest.raises(InputError, match="different configs"):        # the defaults are not RECORDED's
        train(data, MODEL, RECORDED, tmp_path, progress=False)
    assert train(data, MODEL, defaults, tmp_path, progress=False).finished


def test_history_of_other_edges_is_refused_on_resume(data, recorded, tmp_path):
    _, whole = recorded
    train(data, MODEL, RECORDED, tmp_path, progress=False, stop_at_step=5)
    held = load_history(whole)
    save_history(tmp_path, dataclasses.replace(held, x_recv=held.x_recv[::-1].copy()))
    with pytest.raises(InputError, match="other edges"):
        train(data, MODEL, RECORDED, tmp_path, progress=False)


def test_history_file_is_read_strictly(recorded, tmp_path):
    _, whole = recorded
    with pytest.raises(InputError, match="missing"):
        load_history(tmp_path)
    (tmp_path / HISTORY_FILE).write_bytes(b"not a zip")
    with pytest.raises(InputError, match="unreadable"):
        load_history(tmp_path)
    held = dict(np.load(whole / HISTORY_FILE))
    for bad, reason in (({**held, "version": np.array(99)}, "version 99"),
                        ({k: v for k, v in held.items() if k != "r2_accel"}, "r2_accel"),
                        ({**held, "sparsity": held["sparsity"][:1]}, "length")):
        np.savez(tmp_path / HISTORY_FILE, **bad)
        with pytest.raises(InputError, match=reason) as info:
            load_history(tmp_path)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("field,value", [("message_history_every", -1), ("message_history_every", 1.5),
                                         ("message_history_edges", 5)])
def test_bad_history_settings_are_refused(field, value):
    with pytest.raises(InputError, match=field):
        TrainConfig(**{field: value})

