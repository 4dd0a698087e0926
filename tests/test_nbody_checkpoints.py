"""The shipped n-body checkpoints: they load with their own config and predict fresh systems."""

from __future__ import annotations

import os

import numpy as np
import torch

from examples.nbody import predict as predict_mod
from examples.nbody import simulate

CHECKPOINTS = os.path.join(os.path.dirname(__file__), "..", "examples", "nbody", "checkpoints")
CHARGED = os.path.join(CHECKPOINTS, "charged-gatr.pt")
GRAVITY = os.path.join(CHECKPOINTS, "gravity-gatr.pt")
CGENN = os.path.join(CHECKPOINTS, "charged-cgenn.pt")


def test_checkpoints_are_small_and_carry_their_config():
    for path, task in ((CHARGED, "charged"), (GRAVITY, "gravity")):
        assert os.path.getsize(path) < 4 * 2**20
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        assert ckpt["task"] == task and ckpt["model_name"] == "gatr" and ckpt["config"]["preset"] == "full"
        model, trained_on = predict_mod.load_model(path)
        assert trained_on == task and not model.training


def test_shipped_charged_checkpoint_predicts_fresh_systems():
    """The shipped model on 64 newly simulated systems (a seed no split uses)."""
    sim = simulate.simulate_charged(64, seed=4242, frames=40)
    loc, vel = sim["loc"][:, 30], sim["vel"][:, 30]
    pred = predict_mod.predict(CHARGED, loc, vel, sim["charges"])
    assert pred.shape == (64, 5, 3) and pred.dtype == np.float64
    linear = float(((loc + vel - sim["loc"][:, 40]) ** 2).mean())
    mse = float(((pred - sim["loc"][:, 40]) ** 2).mean())
    assert mse < 0.02 and mse < linear / 5, (mse, linear)
    # the charge flip is an exact symmetry of the task, and of the shipped model's prediction
    flipped = predict_mod.predict(CHARGED, loc, vel, -sim["charges"])
    np.testing.assert_allclose(flipped, pred, atol=1e-5)


def test_shipped_gravity_checkpoint_predicts_fresh_systems():
    sim = simulate.simulate_gravity(64, seed=4242)
    pred = predict_mod.predict_gravity(GRAVITY, sim["loc"], sim["vel"], sim["masses"])
    linear = float(((sim["loc"] + 0.1 * sim["vel"] - sim["loc_final"]) ** 2).mean())
    mse = float(((pred - sim["loc_final"]) ** 2).mean())
    assert mse < 0.003 and mse < linear / 5, (mse, linear)
    # E(3) generalisation: the same systems 200 units away give the same prediction, moved
    offset = np.array([200.0, 0.0, 0.0])
    moved = predict_mod.predict_gravity(GRAVITY, sim["loc"] + offset, sim["vel"], sim["masses"])
    np.testing.assert_allclose(moved - offset, pred, atol=2e-3)


def test_shipped_cgenn_checkpoint_is_the_cgenn_paper_preset():
    """CGENN's network (the cgenn-paper preset, 30 epochs) on 64 newly simulated systems."""
    assert os.path.getsize(CGENN) < 2**20
    ckpt = torch.load(CGENN, map_location="cpu", weights_only=True)
    assert ckpt["model_name"] == "cgenn" and ckpt["config"]["preset"] == "cgenn-paper"
    assert ckpt["model_kwargs"]["mlp"]["style"] == "cgenn" and ckpt["model_kwargs"]["inputs"] == "cgenn"
    model, _ = predict_mod.load_model(CGENN)
    assert sum(p.numel() for p in model.parameters()) == 134625
    sim = simulate.simulate_charged(64, seed=4242, frames=40)
    loc, vel = sim["loc"][:, 30], sim["vel"][:, 30]
    pred = predict_mod.predict(CGENN, loc, vel, sim["charges"])
    linear = float(((loc + vel - sim["loc"][:, 40]) ** 2).mean())
    mse = float(((pred - sim["loc"][:, 40]) ** 2).mean())
    assert mse < 0.02 and mse < linear / 5, (mse, linear)
