"""
A byte-level BPE tokenizer trained on our own corpus and run by tiktoken.

What this is: `train_bpe` learns merges the way GPT-2's BPE does (Sennrich et al., arXiv
1508.07909; byte-level as in GPT-2): split text into chunks with a regex, start from the 256
single bytes, and repeatedly merge the most frequent adjacent pair. The merges become tiktoken
"mergeable ranks" (rank = merge order), so encoding runs in tiktoken's fast Rust core through
`tiktoken.Encoding(name, pat_str, mergeable_ranks, special_tokens)`.

Two choices matter for arithmetic:
  - every digit is its own token: the split pattern has a single `\\p{N}`, so no chunk, and thus
    no merge, ever holds two digits ("1234" -> "1","2","3","4");
  - the template tags are special tokens, and `encode` never produces them: text from a user or
    a dataset that spells "<answer>" is encoded as ordinary bytes. Only `Tokenizer.render` places
    special tokens, at the positions the template puts them.

Saved in the standard `.tiktoken` text format (one `base64(token) rank` per line) next to every
checkpoint; the special tokens follow the ranks in the fixed order of SPECIAL_TOKENS.

What this is deliberately not: a general tokenizer. It never calls `tiktoken.get_encoding`
(which downloads files at run time), and training assumes ASCII text, which is all our corpus
holds: on ASCII, Python's `re` pattern below splits exactly as tiktoken's does.
"""

import base64
import hashlib
import os
import re
from collections import Counter

import tiktoken

# tiktoken's split pattern (Rust regex) and the same pattern for Python's `re` on ASCII text
PAT_STR = r"""'(?:s|t|re|ve|m|ll|d)| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ASCII_PAT = re.compile(r"""'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<think>", "</think>", "<answer>", "</answer>"]


def train_bpe(texts: list[str], vocab_size: int) -> dict[bytes, int]:
    """Learn mergeable ranks: 256 bytes, then up to vocab_size - 256 - len(SPECIAL_TOKENS) merges.

    Stops early when no pair occurs twice. Ties go to the pair that sorts first, so training is
    deterministic. Example: on ["aaab aaab"] the first merge is b"aa" (it occurs 4 times).
    """
    n_merges = vocab_size - 256 - len(SPECIAL_TOKENS)
    if n_merges < 0:
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)}, got {vocab_size}")
    chunks = Counter(c for t in texts for c in ASCII_PAT.findall(t))   # chunk text -> count
    words = {tuple(bytes([b]) for b in c.encode()): n for c, n in chunks.items()}
    ranks = {bytes([i]): i for i in range(256)}
    for _ in range(n_merges):
        # exercise: bpe_merge
        pairs: Counter = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))                 # most frequent, then sorted
        if pairs[best] < 2:
            break
        merged = best[0] + best[1]
        ranks[merged] = len(ranks)
        new_words = {}
        for w, n in words.items():                                       # replace best in each word
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
        # end of exercise: bpe_merge
    return ranks


class Tokenizer:
    """tiktoken.Encoding plus the ids of the template's special tokens."""

    def __init__(self, ranks: dict[bytes, int], name: str = "r1-tiny-bpe"):
        specials = {s: len(ranks) + i for i, s in enumerate(SPECIAL_TOKENS)}
        self.enc = tiktoken.Encoding(name, pat_str=PAT_STR, mergeable_ranks=ranks,
                                     special_tokens=specials)
        self.ranks = ranks
        self.eot, self.pad, self.think, self.think_end, self.answer, self.answer_end = (
            specials[s] for s in SPECIAL_TOKENS)

    @property
    def n_vocab(self) -> int:
        return self.enc.n_vocab

    def encode(self, text: str) -> list[int]:
        """Ordinary text to ids. Never yields a special token, whatever the text says."""
        return self.enc.encode_ordinary(text)

    def decode(self, ids) -> str:
        """Ids to text; special tokens decode to their literal names ("<answer>")."""
        return self.enc.decode([int(i) for i in ids])

    def render(self, prompt: str, think: str, answer: str) -> tuple[list[int], int]:
        """A full training document, and the number of prompt tokens at its start:
        prompt <think> think </think> <answer> answer </answer> <|endoftext|>."""
        p = self.encode(prompt)
        ids = (p + [self.think] + self.encode(think) + [self.think_end, self.answer]
               + self.encode(answer) + [self.answer_end, self.eot])
        return ids, len(p)

    # -- the .tiktoken file ---------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """sha256 of the ranks, stored beside each checkpoint: a tokenizer file from another run
        (even one of the same size) is caught when a checkpoint is loaded."""
        h = hashlib.sha256()
        for token, rank in sorted(self.ranks.items(), key=lambda kv: kv[1]):
            h.update(f"{base64.b64encode(token).decode()} {rank}\n".encode())
        return h.hexdigest()[:16]

    def save(self, path: str) -> None:
        """Write `base64(token) rank` lines, atomically (temporary file, fsync, rename)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            for token, rank in sorted(self.ranks.items(), key=lambda kv: kv[1]):
                f.write(f"{base64.b64encode(token).decode()} {rank}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        """Read a .tiktoken file; a malformed line raises ValueError naming the line."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        ranks = {}
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                try:
                    token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
                    assert len(parts) == 2 and rank == len(ranks)
                except (IndexError, ValueError, AssertionError):
                    raise ValueError(f"{path}:{lineno}: not a '<base64> <rank>' line with rank "
                                     f"{len(ranks)}") from None
                ranks[token] = rank
        if any(bytes([b]) not in ranks for b in range(256)):
            raise ValueError(f"{path}: does not hold all 256 single bytes")
        return cls(ranks)
