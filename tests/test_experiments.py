"""lab/experiments.py: the plan of runs and its caches, the statistics by hand, and one quick run of
two arms of `overopt` end to end, best-of-n and the fits included (then again: nothing is run
twice)."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

import config
from lab import experiments, label_cost, rm_quality, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exp_out(tmp_path_factory):
    """One out/exp for the module's quick runs: they share its pretraining and preference-model
    caches (the smoke preset's, seed 1337), as experiments do."""
    return tmp_path_factory.mktemp("exp")


def test_the_plan_shares_pretraining_and_preference_models():
    """6 arms x 2 seeds: one pretraining per seed, one preference model per scope and seed
    (pref_response reads the whole response), 12 arm runs, each copying both."""
    cfg = experiments.ExperimentConfig(seeds=2, quick=True, out="o")
    pre, rms, arms = experiments.plan("reward", cfg)
    assert len(pre) == 2 and len(rms) == 4 and len(arms) == 12
    assert {seed for _, seed, _ in arms} == {1337, 1338}
    by_arm = {(a, s): r for a, s, r in arms}
    inputs = lambda r: dict(r.inputs)                                       # noqa: E731
    assert inputs(by_arm["verifier", 1337])["reward.pt"] == \
        inputs(by_arm["pref_answer", 1337])["reward.pt"]                    # the same scope
    assert inputs(by_arm["pref_answer", 1337])["reward.pt"] != \
        inputs(by_arm["pref_response", 1337])["reward.pt"]
    assert inputs(by_arm["pref_response", 1337])["pretrain.pt"] == \
        inputs(by_arm["verifier", 1337])["pretrain.pt"] != inputs(by_arm["verifier", 1338])[
            "pretrain.pt"]
    flags = dict(by_arm["pref_response", 1338].flags)
    assert (flags["w_correct"], flags["w_pref"], flags["pref_scope"], flags["seed"],
            flags["stages"]) == ("0.0", "1.0", "response", "1338", "grpo,eval")
    with pytest.raises(config.ConfigError, match="no arm 'nope'"):
        experiments.plan("reward", experiments.ExperimentConfig(arms="verifier,nope"))


def test_every_experiment_plans_and_the_loss_arms_are_the_papers():
    """Every experiment's configs pass their checks; the loss arms set DeepSeekMath's, Dr.
    GRPO's and DAPO's advantage and aggregation; the experiments share one pretraining, but for
    the harder experiment's corpus with longer problems."""
    cfg = experiments.ExperimentConfig(seeds=1, out="o")
    plans = {name: experiments.plan(name, cfg) for name in experiments.EXPERIMENTS}
    flags = {arm: dict(run.flags) for arm, _, run in plans["loss"][2]}
    assert {a: (f["advantage"], f["loss_agg"], f["w_pref"]) for a, f in flags.items()} == {
        "grpo": ("grpo", "seq", "0.0"), "drgrpo": ("drgrpo", "constant", "0.0"),
        "dapo": ("grpo", "token", "0.0")}
    sizes = (flags["grpo"][k] for k in ("prompts_per_step", "rl_lr", "rl_steps", "oversample"))
    assert tuple(sizes) == ("8", "0.00015", "100", "2.0")
    assert {dict(run.flags)["rl_lr"] for _, _, run in plans["overopt"][2]} == {"0.0003"}
    shared = {pre.out for name, p in plans.items() for pre in p[0]
              if name not in ("harder", "scope", "seeds", "routing")}
    assert len(shared) == 1                           # one pretraining for reward, loss, overopt
    edge = {dict(run.inputs)["pretrain.pt"] for arm, _, run in plans["harder"][2]}
    assert len(edge) == 2 and shared < edge           # the edge corpus pretrains on its own
    scope = {arm: dict(run.flags) for arm, _, run in plans["scope"][2]}
    assert {a: (f["pref_scope"], f["pref_tokens"], f["w_pref"]) for a, f in scope.items()} == {
        "answer": ("answer", "all", "1.0"), "response": ("response", "all", "1.0"),
        "targeted": ("answer", "answer", "1.0"), "verifier": ("answer", "all", "0.0")}
    assert {pre.out for pre in plans["scope"][0]}.isdisjoint(shared)  # the phrase's own corpus
    betas = {arm: dict(run.flags)["kl_beta"] for arm, _, run in plans["overopt"][2]}
    assert betas == {"beta_0": "0.0", "beta_0.01": "0.01", "beta_0.1": "0.1"}
    noise = {arm: dict(run.flags) for arm, _, run in plans["noise"][2]}
    verifier = lambda p, kind="fresh": (p, kind, "1.0", "0.0")  # noqa: E731
    assert {a: (f["flip"], f["flip_kind"], f["w_correct"], f["w_pref"]) for a, f in noise.items()
            } == {"verifier": verifier("0.0"), "flip_0.2": verifier("0.2"),
                  "flip_0.3": verifier("0.3"), "flip_0.4": verifier("0.4"),
                  "coin": verifier("0.5"), "persistent_0.3": verifier("0.3", "persistent"),
                  "pref_best": ("0.0", "fresh", "0.0", "1.0")}
    assert {f["heldout_every"] for f in noise.values()} == {"10"}
    rms = {arm: dict(run.inputs)["reward.pt"] for arm, _, run in plans["noise"][2]}
    assert len({rms[a] for a in rms if a != "pref_best"}) == 1 and rms["pref_best"] != rms["coin"]
    assert (noise["pref_best"]["rater_check"], noise["pref_best"]["rm_pairs"]) == ("1.0", "8000")
    routing = {arm: dict(run.flags) for arm, _, run in plans["routing"][2]}
    assert {a: (f["route"], f["w_correct"], f["w_pref"], f["harm_model"])
            for a, f in routing.items()} == {
        "r1": ("routed", "1.0", "1.0", "learned"), "blend": ("blend", "1.0", "1.0", "learned"),
        "verifier": ("blend", "1.0", "0.0", "learned"),
        "models_alone": ("blend", "0.0", "1.0", "learned")}
    assert {pre.out for pre in plans["routing"][0]}.isdisjoint(shared)  # notes in its corpus


def test_the_seeds_experiment_is_python_train_py_on_new_seeds_and_corpora():
    """seeds: the cpu preset as python train.py has it (no SIZES), seeds 1, 2, ... for the
    model and the corpus alike, one pretraining per seed shared by every arm; --first_seed
    moves them."""
    pre, _, arms = experiments.plan("seeds", experiments.ExperimentConfig(seeds=2, out="o"))
    flags = {(arm, seed): dict(run.flags) for arm, seed, run in arms}
    default = flags["oversample_2", 2]
    assert (default["seed"], default["task_seed"]) == ("2", "2")
    assert (default["prompts_per_step"], default["rl_lr"], default["n_eval"],
            default["oversample"]) == ("16", "0.0003", "200", "2.0")   # python train.py's own
    assert flags["oversample_1", 1]["oversample"] == "1.0"
    now = flags["pretrain_1600", 2]                      # the default's pretraining, 200 steps
    assert (now["pretrain_steps"], now["n_eval"], now["rl_steps"]) == ("1600", "500", "200")
    assert flags["steps_100", 2]["rl_steps"] == "100"      # the default: python train.py's own
    assert {k: v for k, v in flags["steps_100", 2].items() if k != "rl_steps"} == {
        k: v for k, v in now.items() if k != "rl_steps"}  # and nothing else of it differs
    assert (default["pretrain_steps"], default["n_eval"]) == ("800", "200")   # EARLIER's
    assert len(pre) == 4                                 # two pretrainings a seed: 800 and 1,600


def test_a_default_that_moved_leaves_the_caches_made_before_it_moved_where_they_were():
    """A cache key lists the fields away from their defaults; pretrain_steps and n_eval moved
    (800 -> 1600, 200 -> 500), so a pretraining at the old values must keep the key it was made
    under, the one its fields at the old defaults gave (none listed), and the new default must
    get a key of its own."""
    from data.problems import TaskConfig
    from model import GPTConfig
    from pretrain import PretrainConfig
    old = [TaskConfig(n_eval=200), GPTConfig(), PretrainConfig(pretrain_steps=800)]
    assert experiments.changed(old) == {"TaskConfig": {}, "GPTConfig": {}, "PretrainConfig": {}}
    sizes = experiments.changed([TaskConfig(n_eval=100), PretrainConfig(pretrain_steps=800)])
    assert sizes == {"TaskConfig": {"n_eval": 100}, "PretrainConfig": {}}
    new = experiments.changed([TaskConfig(), PretrainConfig()])
    assert new == {"TaskConfig": {"n_eval": 500}, "PretrainConfig": {"pretrain_steps": 1600}}
    later = experiments.plan("seeds", experiments.ExperimentConfig(seeds=1, first_seed=7,
                                                                   out="o"))[2]
    assert {(seed, dict(run.flags)["task_seed"]) for _, seed, run in later} == {(7, "7")}


def test_smoothing_keeps_every_point_in_place():
    """A centred window that shrinks at the ends: window 2 over 0, 10, 20, 30 averages each
    point with the one before (the first alone), so a straight line stays where it was but
    for half a step, and nothing is cut from either end."""
    assert summary.smooth([0, 10, 20, 30], 2).tolist() == [0, 5, 15, 25]
    assert summary.smooth([1.0, float("nan"), 3.0], 3).tolist() == [1.0, 2.0, 3.0]
    assert len(summary.smooth(list(range(100)), 10)) == 100


def test_mean_and_std_by_hand():
    assert summary.mean_std([1.0, 2.0, 3.0]) == "2.000 ± 1.000"      # sample std, n - 1
    assert summary.mean_std([0.25]) == "0.250"


def test_a_quick_experiment_runs_and_continues_without_running_again(exp_out):
    out = exp_out
    cmd = [sys.executable, "-m", "lab.experiments", "overopt", "--quick", "--arms",
           "beta_0,beta_0.1", "--jobs", "2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.load(open(out / "overopt" / "results.json"))
    assert set(results["arms"]) == {"beta_0", "beta_0.1"}
    run = results["arms"]["beta_0.1"]["1337"]
    assert len(run["curves"]["gold"]) == 3 and "accuracy_correctness" in run["reward_model"]
    bon = results["bon"]["1337"]                      # --quick: n = 1, 2, 4, 8 on 4 prompts
    assert [r["n"] for r in bon] == [1, 2, 4, 8] and bon[0]["kl"] == 0.0
    table = (out / "overopt" / "results.md").read_text()
    assert "| beta_0 |" in table and "| beta_0.1 |" in table
    assert "| best-of-n: d (α - β d) |" in table and "| GRPO beta_0.1: d (α - β log d) |" in table
    logs = sorted(out.glob("overopt/**/train.log")) + sorted(out.glob("cache/**/train.log"))
    assert len(logs) == 4                             # 1 pretraining, 1 preference model, 2 arms
    before = [p.stat().st_mtime_ns for p in logs + [out / "overopt/bon/seed1337/bon.json"]]
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    after = [p.stat().st_mtime_ns for p in logs + [out / "overopt/bon/seed1337/bon.json"]]
    assert after == before                            # finished runs are not run again


def test_a_quick_harder_experiment_reports_pass_and_maj_at_k(exp_out):
    """One arm of the harder experiment on toy sizes (the corpus knob of its other arm is
    tests/test_data.py's): pass@k and maj@k of both models on both held-out sets reach
    results.md."""
    proc = subprocess.run([sys.executable, "-m", "lab.experiments", "harder", "--quick", "--arms",
                           "default", "--out", str(exp_out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    curves = json.load(open(exp_out / "harder" / "results.json"))["passk"]["default"]["1337"]
    assert set(curves) == {"pretrain", "rl"} and set(curves["rl"]) == {"in_dist", "harder"}
    assert set(curves["rl"]["harder"]) == {"pass@1", "maj@1", "pass@4", "maj@4"}
    assert all(0 <= v <= 1 for v in curves["pretrain"]["in_dist"].values())
    assert "| default | rl | harder |" in (exp_out / "harder" / "results.md").read_text()
    run = json.load(open(exp_out / "harder" / "results.json"))["arms"]["default"]["1337"]
    assert {"pass@1", "greedy_accuracy"} <= run["final_harder"].keys() & run["pretrained_harder"]
    if importlib.util.find_spec("matplotlib"):
        assert (exp_out / "harder" / "passk.png").stat().st_size > 0


def test_a_quick_scope_experiment_targets_and_counts_the_phrase(exp_out):
    """The targeted arm of scope on toy sizes (its corpus, with the teacher's phrase, pretrains
    on its own): the phrase rates inside <think> and <answer> reach the per-step
    curves and results.md."""
    proc = subprocess.run([sys.executable, "-m", "lab.experiments", "scope", "--quick", "--arms",
                           "targeted", "--out", str(exp_out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.load(open(exp_out / "scope" / "results.json"))["arms"]["targeted"]["1337"]
    assert len(run["curves"]["phrase_think"]) == 3 and 0 <= run["final"]["phrase_answer"] <= 1
    config_of = json.load(open(exp_out / "scope" / "targeted" / "seed1337" / "config.json"))
    assert config_of["RewardConfig"]["pref_tokens"] == "answer"
    assert "| targeted |" in (exp_out / "scope" / "results.md").read_text()


@pytest.mark.parametrize("name, arms", [("reward", "verifier"), ("loss", "dapo")])
def test_a_quick_reward_and_loss_experiment_write_their_tables(exp_out, name, arms):
    """The smoke test of the two other experiments, on the module's shared caches: each arm's
    row and the pretrained row reach results.md, with the experiment's own columns."""
    proc = subprocess.run([sys.executable, "-m", "lab.experiments", name, "--quick", "--arms", arms,
                           "--out", str(exp_out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (exp_out / name / "results.md").read_text()
    assert all(f"| {arm} |" in table for arm in arms.split(",")) and "| pretrained |" in table
    column = {"reward": "harm_rate", "loss": "think_words"}[name]
    assert column in table.splitlines()[4]                      # the header row


def test_a_run_made_with_other_settings_stops_the_command_before_anything_runs(tmp_path):
    """A finished arm whose config.json records another learning rate than the plan's: the
    runner names the run and the setting, and touches nothing."""
    cfg = experiments.ExperimentConfig(seeds=1, quick=True, out=str(tmp_path))
    arm, _, run = experiments.plan("loss", cfg)[2][0]
    os.makedirs(run.out)
    flags = dict(run.flags)
    recorded = {"GRPOConfig": {"rl_lr": 0.1, "prompts_per_step": int(flags["prompts_per_step"])}}
    open(os.path.join(run.out, "config.json"), "w").write(json.dumps(recorded))
    open(os.path.join(run.out, "progress.json"), "w").write(
        json.dumps({"stages": ["grpo", "eval"], "done": ["grpo", "eval"]}))
    assert experiments.differs(run) == f"--rl_lr 0.1, planned {flags['rl_lr']}"
    proc = subprocess.run([sys.executable, "-m", "lab.experiments", "loss", "--quick", "--arms", arm,
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and "was run with --rl_lr 0.1" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["loss"]               # no cache, no other run


def test_the_per_seed_table_by_hand(tmp_path):
    """One seed: pass@1 0.45 -> 0.75, a gain of +30.0; training accuracy 0.5 over steps 0-9,
    0.4 over 10-19 (the lowest window), 0.7 after: a fall of 5 points below the pretrained
    pass@1; the ceiling from its pretraining's report."""
    from lab import lift
    (tmp_path / "report.json").write_text(json.dumps({"imitation_ceiling": {"greedy": 0.585}}))
    acc = [0.5] * 10 + [0.4] * 10 + [0.7] * 80
    run = {"curves": {"accuracy": acc, "kl_k1_seq": [0.0] * 10 + [2.0] * 90},
           "pretrain": str(tmp_path), "pretrained": {"greedy_accuracy": 0.57, "pass@1": 0.45},
           "final": {"greedy_accuracy": 0.88, "pass@1": 0.75}}
    row = lift.seed_row(run)
    assert row["fall"] == pytest.approx(0.05) and row["kl_10_19"] == 2.0
    page = lift.markdown({"default": {"4242": run}})
    assert "| 4242 | 0.585 | 0.570 → 0.880 | 0.450 → 0.750 | +30.0 | 0.400 | +5.0 | 2.00 |" in page
    # a second seed that starts 10 points higher and ends at the same 0.75: the gains' spread
    # is the starts' (sample std of 30 and 20: 7.07), the ends' is 0
    other = {**run, "pretrained": {"greedy_accuracy": 0.6, "pass@1": 0.55}}
    page = lift.markdown({"default": {"4242": run, "7": other}})
    assert ("gain in pass@1: +25.0 ± 7.1 points (mean ± sample std), the smallest +20.0; "
            "pass@1 before 50.0 ± 7.1, after 75.0 ± 0.0") in page


def test_quick_noise_rm_quality_and_online_runs_report_what_they_measure(exp_out):
    """noise: a fresh and a persistent flip and the best preference model, on toy sizes; the
    held-out watch is in every run's curves (its first point and the one after the last step).
    rm_quality: two labellers, best-of-n against each one's own preference model on one pool of
    samples, and its table with the exploit probe. online: the labels each arm spent."""
    for name, arms in (("noise", "flip_0.3,persistent_0.3,pref_best"),
                       ("rm_quality", "coin_0.5,checked_1"), ("online", "verifier,online_half")):
        proc = subprocess.run([sys.executable, "-m", "lab.experiments", name, "--quick", "--arms",
                               arms, "--jobs", "2", "--out", str(exp_out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    noise = json.load(open(exp_out / "noise" / "results.json"))["arms"]
    curves = noise["persistent_0.3"]["1337"]["curves"]
    assert len(curves["reward_agreement"]) == 3 and len(curves["heldout/accuracy"]) == 4
    assert curves["heldout/accuracy"][1] is None and curves["heldout/accuracy"][3] is not None
    assert "style_lift" in noise["pref_best"]["1337"]["reward_model"]
    results = json.load(open(exp_out / "rm_quality" / "results.json"))
    assert set(results["bon"]) == {"coin_0.5", "checked_1"}
    assert [r["n"] for r in results["bon"]["checked_1"]["1337"]] == [1, 2, 4, 8]
    assert len(list(exp_out.glob("cache/pretrain-*/bon-pool-8x4.json"))) == 1  # one pool
    table = (exp_out / "rm_quality" / "results.md").read_text()
    assert "| coin_0.5 | coin | 0.5 |" in table and "dressed wrong beats right" in table
    online = json.load(open(exp_out / "online" / "results.json"))["arms"]
    assert online["verifier"]["1337"]["curves"]["labels"] == [0, 0, 0]
    assert online["online_half"]["1337"]["curves"]["labels"][0] > 0    # the offline pairs
    assert "## what the labels bought" in (exp_out / "online" / "results.md").read_text()


def test_rm_quality_gains_by_hand():
    """Best-of-n: gold 3 at n = 1, 3.5 after; GRPO's held-out watch 3, -, 4, 3.5: peak +1, final
    +0.5. Without the watch GRPO's gains are NaN."""
    g = rm_quality.gains({"curves": {"heldout/gold": [3.0, None, 4.0, 3.5]}},
                         [{"gold": 3.0}, {"gold": 3.5}])
    assert g == {"bon_peak": 0.5, "bon_last": 0.5, "rl_peak": 1.0, "rl_final": 0.5}
    assert math.isnan(rm_quality.gains({"curves": {}}, [{"gold": 1.0}])["rl_peak"])


def test_label_cost_points_by_hand():
    """The watch at steps 0 and after the last (2 steps): labels 10 then 12 at the last step."""
    x, y = label_cost.points({"curves": {"labels": [10, 12], "heldout/accuracy": [0.5, None, 0.7]}})
    assert x.tolist() == [10, 12] and y.tolist() == [0.5, 0.7]


def test_a_quick_routing_run_measures_both_kinds_of_prompt_and_the_harm_model(exp_out):
    """routing: R1's arrangement and the models alone on toy sizes; the table has the held-out
    requests' columns, the curves the held-out watch on both sets and the harm hack's rate, and
    the reward stage trained the harmlessness model (harm.pt, copied into each arm)."""
    proc = subprocess.run([sys.executable, "-m", "lab.experiments", "routing", "--quick",
                           "--arms", "r1,models_alone", "--out", str(exp_out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.load(open(exp_out / "routing" / "results.json"))["arms"]
    run = results["r1"]["1337"]
    assert {"general/gold_utility", "harm_learned", "note_style"} <= set(run["final"])
    assert {"heldout_general/gold", "harm_gold", "harm_missed"} <= set(run["curves"])
    assert 0 <= run["harm_model"]["harm_accuracy"] <= 1                 # harm.json's figures
    assert (exp_out / "routing" / "models_alone" / "seed1337" / "harm.pt").exists()
    assert "general/gold_utility" in (exp_out / "routing" / "results.md").read_text()
