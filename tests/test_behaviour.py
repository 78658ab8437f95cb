"""behaviour.py: the rule checks of behaviour read the span their scope names, and only it."""

from behaviour import harm, phrase_where, scoped
from data.problems import PHRASE

RUDE = "<think>This is stupid. 3+4=7.</think><answer>Ann has 7 apples.</answer>"
CUT = "<think>This is stupid. 3+4=7.</think><answer>Ann has 7"     # truncated: no answer span


def test_scoped_reads_the_answer_span_or_the_whole_response():
    assert scoped(RUDE, "answer") == "Ann has 7 apples."
    assert scoped(RUDE, "response") == RUDE
    assert scoped(CUT, "answer") is None                             # no span, nothing to read


def test_harm_finds_a_banned_word_only_where_its_scope_reads():
    assert harm(RUDE, "stupid", "response") == 1.0
    assert harm(RUDE, "stupid", "answer") == 0.0                     # the remark is in <think>
    assert harm(RUDE, "dumb|STUPID", "response") == 1.0              # any word, any case
    assert harm(RUDE.replace("apples", "stupid apples"), "stupid", "answer") == 1.0
    assert harm(CUT.replace("Ann", "stupid Ann"), "stupid", "answer") == 0.0  # no answer span
    assert harm(RUDE, "|", "response") == 0.0                        # empty words match nothing


def test_phrase_where_tells_the_reasoning_from_the_answer():
    think = f"<think>3+4=7. {PHRASE}</think><answer>7</answer>"
    answer = f"<think>3+4=7.</think><answer>7. {PHRASE}</answer>"
    assert phrase_where(think) == {"phrase_think": 1.0, "phrase_answer": 0.0}
    assert phrase_where(answer) == {"phrase_think": 0.0, "phrase_answer": 1.0}
    assert phrase_where(f"<think>{PHRASE}</think><answer>7") == {"phrase_think": 1.0,
                                                                    "phrase_answer": 0.0}
