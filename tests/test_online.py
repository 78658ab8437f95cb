"""online.py, online RLHF: the policy's own pairs labelled by the human and the preference model
updated on them, half online labels and half the teacher's; labels counted; and its state carried
through --resume (the GRPO stage's resume test runs it end to end: tests/test_resume.py)."""

import copy

import pytest
import torch

import online
from bradley_terry import PreferenceConfig
from data.problems import ANSWER_STYLES, Problem, TaskConfig, answer_text
from data.tokenizer import Tokenizer, train_bpe
from model import GPTConfig
from online import OnlineLabels
from preference import PreferenceModel
from reward import Reward, RewardConfig

PROBLEM = Problem("Ann has 40 apples. She buys 3 more. How many apples does Ann have now?",
                  40, (("+", 3),), 43, "Ann", ("apple", "apples"))
THINK = "40+3: 0+3=3, 4+0=4, so 43."
RIGHT = f"<think>{THINK}</think><answer>Ann has 43 apples now.</answer>"
WRONG = "<think>40+3: 0+3=3, 4+0=4, so 42.</think><answer>Ann has 42 apples now.</answer>"


class Drawn:
    """What generate returns, as far as OnlineLabels reads it: the texts, a pair per prompt."""
    def __init__(self, texts):
        self._texts = texts

    def texts(self, decode):
        return self._texts


@pytest.fixture()
def labeller(monkeypatch):
    texts = [PROBLEM.prompt + THINK + answer_text(PROBLEM, 43, s) for s, _, _ in ANSWER_STYLES]
    tok = Tokenizer(train_bpe(texts * 3, 300))
    torch.manual_seed(0)
    rm = PreferenceModel(GPTConfig(vocab_size=tok.n_vocab, block_size=128, n_layer=1, n_head=2,
                                   n_embd=16)).requires_grad_(False)     # as load_reward_model
    reward = Reward(RewardConfig(w_correct=0.0, w_pref=1.0, pref_scope="response"), tok, rm, "cpu")
    cfg = PreferenceConfig(rm_pairs=16, rm_online_pairs=4, rm_online_steps=3, rm_batch_size=4,
                           rater_check=1.0)
    # a policy that writes, for each of its 4 prompts: a right answer, then an answer span-less
    # text (no pair), or a wrong one (a pair): prompts 0 and 2 give pairs with one wrong side
    drawn = [RIGHT, WRONG, RIGHT, "<think>no answer", RIGHT, WRONG, "<think>", RIGHT]
    monkeypatch.setattr(online, "generate", lambda *a, **k: Drawn(drawn))
    make = lambda: OnlineLabels(reward, tok, cfg, TaskConfig(n_eval=8), [PROBLEM],  # noqa: E731
                                [PROBLEM], "cpu", seed=0, temperature=1.0, max_new_tokens=32)
    return make, rm, tok


def test_the_human_labels_the_policys_pairs_and_the_model_learns_from_them(labeller):
    """Two of the four prompts give a pair (the others lack an answer span); a labeller who always
    checks prefers the right side (D = c = 6 against tau 0.7: sigma(8.6)); 16 offline labels +
    2 online are counted; the model's weights and r_ref move."""
    make, rm, tok = labeller
    labels = make()
    before = [p.detach().clone() for p in rm.parameters()]
    r_ref = rm.r_ref.item()
    out = labels(None, step=0)
    assert out["labels_new"] == 2 and labels.labels == 16 + 2
    right_ids = labels.online[0][0]
    assert all(chosen == right_ids for chosen, _ in labels.online)      # right chosen, twice
    assert any(not torch.equal(a, b) for a, b in zip(before, rm.parameters()))
    assert rm.r_ref.item() != r_ref and out["rm_online_loss"] > 0


def test_online_state_carries_through_a_resume(labeller):
    """A labeller rebuilt from state() continues as the first would: the same labels next, the
    same weights after the next update."""
    make, rm, tok = labeller
    first = make()
    first(None, step=0)
    saved = copy.deepcopy(first.state())                               # as torch.save would
    first(None, step=1)
    after_first = [p.detach().clone() for p in rm.parameters()]
    second = make()
    second.load(saved)                                                  # rm back to step 0's
    second(None, step=1)
    assert second.labels == first.labels == 16 + 4
    for a, b in zip(after_first, rm.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_online_settings_are_refused():
    for kw, match in ((dict(rm_online_every=-1), "rm_online_every"),
                      (dict(rm_online_pairs=0), "rm_online_pairs"),
                      (dict(rm_online_lr=0.0), "rm_online_lr")):
        with pytest.raises(ValueError, match=match):
            PreferenceConfig(**kw)
