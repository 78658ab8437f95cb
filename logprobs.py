"""
Teacher-forced log-probabilities of completions under a policy, whole or in micro-batches: what
GRPO's update, its reference policy and its log read (grpo.py).

`token_logprobs` is one forward over prompt + completion: log π_T(o_t | q, o_<t) at each
completion position, π_T = softmax(z / T) at the rollout temperature (the distribution
sampler.generate drew from, and recorded the same log-probs for), and, for the log, the
entropy of π_T. `micro_batches` splits the B*G rows of a step into chunks of like length, each
cut to the columns it needs, so that the update can accumulate its gradient chunk by chunk
(grpo_loss.update) and the no-grad forwards stay small (`chunked_logprobs`).

What this deliberately is not: a fused cross-entropy kernel, or packing several rows into one
(rows keep their own left pad, as model.GPT expects).
"""

import torch
import torch.nn.functional as F


def token_logprobs(model, ids, pad, n_prompt: int, with_entropy: bool = False,
                   temperature: float = 1.0):
    """Teacher-forced log π_T(o_t | q, o_<t) of the completion tokens, π_T = softmax(z / T): the
    distribution the rollouts were sampled from (sampler.generate records the same).

    ids (N, Tp + T) = left-padded prompt then completion; pad (N,). Returns logp (N, T) and,
    if asked, the true entropy of π_T at each completion position (N, T)."""
    # exercise: token_logprobs
    logits, _ = model(ids[:, :-1], pad_len=pad)                      # (N, Tp + T - 1, V)
    logits = logits[:, n_prompt - 1:]                                # (N, T, V) predicts o_t
    if temperature != 1.0:
        logits = logits / temperature                                # (N, T, V) z / T
    logp_all = F.log_softmax(logits.float(), dim=-1)                 # (N, T, V)
    logp = logp_all.gather(-1, ids[:, n_prompt:, None])[..., 0]      # (N, T) log π(o_t | ...)
    if not with_entropy:
        return logp
    with torch.no_grad():                                            # for the log: no graph kept
        entropy = -(logp_all.exp() * logp_all).sum(-1)               # (N, T) H[π(· | ...)]
    return logp, entropy
    # end of exercise: token_logprobs


def micro_batches(real: torch.Tensor, pad: torch.Tensor, n_prompt: int, size: int):
    """The N rows of a batch in chunks of at most `size` rows (all at once for size 0), rows of
    like length together, each chunk with the columns it needs: [(rows, lo, hi)], rows an index
    tensor, columns lo .. hi - 1 of the (N, n_prompt + T) ids. lo = the chunk's least left pad
    and hi = n_prompt + its longest completion: columns that are padding in every row of the
    chunk are not computed, and sorting by length makes those most of a short chunk's. A row's
    numbers do not change, but for float rounding (positions restart after each row's own pad,
    model.hidden), and the loss is a sum over rows. real (N, T) bool: generated tokens, a
    prefix of each row; pad (N,).
    micro_batches(real=[[1,1,0],[1,0,0],[1,1,1]], pad=[2,1,0], n_prompt=4, size=2)
      -> [([1, 0], 1, 6), ([2], 0, 7)]        (lengths 2, 1, 3: row 1 is the shortest)"""
    lengths = real.sum(1)                                            # (N,)
    order = lengths.argsort(stable=True) if size else torch.arange(len(lengths))
    chunks = []
    for rows in order.to(real.device).split(size or len(order)):
        longest = int(lengths[rows].max())                           # one host read per chunk
        chunks.append((rows, int(pad[rows].min()), n_prompt + max(longest, 1)))
    return chunks


@torch.no_grad()
def chunked_logprobs(model, ids, pad, n_prompt: int, real, size: int, temperature: float = 1.0):
    """token_logprobs with its entropy, over micro_batches of `size` rows, without a graph:
    logp, entropy (N, T), 0 after each chunk's longest completion."""
    logp, entropy = torch.zeros(real.shape, device=ids.device), torch.zeros(real.shape,
                                                                            device=ids.device)
    for rows, lo, hi in micro_batches(real, pad, n_prompt, size):
        logp[rows, :hi - n_prompt], entropy[rows, :hi - n_prompt] = token_logprobs(
            model, ids[rows, lo:hi], pad[rows] - lo, n_prompt - lo, with_entropy=True,
            temperature=temperature)
    return logp, entropy
