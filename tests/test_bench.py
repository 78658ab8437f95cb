"""lab/bench.py: the FLOPs formula by hand, the helpers, and one `--quick` run in a subprocess.

The subprocess checks the bench.json shape docs/speed.md describes (keys, types, positive figures),
never the speed: quick mode runs tiny sizes on whatever machine runs the tests."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from config import bare_flags
from lab import measure
from lab.measure import PeakMemory, SavedBytes, flops_per_token, linearity, timeit
from model import GPT, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flops_per_token_by_hand():
    """6 N + 12 L T C. Toy: N = 1000, L = 2, C = 8, T = 16 -> 6000 + 3072 = 9072.
    The cpu preset at T = 117: N = 853,120 (model.num_params, tied head counted once),
    6 N = 5,118,720; 12 * 4 * 128 * 117 = 718,848; total 5,837,568."""
    assert flops_per_token(1000, 2, 8, 16) == 9072
    n = GPT(GPTConfig()).num_params()
    assert n == 853_120
    assert flops_per_token(n, 4, 128, 117) == 5_837_568


def test_linearity_ignores_a_constant_and_sees_a_square():
    assert linearity([(100, 1100), (200, 2100), (400, 4100)]) == 1.0   # 1000 + 10 * bgt
    assert linearity([(1, 1), (2, 4), (4, 16)]) == 2.0                # bgt^2: (12/2) / (3/1)


def test_bare_quick_flag_means_true():
    assert bare_flags(["--quick"], "--quick") == ["--quick=true"]
    assert bare_flags(["--quick", "--out", "b.json"], "--quick") == ["--quick=true", "--out",
                                                                     "b.json"]
    assert bare_flags(["--quick", "false"], "--quick") == ["--quick", "false"]
    assert bare_flags(["--repeats", "3"], "--quick") == ["--repeats", "3"]


def test_timeit_warms_up_then_reports_the_median(monkeypatch):
    """A clock that reads 0, 3 | 3, 4 | 4, 6 around the three timed calls: durations 3, 1, 2,
    median 2; the two warm-up calls read no clock."""
    ticks = iter([0.0, 3.0, 3.0, 4.0, 4.0, 6.0])
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert timeit(lambda: calls.append(1), warmup=2, repeats=3, device="cpu") == 2.0
    assert len(calls) == 5


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_memory_sees_a_buffer_it_holds_and_not_one_freed_before():
    """256 MiB written inside the block raise the peak by about that much; a buffer allocated
    and freed before the block does not count."""
    before = torch.ones(64 * 2**20)                      # 256 MiB, freed before the block
    del before
    with PeakMemory("cpu") as m:
        held = torch.ones(64 * 2**20)                    # 64 Mi floats = 256 MiB, touched
    assert 0.9 * 2**28 < m.bytes < 1.5 * 2**28, m.bytes
    del held


@pytest.mark.parametrize("impl, per_head", [("explicit", True), ("sdpa", False)])
def test_saved_bytes_sees_the_explicit_attention_matrix(impl, per_head):
    """The explicit path keeps softmax(QK^T) (B, H, T, T) for backward; SDPA does not."""
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=64, block_size=32, n_layer=1, n_head=2, n_embd=16, attn_impl=impl)
    model = GPT(cfg)
    ids = torch.randint(0, 64, (3, 32))
    with SavedBytes(model) as saved:
        _, loss = model(ids, ids)
    tt = [s for s, st in saved.shapes if s[-3:] == (2, 32, 32) and st[-3] != 0]
    assert bool(tt) == per_head
    assert saved.bytes > 0


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    """One `python -m lab.bench --quick`: its JSON and its stdout, for the tests below."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "lab.bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


