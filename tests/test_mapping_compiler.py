"""The compiler (torch model → program) against the torch models it compiles.

Equality checks run the torch model in float64 on the float32 values the program stores (a float32
→ float64 cast is exact), so the program's numpy semantics must reproduce torch to ~1e-12: firing
probabilities of every binary layer (conv im2col order included), max-pool, flatten and logits,
walking the layers of every supported model × rule on the same sampled states."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nsm
from mapping import reference as ref
from mapping.compiler import CompileError, compile_checkpoint, compile_model
from mapping.program import load_program, save_program
from mapping.records import BinariseLayer, ConvLayer, DenseLayer, FlattenLayer, MaxPoolLayer
from nsm.checkpoint import save_checkpoint
from nsm.models import MODELS, build_model
from nsmx.cli import main

SUPPORTED_RULES = ["nsm", "nsm-ste", "binconcrete", "bn", "bd", "wbd"]
ATOL = 1e-12  # float64 on identical inputs: differences are rounding only


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Trained-looking parameters: β in [0.3, 2], biases of the order of the weight norm (so
    b̃ and the sign thresholds matter), fresh weights; the values are float32."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(
                module, (nsm.NSMLinear, nsm.NSMConv2d, nsm.SignLinear, nsm.SignConv2d, nn.Linear)
            ):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g))
                norm = module.weight.flatten(1).norm(dim=1)
                if module.bias is not None:
                    module.bias.copy_(0.5 * norm * torch.randn(norm.shape, generator=g))
                beta = getattr(module, "beta", None)
                if beta is not None:
                    beta.copy_(0.3 + 1.7 * torch.rand(beta.shape, generator=g))
    return model.eval()


def leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not isinstance(m, nn.Sequential)]


def walk_and_compare(model: nn.Module, program, x: np.ndarray, seed: int = 0) -> None:
    """Run torch (float64) layer by layer; at each layer the program's numpy semantics on the
    same input must give the same probabilities (binary layers) or the same outputs."""
    model = model.double()
    mods = leaves(model)
    assert len(mods) == len(program.layers)
    z = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad(), nsm.use_generator(model, gen):
        for module, layer in zip(mods, program.layers, strict=True):
            z_np = z.numpy()
            out = module(z)
            if isinstance(layer, (DenseLayer, ConvLayer)):
                p_np = ref.firing_probability(layer, z_np)
                assert p_np.shape == tuple(out.shape)
                if isinstance(module, (nsm.NSMLinear, nsm.NSMConv2d)):
                    p_t = module.firing_probability(z).numpy()
                    np.testing.assert_allclose(p_np, p_t, rtol=0, atol=ATOL)
                    assert 0.05 < p_np.mean() < 0.95  # a non-trivial comparison
                else:
                    s = module.preactivation(z).numpy()
                    decided = np.abs(s) > 1e-9  # exact ties may round either way
                    assert decided.mean() > 0.99
                    np.testing.assert_array_equal(p_np[decided], ((out.numpy() + 1) / 2)[decided])
            elif isinstance(layer, BinariseLayer):
                np.testing.assert_array_equal(ref.binarise(layer, z_np), out.numpy())
            elif isinstance(layer, MaxPoolLayer):
                np.testing.assert_array_equal(ref.maxpool(layer, z_np), out.numpy())
            elif isinstance(layer, FlattenLayer):
                np.testing.assert_array_equal(ref.flatten(layer, z_np), out.numpy())
            else:
                np.testing.assert_allclose(
                    ref.output_logits(layer, z_np), out.numpy(), rtol=1e-12, atol=ATOL
                )
            z = out


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("rule", SUPPORTED_RULES)
def test_compile_every_model_and_rule(name: str, rule: str, tmp_path) -> None:
    spec = MODELS[name]
    seed = 10 * sorted(MODELS).index(name) + SUPPORTED_RULES.index(rule)
    model = randomise(build_model(name, rule), seed=seed)
    program = compile_model(model, spec.input_shape, source={"model": name, "rule": rule})
    kinds = [layer.kind for layer in program.layers]
    if name == "mnist-conv":
        assert kinds == [
            "binarize",
            "conv",
            "maxpool",
            "conv",
            "maxpool",
            "flatten",
            "dense",
            "output",
        ]
    else:
        assert kinds == ["binarize", "flatten"] + ["dense"] * (len(kinds) - 3) + ["output"]
    deterministic = rule in ("bn", "bd", "wbd")
    for layer in program.binary_layers:
        assert layer.deterministic == deterministic
        assert layer.noise == ("none" if deterministic else "bernoulli")
        assert layer.weight_norm == (rule != "bd")
        assert layer.scale_policy == "per_column" and layer.encoding == "differential_pair"
        if not deterministic:
            assert layer.p == (0.25 if isinstance(layer, ConvLayer) else 0.5)
    assert program.n_classes == 10
    # Round trip through the file, then the layer-by-layer comparison with torch.
    loaded = load_program(save_program(program, tmp_path / "m.nsmx"))
    assert loaded == program
    x = np.random.default_rng(1).random((3, *spec.input_shape))
    walk_and_compare(model, loaded, x)
    if deterministic:  # the whole network is deterministic: logits must agree end to end
        logits = ref.program_forward_reference(loaded, x, np.random.default_rng(0))
        with torch.no_grad():
            expected = model.double()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-10, atol=1e-9)


def test_weight_layout_and_im2col_order_on_real_conv_outputs() -> None:
    """The program's matrix is torch's weight transposed; for a conv, patches(z) @ W folded back
    equals F.conv2d(z, weight) (stride, padding and a non-square kernel)."""
    torch.manual_seed(0)
    conv = nsm.NSMConv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 1), p=0.3)
    dense = nsm.NSMLinear(5 * 4 * 6, 7)
    model = randomise(
        nn.Sequential(nsm.BinarizeInput(), conv, nn.Flatten(), dense, nn.Linear(7, 4)), seed=3
    )
    program = compile_model(model, (3, 7, 5))
    layer = program.layers[1]
    assert layer.out_shape == (5, 4, 6) and layer.weight.shape == (3 * 3 * 2, 5)
    w_t = conv.weight.detach()
    np.testing.assert_array_equal(layer.weight, w_t.reshape(5, -1).T.numpy())
    np.testing.assert_array_equal(program.layers[3].weight, dense.weight.detach().T.numpy())
    z = torch.where(
        torch.rand(4, 3, 7, 5, generator=torch.Generator().manual_seed(2)) < 0.5, 1.0, -1.0
    ).double()
    m_np = ref.fold(layer, ref.patches(layer, z.numpy()) @ layer.weight.astype(np.float64))
    m_t = F.conv2d(z, w_t.double(), stride=(2, 1), padding=(1, 1)).numpy()
    np.testing.assert_allclose(m_np, m_t, rtol=0, atol=1e-12)
    # And torch's own unfold gives the same patches in the same order.
    cols = F.unfold(z, (3, 2), padding=(1, 1), stride=(2, 1)).transpose(1, 2).numpy()
    np.testing.assert_array_equal(ref.patches(layer, z.numpy()), cols)


def test_gaussian_per_input_per_location_padding_and_no_bias() -> None:
    """Options beyond the reference models: Gaussian noise, per-input structure, β per location,
    zero padding (border neurons reach a smaller ‖w‖), layers without bias."""
    conv1 = nsm.NSMConv2d(
        2,
        3,
        3,
        stride=2,
        padding=1,
        noise="gaussian",
        sigma=0.7,
        beta_per="location",
        input_size=(7, 6),
    )
    conv2 = nsm.NSMConv2d(3, 4, (2, 3), padding=(1, 0), structure="per_input", p=0.3)
    dense = nsm.NSMLinear(48, 5, bias=False)
    model = randomise(
        nn.Sequential(
            nsm.BinarizeInput(),
            conv1,
            conv2,
            nn.MaxPool2d(2, stride=1, padding=1),
            nn.Flatten(),
            dense,
            nn.Linear(5, 3, bias=False),
        ),
        seed=7,
    )
    program = compile_model(model, (2, 7, 6))
    c1, c2, d, out = program.layers[1], program.layers[2], program.layers[5], program.layers[6]
    assert (c1.noise, c1.sigma, c1.p, c1.beta_per, c1.beta.shape) == (
        "gaussian",
        0.7,
        None,
        "location",
        (3, 4, 3),
    )
    assert (c2.structure, c2.p, c2.beta_per) == ("per_input", 0.3, "channel")
    assert not d.bias.any() and not out.bias.any()
    # β by location: (L, C_out) with l = h'·W' + w'.
    beta_ln = ref.beta_by_location(c1)
    assert beta_ln.shape == (12, 3) and beta_ln[1 * 3 + 2, 1] == c1.beta[1, 1, 2]
    x = np.random.default_rng(4).random((5, 2, 7, 6))
    walk_and_compare(model, program, x)


def test_compile_checkpoint_records_source(tmp_path) -> None:
    model = randomise(build_model("digits-mlp", "nsm"), seed=1)
    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(
        ckpt,
        {
            "model": "digits-mlp",
            "rule": "nsm",
            "state_dict": model.state_dict(),
            "epoch": 7,
            "config": {},
        },
    )
    program = compile_checkpoint(ckpt)
    assert program.source == {
        "checkpoint": str(ckpt),
        "model": "digits-mlp",
        "rule": "nsm",
        "epochs": 7,
    }
    assert program == compile_model(model, (1, 8, 8), source=program.source)
    glob = compile_checkpoint(ckpt, scale_policy="global", encoding="reference_column")
    assert all(
        layer.scale_policy == "global" and layer.encoding == "reference_column"
        for layer in glob.layers
        if hasattr(layer, "encoding")
    )
    with pytest.raises(ValueError, match="scale_policy='per_row'"):
        compile_checkpoint(ckpt, scale_policy="per_row")


# ------------------------------------------------------------------------------ unsupported


def test_sn_baseline_fails_with_clear_error() -> None:
    for name in MODELS:
        model = build_model(name, "sn")
        with pytest.raises(CompileError) as info:
            compile_model(model, MODELS[name].input_shape)
        msg = str(info.value)
        # The first unsupported module: mnist-conv's real-valued conv, else the noisy rectifier.
        bad = "module 1.0 (Conv2d)" if name == "mnist-conv" else "module 2.1 (NoisyReLU)"
        assert bad in msg and "not supported on the chip" in msg, msg
        assert "supported modules: nsm.BinarizeInput, nsm.NSMLinear" in msg


@pytest.mark.parametrize(
    ("modules", "fragments"),
    [
        (
            [nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(16, 8), nn.ReLU(), nn.Linear(8, 2)],
            ["module 3 (ReLU)", "not supported", "supported modules"],
        ),
        (
            [
                nsm.BinarizeInput(),
                nn.Flatten(),
                nsm.NSMLinear(16, 8),
                nn.BatchNorm1d(8),
                nn.Linear(8, 2),
            ],
            ["module 3 (BatchNorm1d)"],
        ),
        (
            [
                nsm.BinarizeInput(),
                nn.Flatten(),
                nn.Linear(16, 8),
                nsm.NSMLinear(8, 8),
                nn.Linear(8, 2),
            ],
            [
                "module 2 (Linear)",
                "only as the final output layer",
                "followed by module 3 (NSMLinear)",
            ],
        ),
        (
            [nn.Flatten(), nsm.NSMLinear(16, 8), nn.Linear(8, 2)],
            ["module 1 (NSMLinear)", "put nsm.BinarizeInput before it"],
        ),
        (
            [nsm.BinarizeInput(), nn.Flatten(), nsm.NSMLinear(16, 8)],
            ["must end with a real-valued nn.Linear", "module 2 (NSMLinear)"],
        ),
        (
            [nsm.BinarizeInput(), nsm.NSMLinear(16, 8), nn.Linear(8, 2)],
            ["module 1 (NSMLinear) expects 16 input features", "nn.Flatten"],
        ),
        (
            [nsm.BinarizeInput(), nn.Flatten(start_dim=2), nsm.NSMLinear(16, 8), nn.Linear(8, 2)],
            ["module 1 (Flatten)", "start_dim=1"],
        ),
        (
            [nsm.BinarizeInput(), nn.MaxPool2d(2, dilation=2), nn.Flatten(), nn.Linear(4, 2)],
            ["module 1 (MaxPool2d)", "dilation=1"],
        ),
        (
            [
                nsm.BinarizeInput(),
                nn.Sequential(nn.Flatten(), nn.ModuleDict({"a": nn.ReLU()})),
                nn.Linear(16, 2),
            ],
            ["module 1.1 (ModuleDict)", "unsupported container"],
        ),
        (
            [nsm.BinarizeInput(), nsm.NSMConv2d(2, 4, 3), nn.Flatten(), nn.Linear(16, 2)],
            ["module 1 (NSMConv2d) expects (C=2, H, W)"],
        ),
    ],
)
def test_unsupported_models_name_the_module(modules, fragments) -> None:
    with pytest.raises(CompileError) as info:
        compile_model(nn.Sequential(*modules), (1, 4, 4))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_non_finite_weights_are_refused() -> None:
    model = build_model("digits-mlp", "nsm")
    with torch.no_grad():
        model[3].weight[0, 0] = math.nan
    with pytest.raises(CompileError, match=r"module 3 \(NSMLinear\): weight has non-finite"):
        compile_model(model, (1, 8, 8))


# --------------------------------------------------------------------------------- the CLI


def test_nsmx_compile_cli(tmp_path, capsys) -> None:
    model = randomise(build_model("mnist-conv", "nsm"), seed=2)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(
        ckpt,
        {
            "model": "mnist-conv",
            "rule": "nsm",
            "state_dict": model.state_dict(),
            "epoch": 3,
            "config": {},
        },
    )
    out = tmp_path / "model.nsmx"
    assert main(["compile", str(ckpt), "-o", str(out), "--json"]) == 0
    captured = capsys.readouterr()  # --json: stdout is the JSON alone, the report on stderr
    result, text = json.loads(captured.out), captured.err
    program = load_program(out)
    assert program == compile_checkpoint(ckpt)
    # 2·K·N cells per matrix: 25x32, 800x64, 1024x512, 512x10.
    cells = 2 * (25 * 32 + 800 * 64 + 1024 * 512 + 512 * 10)
    assert result["cells"] == cells == program.cells()
    assert result["model"] == "mnist-conv" and result["epochs"] == 3
    assert [r["kind"] for r in result["layers"]][1:3] == ["conv", "maxpool"]
    assert f"{cells:,} crossbar cells" in text
    assert "p=0.25" in text and "800x64" in text
    # Default output: the checkpoint's name with suffix .nsmx.
    assert main(["compile", str(ckpt)]) == 0
    assert load_program(ckpt.with_suffix(".nsmx")) == program


def test_nsmx_compile_cli_errors(tmp_path, capsys) -> None:
    sn = build_model("digits-mlp", "sn")
    ckpt = tmp_path / "sn.pt"
    save_checkpoint(
        ckpt,
        {
            "model": "digits-mlp",
            "rule": "sn",
            "state_dict": sn.state_dict(),
            "epoch": 1,
            "config": {},
        },
    )
    assert main(["compile", str(ckpt), "-o", str(tmp_path / "x.nsmx")]) == 2
    err = capsys.readouterr().err
    assert "nsmx compile: error:" in err and "NoisyReLU" in err and "Traceback" not in err
    assert not (tmp_path / "x.nsmx").exists()
    assert main(["compile", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compile", str(ckpt), "--scale-policy", "per_row"])


def test_probability_on_real_valued_states_matches_torch() -> None:
    """The reach n² = (x ⊙ x)(W ⊙ W) also for states that are not ±1 (e.g. relaxed BinConcrete
    states or zeros), where torch uses z² per example; the method on the layer is the same."""
    conv = nsm.NSMConv2d(2, 3, 3, padding=1, noise="gaussian", sigma=0.5)
    model = randomise(
        nn.Sequential(nsm.BinarizeInput(), conv, nn.Flatten(), nn.Linear(3 * 5 * 4, 2)), seed=5
    )
    layer = compile_model(model, (2, 5, 4)).layers[1]
    z = torch.rand(3, 2, 5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = 2 * z - 1
    z[0, 0, 0, :] = 0.0
    expected = conv.double().firing_probability(z).detach().numpy()
    np.testing.assert_allclose(
        ref.firing_probability(layer, z.numpy()), expected, rtol=0, atol=ATOL
    )


def test_reference_mc_prediction_matches_torch_sampling() -> None:
    """Torch's CLT sampler and the program's reference draw the same per-neuron distribution, so
    their Monte-Carlo class probabilities agree within MC error. A class probability q ∈ [0, 1]
    with mean μ has variance ≤ μ(1 − μ), so the difference of two independent S-sample means has
    standard error ≤ √(2 μ(1 − μ)/S); tolerance 5 of those (plus 1e-3 for μ near 0 or 1)."""
    model = randomise(build_model("digits-mlp", "nsm"), seed=11)
    with torch.no_grad():  # moderate logits so that the softmax is not one-hot
        model[-1].weight.mul_(0.1)
        model[-1].bias.zero_()
    program = compile_model(model, (1, 8, 8))
    x = np.random.default_rng(2).random((12, 1, 8, 8)).astype(np.float32)
    samples = 2000
    # All samples in one batch: example e of sample k is row k·12 + e (fresh noise per row).
    with torch.no_grad(), nsm.use_generator(model, torch.Generator().manual_seed(0)):
        logits = model(torch.from_numpy(x).repeat(samples, 1, 1, 1)).double()
    q_torch = torch.softmax(logits, dim=1).reshape(samples, 12, 10).mean(0).numpy()
    q_ref = ref.predict_reference(program, x, samples=samples, rng=np.random.default_rng(0))
    mu = (q_torch + q_ref) / 2
    bound = 5 * np.sqrt(2 * mu * (1 - mu) / samples) + 1e-3
    assert np.all(np.abs(q_torch - q_ref) <= bound), np.max(np.abs(q_torch - q_ref) / bound)
    assert np.max(mu) < 0.95 and np.min(mu.max(axis=1)) > 0.15  # a non-degenerate comparison
