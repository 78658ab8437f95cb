"""lab/passk.py: the unbiased pass@k and the block estimate of maj@k worked by hand."""

import math

import pytest

from lab.passk import curves, maj_at_k, markdown, pass_at_k, plot


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)              # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)             # pass@1 is the mean
    assert pass_at_k(64, 0, 16) == 0.0 and pass_at_k(5, 4, 2) == 1.0
    assert pass_at_k(10, 3, 4) == pytest.approx(1 - math.comb(7, 4) / math.comb(10, 4))


def test_maj_at_k_by_hand():
    answers = ["3", "4", "4", "3", None, "3"]
    assert maj_at_k(answers, "3", 3) == 0.5                     # ("3","4","4") -> 4; then 3
    assert maj_at_k(answers, "3", 1) == pytest.approx(3 / 6)    # maj@1 is the mean
    assert maj_at_k(["4", "3"], "3", 2) == 0.0                  # a tie: the one seen first
    assert maj_at_k([None, None], "3", 2) == 0.0                # no vote, no answer
    with pytest.raises(ValueError, match="does not divide"):
        maj_at_k(answers, "3", 4)


def test_curves_average_over_problems():
    out = curves([["1", "1"], ["2", None]], ["1", "5"], [1, 2])
    assert out == {"pass@1": 0.5, "maj@1": 0.5, "pass@2": 0.5, "maj@2": 0.5}


def test_the_plot_is_written_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    one = {"pass@1": 0.25, "maj@1": 0.25, "pass@4": 0.5, "maj@4": 0.25}
    by_arm = {"default": {"1337": {m: {s: one for s in ("in_dist", "harder")}
                                   for m in ("pretrain", "rl")}}}
    assert plot(by_arm, str(tmp_path / "p.png")) and (tmp_path / "p.png").stat().st_size > 0


def test_the_table_orders_k_by_value_whatever_the_json_order():
    one = {"maj@1": 0.25, "maj@16": 0.5, "maj@4": 0.5, "pass@1": 0.25, "pass@16": 1.0,
           "pass@4": 0.75}                                  # json.dump(sort_keys) order
    by_arm = {"a": {"1": {m: {s: one for s in ("in_dist", "harder")} for m in ("pretrain", "rl")}}}
    header = markdown(by_arm, lambda xs: f"{sum(xs) / len(xs):.2f}").splitlines()[2]
    assert header == ("| arm | model | set | pass@1 | pass@4 | pass@16 | maj@1 | maj@4 | maj@16 |")
