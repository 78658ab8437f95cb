"""flash_attention.py, our Triton kernel: values and gradients against the explicit path in fp32,
across the presets' head shapes, padded rows, lengths off the tile and a head width that is not a
power of two; and inside the model, the same logits and gradients as the explicit path, with
decoding left to SDPA. On a CPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1,
set here before Triton is imported); without Triton the module is skipped, saying why."""

import math
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before Triton decorates the kernels
pytest.importorskip("triton", reason="Triton is not installed (pip install -e '.[gpu]')")

from flash_attention import flash_attention  # noqa: E402
from model import GPT, GPTConfig, attention_mask  # noqa: E402
from sampler import generate  # noqa: E402


def explicit(q, k, v, pad):
    """softmax(q k^T / √d + mask) v with model.attention_mask: the reference."""
    mask = attention_mask(pad, 0, q.shape[2], q.shape[2])           # (B, 1, T, T)
    att = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return att.softmax(-1) @ v


@pytest.mark.parametrize("B, H, T, D, pad", [
    (2, 2, 37, 16, [0, 5]),        # the smoke preset's head width; 37 crosses tiles of 16
    (2, 4, 33, 32, [0, 20]),       # the cpu preset's heads; a row padded past a whole tile
    (1, 3, 20, 24, [19]),          # a width that is not a power of two; all but one token pad
    (1, 2, 16, 48, [3]),           # the gpu preset's width 48, exactly one tile
    (3, 1, 7, 16, [0, 0, 0]),      # shorter than a tile, no padding
])
def test_values_and_gradients_match_the_explicit_path(B, H, T, D, pad):
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    pad = torch.tensor(pad)
    y = flash_attention(q, k, v, pad, block=16)
    y_ref = explicit(q, k, v, pad)
    torch.testing.assert_close(y, y_ref, atol=2e-6, rtol=1e-5)
    dy = torch.randn_like(y)
    for got, want in zip(torch.autograd.grad(y, (q, k, v), dy),
                         torch.autograd.grad(y_ref, (q, k, v), dy)):
        torch.testing.assert_close(got, want, atol=5e-6, rtol=1e-5)


def test_a_pad_query_sees_itself_and_a_real_one_never_sees_padding():
    """With pad 2 the first two outputs are their own values (softmax over one key), and no
    output moves when a padding key or value changes."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 1, 6, 16) for _ in range(3))
    y = flash_attention(q, k, v, torch.tensor([2]), block=16)
    torch.testing.assert_close(y[0, 0, :2], v[0, 0, :2])
    k2, v2 = k.clone(), v.clone()
    k2[..., 0, :], v2[..., 1, :] = 9.0, -9.0                        # padding keys and values
    y2 = flash_attention(q, k2, v2, torch.tensor([2]), block=16)
    torch.testing.assert_close(y2[0, 0, 2:], y[0, 0, 2:])


def test_the_model_on_the_kernel_is_the_model_on_the_explicit_path():
    """One tiny GPT, its weights under both paths: logits and every gradient agree on a
    left-padded batch and on unpadded rows; sampling with the KV cache (SDPA) draws the same
    tokens."""
    cfg = dict(vocab_size=64, block_size=40, n_layer=2, n_head=2, n_embd=32)
    torch.manual_seed(0)
    ref = GPT(GPTConfig(**cfg, attn_impl="explicit"))
    ours = GPT(GPTConfig(**cfg, attn_impl="triton"))
    ours.load_state_dict(ref.state_dict())
    idx = torch.randint(0, 64, (3, 21), generator=torch.Generator().manual_seed(2))
    for pad in (torch.tensor([0, 4, 17]), None):
        (a, la), (b, lb) = (m(idx, idx, pad_len=pad) for m in (ref, ours))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)       # pad positions too
        ga = torch.autograd.grad(la, list(ref.parameters()))
        gb = torch.autograd.grad(lb, list(ours.parameters()))
        for x, y in zip(ga, gb):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8]]
    draws = [generate(m.eval(), prompts, num_samples=2, max_new_tokens=6, pad_id=0,
                      generator=torch.Generator().manual_seed(3)).tokens for m in (ref, ours)]
    assert torch.equal(*draws)
