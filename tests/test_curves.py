"""lab/curves.py: windowed means of a GRPO log, worked by hand, and its command line in-process."""

import json
import math

import pytest

import config
from lab import curves


def test_window_means_by_hand():
    rows = [{"step": s, "a": float(s), "b": math.nan if s % 2 else 1.0} for s in range(7)]
    # windows of 3 from 0, 3 and 6 (a short one: step 6 alone)
    assert curves.window_means(rows, "a", every=3, window=3) == [(0, 1.0), (3, 4.0), (6, 6.0)]
    # windows of 2 from 0 and 4, then the last 2 steps (5-6), since 4 + 2 < 7
    assert curves.window_means(rows, "a", every=4, window=2) == [(0, 0.5), (4, 4.5), (5, 5.5)]
    # NaN steps are left out: steps 0 and 2 of the first window, step 4 of the second
    assert curves.window_means(rows, "b", every=3, window=3)[:2] == [(0, 1.0), (3, 1.0)]
    assert math.isnan(curves.window_means([{"step": 0, "b": math.nan}], "b", 1, 1)[0][1])


def test_the_command_prints_a_table_per_run(tmp_path, capsys):
    rows = [{"step": s, "accuracy": s / 10, "gold": 2.0} for s in range(10)]
    (tmp_path / "grpo_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    curves.main([str(tmp_path), "--keys", "accuracy,gold", "--every", "5", "--window", "5"])
    out = capsys.readouterr().out
    assert "| 0-4 | 0.200 | 2.000 |" in out and "| 5-9 | 0.700 | 2.000 |" in out
    with pytest.raises(config.ConfigError, match="no key 'proxy'"):
        curves.main([str(tmp_path), "--keys", "proxy"])
    with pytest.raises(FileNotFoundError, match="no GRPO log"):
        curves.main([str(tmp_path / "nothing")])
