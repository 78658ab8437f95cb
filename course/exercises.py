"""
The course's exercises, in the order that builds the pipeline: the model (tokenizer, positions,
attention, the cache that sampling runs on), then the rewards and the signal (the verifier, the
preference model's loss, the policy's log-probs, group advantages, the KL), then the update.
docs/course.md has a handout for each, in this order, and says why these twelve.

What this deliberately is not: the checks themselves (course/exercises_*.py).
"""

from course.exercises_loss import POLICY_LOSS, UPDATE
from course.exercises_model import ATTENTION, ATTENTION_MASK, BPE_MERGE, KV_CACHE, ROPE
from course.exercises_rl import (ANSWER_SPAN, BT_LOSS, GROUP_ADVANTAGES, KL_K3,
                                 TOKEN_LOGPROBS)

EXERCISES = [BPE_MERGE, ROPE, ATTENTION_MASK, ATTENTION, KV_CACHE, ANSWER_SPAN, BT_LOSS,
             TOKEN_LOGPROBS, GROUP_ADVANTAGES, KL_K3, POLICY_LOSS, UPDATE]


def by_name() -> dict:
    return {e.name: e for e in EXERCISES}
