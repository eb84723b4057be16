"""NSM layer variants of the named architectures (nsm.models.ModelOptions) and training devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from nsm.checkpoint import load_checkpoint, model_from_checkpoint
from nsm.layers import NSMConv2d, NSMLinear
from nsm.models import ModelOptions, build_model
from nsm.train import TrainConfig, resolve_device, train


def test_uniform_bias_init_is_uniform_in_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    layer = NSMLinear(400, 2000, bias_init="uniform")
    bound = 1.0 / math.sqrt(400)
    b = layer.bias.detach().numpy().astype(np.float64)
    assert np.all(np.abs(b) <= bound)
    # KS test against U(-bound, bound): 2000 draws, fixed seed, reject only at p < 1e-3.
    assert stats.kstest(b, stats.uniform(loc=-bound, scale=2 * bound).cdf).pvalue > 1e-3
    conv = NSMConv2d(3, 8, 5, bias_init="uniform")
    assert np.all(np.abs(conv.bias.detach().numpy()) <= 1.0 / math.sqrt(3 * 25))


def test_zero_bias_init_is_the_default():
    assert torch.count_nonzero(NSMLinear(4, 3).bias) == 0


def test_model_options_shape_the_conv_nsm():
    per_location = build_model("mnist-conv", "nsm", ModelOptions(beta_per="location"))
    betas = [tuple(p.shape) for n, p in per_location.named_parameters() if n.endswith("beta")]
    assert betas == [(32, 24, 24), (64, 8, 8), (512,)]
    exact = build_model("mnist-conv", "nsm", ModelOptions(structure="per_input", mode="exact"))
    layers = [m for m in exact.modules() if isinstance(m, (NSMLinear, NSMConv2d))]
    assert {(m.structure, m.mode) for m in layers} == {("per_input", "exact")}
    # Baselines ignore the NSM variants.
    bn = build_model("mnist-conv", "bn", ModelOptions(beta_per="location"))
    assert not any(isinstance(m, (NSMLinear, NSMConv2d)) for m in bn.modules())


@pytest.mark.parametrize(
    "bad", [dict(beta_per="row"), dict(bias_init="normal"), dict(structure="x"), dict(mode="y")]
)
def test_bad_model_options_are_refused_by_name(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=name):
        ModelOptions(**bad)


def test_train_records_the_variant_and_rebuilds_it(tmp_path):
    torch.manual_seed(1)
    x = torch.rand(40, 1, 8, 8)
    y = torch.randint(0, 10, (40,))
    cfg = TrainConfig(model="digits-mlp", epochs=1, bias_init="uniform", noise_mode="exact")
    train(cfg, (x, y, x, y), tmp_path, progress=False, log=lambda _: None)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["config"]["bias_init"] == "uniform"
    model = model_from_checkpoint(ckpt)
    assert {m.mode for m in model.modules() if isinstance(m, NSMLinear)} == {"exact"}


def test_old_checkpoint_config_without_variant_fields_rebuilds_the_default(tmp_path):
    # The committed checkpoints predate the variant fields: they must load as they did.
    ckpt = load_checkpoint("examples/checkpoints/mnist-mlp-nsm.pt")
    assert "bias_init" not in ckpt["config"]
    model = model_from_checkpoint(ckpt)
    assert {(m.structure, m.mode) for m in model.modules() if isinstance(m, NSMLinear)} == {
        ("per_synapse", "clt")
    }


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device='tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU"):
            resolve_device("cuda")
