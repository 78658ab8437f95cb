"""lab/overopt.py: best-of-n's KL and its estimate worked by hand, and both of Gao et al.'s fits
recovering known coefficients."""

import math

import numpy as np
import pytest

from lab.overopt import best_of_n_curve, fit_bon, fit_rl, kl_bon, rl_points


def test_kl_of_best_of_n_by_hand():
    assert kl_bon(1) == 0.0
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bon(64) == pytest.approx(math.log(64) - 63 / 64)


def test_best_of_n_curve_by_hand():
    rows = best_of_n_curve(np.array([[1.0, 3, 2, 0]]), np.array([[5.0, 1, 4, 0]]), [1, 2, 4])
    assert [r["gold"] for r in rows] == [2.5, 2.5, 1.0]
    assert [r["proxy"] for r in rows] == [1.5, 2.5, 3.0]
    assert rows[2]["d"] == pytest.approx(math.sqrt(math.log(4) - 0.75))


def test_a_sample_without_a_proxy_score_is_never_chosen():
    rows = best_of_n_curve(np.array([[np.nan, 0.1]]), np.array([[9.0, 1.0]]), [2])
    assert rows[0]["gold"] == 1.0 and rows[0]["proxy"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="does not divide"):
        best_of_n_curve(np.zeros((1, 4)), np.zeros((1, 4)), [3])


def test_the_fits_recover_known_curves():
    d = np.linspace(0.1, 4, 30)
    bon = fit_bon(d, d * (2 - 0.5 * d))
    assert (bon["alpha"], bon["beta"], bon["d_peak"]) == pytest.approx((2, 0.5, 2))
    assert bon["r2"] == pytest.approx(1.0)
    rl = fit_rl(np.r_[0.0, d], np.r_[0.0, d * (1 - 0.5 * np.log(d))])   # d = 0 left out
    assert (rl["alpha"], rl["beta"], rl["d_peak"]) == pytest.approx((1, 0.5, math.e))
    noisy = fit_bon(d, d * (2 - 0.5 * d) + np.random.default_rng(0).normal(0, 0.3, d.size))
    assert 0.5 < noisy["r2"] < 1.0


def test_a_curve_that_never_turns_has_no_peak():
    d = np.linspace(0.1, 3, 10)
    assert fit_bon(d, 2 * d + 0.1 * d ** 2)["d_peak"] == float("inf")


def test_the_plot_is_written_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    from lab.overopt import plot
    bon = {"1": [{"n": 1, "d": 0.0, "gold": 3.0}, {"n": 2, "d": 0.4, "gold": 3.3}]}
    arms = {"beta_0": {"1": {"curves": {"kl_k1_seq": [0.0, 1.0, 4.0], "gold": [3.0, 2.0, 1.0]}}}}
    assert plot(bon, arms, str(tmp_path / "o.png")) and (tmp_path / "o.png").stat().st_size > 0


def test_rl_points_read_the_held_out_watch_when_there_is_one():
    """Without the watch: every step, the training batch's gold. With it: the steps it was taken
    and the one after the last step (at the last step's KL), R from the held-out gold."""
    curves = {"kl_k1_seq": [0.0, 1.0, 4.0, 9.0], "gold": [3.0, 4.0, 5.0, 6.0]}
    d, r = rl_points(curves)
    assert d.tolist() == [0.0, 1.0, 2.0, 3.0] and r.tolist() == [0.0, 1.0, 2.0, 3.0]
    curves["heldout/gold"] = [2.0, None, 2.5, None, 1.5]             # steps 0, 2, after 3
    d, r = rl_points(curves)
    assert d.tolist() == [0.0, 2.0, 3.0] and r.tolist() == [0.0, 0.5, -0.5]
