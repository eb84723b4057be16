"""Monte-Carlo evaluation of stochastic networks: softmax averaged over fresh noise samples.

The paper tests an NSM by running each mini-batch S times (S = 100) with fresh noise and classifying
by the argmax of the averaged softmax (docs/model.md §2). :func:`mc_predict` does that with bounded
memory (one data block of ``batch_size`` examples and one sample at a time) and a random stream that
is a pure function of (seed, block, sample):

    base          = one integer drawn from ``generator`` (torch's global RNG if None)
    seed(b, s)    = numpy SeedSequence([base, b, s]) → one 64-bit word
    noise of (b, s) = every stochastic layer draws from torch.Generator().manual_seed(seed(b, s))

where b indexes blocks of ``batch_size`` consecutive examples and s the absolute sample index.
Hence splitting the samples over several calls (``sample_start``) or workers, or summing them in
another order, gives the same numbers; the block size is part of the stream definition (a
different ``batch_size`` gives other, equally valid, noise).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from nsm.layers import Stochastic, use_generator
from nsm.progress import bar_options

_BASE_SEED_BOUND = 2**62  # base seeds are drawn uniformly from [0, 2^62)


def _check_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field}={value!r} must be an int >= {minimum}")
    return value


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def stream_seed(base: int, block: int, sample: int) -> int:
    """The 64-bit seed of the noise of data block ``block`` and sample ``sample``."""
    word = np.random.SeedSequence([base, block, sample]).generate_state(1, dtype=np.uint64)[0]
    return int(word)


def draw_base_seed(generator: torch.Generator | None) -> int:
    """One integer in [0, 2^62) from ``generator`` (advancing it), or torch's global RNG."""
    t = torch.randint(
        0,
        _BASE_SEED_BOUND,
        (1,),
        generator=generator,
        dtype=torch.int64,
        device=generator.device if generator is not None else "cpu",
    )
    return int(t.item())


def _blocks(n: int, batch_size: int) -> Iterator[tuple[int, slice]]:
    for b, start in enumerate(range(0, n, batch_size)):
        yield b, slice(start, min(start + batch_size, n))


@torch.no_grad()
def mc_predict(
    model: nn.Module,
    x: Tensor,
    samples: int = 100,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    progress: bool = False,
    *,
    sample_start: int = 0,
) -> Tensor:
    """MC-averaged softmax of ``model`` over ``samples`` fresh noise samples: (N, classes).

    ``model`` maps a batch of ``x`` to logits (N, classes); it runs in eval mode without
    gradient (its train/eval flags are restored afterwards). ``x`` (N, ...) is processed in
    blocks of ``batch_size`` on the model's device; memory holds one block's activations and the
    (N, classes) float64 running sum. Samples ``sample_start … sample_start + samples − 1`` of the
    stream described in the module docstring are used (a network with no stochastic layer runs
    once per block: every sample would be the same). Returns float32 probabilities on the CPU.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"x needs at least one example along dim 0, got shape {tuple(x.shape)}")
    _check_int("samples", samples, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("sample_start", sample_start, 0)
    device = _model_device(model)
    base = draw_base_seed(generator)
    # A network without a stochastic layer (BD, wBD, BN) gives the same output for every sample:
    # one pass per block is the exact average, and 100x cheaper.
    passes = samples if any(isinstance(m, Stochastic) for m in model.modules()) else 1
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    n_blocks = -(-x.shape[0] // batch_size)
    bar = tqdm(
        total=n_blocks * passes,
        desc="MC samples",
        unit="pass",
        disable=not progress,
        **bar_options(),  # no per-pass redraws into a log file
    )
    out: Tensor | None = None
    try:
        for b, rows in _blocks(x.shape[0], batch_size):
            xb = x[rows].to(device)
            total: Tensor | None = None
            for s in range(sample_start, sample_start + passes):
                g = torch.Generator(device=device).manual_seed(stream_seed(base, b, s))
                with use_generator(model, g):
                    logits = model(xb)
                if logits.dim() != 2 or logits.shape[0] != xb.shape[0]:
                    raise ValueError(
                        f"model output shape {tuple(logits.shape)} is not (batch={xb.shape[0]}, "
                        "classes)"
                    )
                prob = torch.softmax(logits.double(), dim=1)
                total = prob if total is None else total + prob
                bar.update(1)
            assert total is not None
            if out is None:
                out = torch.empty(x.shape[0], total.shape[1], dtype=torch.float64)
            out[rows] = total.cpu() / passes
    finally:
        bar.close()
        for m, training in flags:
            m.training = training
    assert out is not None
    return out.float()


def accuracy_nll(prob: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean negative log-likelihood) of class probabilities prob (N, C) for labels
    y (N,); probabilities are floored at 1e-12 so one confident mistake stays finite."""
    accuracy = float((prob.argmax(1) == y).float().mean())
    nll = float(-torch.log(prob[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
    return accuracy, nll


def mc_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    samples: int = 100,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    progress: bool = False,
) -> float:
    """Fraction of examples whose MC-averaged softmax argmax equals the label ``y`` (N,)."""
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(f"labels y {tuple(y.shape)} and inputs x {tuple(x.shape)} differ in N")
    prob = mc_predict(model, x, samples, generator, batch_size, progress)
    return float((prob.argmax(dim=1) == y.cpu()).double().mean())