def test_quick_run_writes_the_promised_json(quick_bench):
    out, stdout = quick_bench
    assert "QUICK MODE" in stdout and "kv speedup" in stdout
    res = json.load(open(out))
    assert isinstance(res["device"], str) and res["quick"] is True
    assert isinstance(res["matmul_peak_flops"], float) and res["matmul_peak_flops"] > 0
    blocks = [res] + ([res["gpu"]] if torch.cuda.is_available() else [])
    for block in blocks:
        for section, keys in [("pretrain", ["tokens_per_s", "mfu"]),
                              ("sampling", ["kv_tokens_per_s", "nocache_tokens_per_s",
                                            "kv_speedup"]),
                              ("grpo_step", ["rollout_s", "reward_s", "train_s",
                                             "rollout_fraction"])]:
            for key in keys:
                value = block[section][key]
                assert isinstance(value, float) and value > 0, (section, key, value)
        assert 0 < block["grpo_step"]["rollout_fraction"] < 1
        assert isinstance(block["grpo_step"]["peak_mem_bytes"], int)   # PeakMemory, tested above
        # memory at three sizes of B*G, same T: exactly linear activations (to a few percent)
        scaling = block["memory_scaling"]
        assert [m["bgt"] for m in scaling] == sorted({m["bgt"] for m in scaling})
        assert len(scaling) == 3 and all(m["activation_bytes"] > 0 for m in scaling)
        saved = linearity([(m["bgt"], m["activation_bytes"]) for m in scaling])
        assert 0.9 < saved < 1.1 and 0 < block["memory_linearity"] < 1.2
        att = block["attention_memory"]
        assert not att["sdpa_causal"]["saves_tt_per_head"]
        assert not att["sdpa_padded"]["saves_tt_per_head"]
        assert att["explicit_causal"]["saves_tt_per_head"]       # the counter-example
    assert {c["metric"] for c in res["checks"]} >= {"smoke sampling kv speedup",
                                                   "smoke memory linearity"}


def test_trl_work_flops_and_reward_by_hand():
    from lab.bench_trl import Problem, contains_answer, step_flops
    assert step_flops(1000, GPTConfig(n_layer=1, n_embd=8, n_head=2), 10, 20, 4, 15) == 506400
    p = Problem(__import__("random").Random(0))
    p.answer = "7"
    scored = contains_answer([p, p], ["12 7 30", "17 70"])
    assert scored.total.tolist() == [1.0, 0.0] and scored.terms["correct"].tolist() == [1.0, 0.0]
    assert scored.floor == 0.0 and scored.answer_only is None


def test_trl_work_runs_grpo_step_on_trls_benchmark_work():
    """One step of TRL's benchmark work through grpo_step (bench_trl.bench_trl_work itself asserts
    that every row decoded 24 tokens); the FLOP fraction is the count over peak x seconds."""
    from lab.bench_trl import bench_trl_work
    w = bench_trl_work("cpu", fp32_peak=1e11, warmup=0, repeats=1)
    assert w["rows"] == 128 and w["new_tokens"] == 24 and 0 < w["rollout_s"] < w["step_s"]
    assert w["flop_fraction"] == pytest.approx(w["step_flops"] / 1e11 / w["step_s"])
    assert 780_000 < w["params"] < 800_000                 # TRL's benchmark shape, our GPT


def test_the_gpu_check_runs_on_a_cpu_at_toy_sizes(quick_bench, tmp_path):
    """python -m lab.gpu_check --quick on the bench figures above (--bench), Triton under its
    interpreter: the three attention paths agree on outputs and gradients, each is timed, and
    the smoke preset's time is estimated stage by stage from the measured throughputs."""
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, "-m", "lab.gpu_check", "--quick", "--bench",
                           str(quick_bench[0]), "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TRITON_INTERPRET": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.load(open(out))
    paths = res["attention"]
    expected = {"explicit", "sdpa"} | ({"triton"} if importlib.util.find_spec("triton") else set())
    for name in expected:
        assert paths[name]["seconds"] > 0 and paths[name]["max_abs_diff"] < 1e-5, (name, paths)
    est = res["estimate"]
    assert est["total_s"] == pytest.approx(est["pretrain_s"] + est["grpo_s"] + est["eval_s"])
    assert res["work"]["preset"] == "smoke" and res["work"]["pretrain_tokens"] > 0
