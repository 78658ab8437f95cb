"""
Experiments: one command each, several seeds, every arm a train.py run of its own.

    python -m lab.experiments reward                   # every arm x 3 seeds on the cpu preset
    python -m lab.experiments reward --quick           # seconds: the smoke preset, one seed
    python -m lab.experiments reward --seeds 5 --jobs 2 --out out/exp

What this is: a runner. An experiment is a base (train.py overrides its arms share) and arms
(what each one changes). Its work is three kinds of train.py process:
  pretrain   once per seed: corpus, tokenizer, pretrain.pt        out/exp/cache/pretrain-<key>
  reward     once per preference model and seed, from that model  out/exp/cache/reward-<key>
  arm        GRPO + eval per arm and seed, from copies of both     out/exp/NAME/<arm>/seed<s>
A cache key is a hash of what makes the thing (the fields of its configs that differ from their
defaults, and the seed), so every experiment that needs the same pretraining or the same
preference model reuses it, and a knob added later at its default keeps every cache. A finished
run is never run again and an interrupted one resumes (`train.py --resume`): re-running the
command after a kill continues where it stopped. A run directory made with other settings (an
edited arm, new SIZES) stops the command before anything runs, rather than being reused or
overwritten.
`--jobs` processes run at once, each with cores // jobs torch threads, and each run starts as
soon as the runs it copies from have finished; each keeps its own log (train.log).

It writes out/exp/NAME/results.json (every arm x seed: the final figures and the per-step GRPO
curves), results.md (mean ± std over seeds, one row per arm) and, with matplotlib installed
(`pip install -e ".[plot]"`), curves.png; without it, the tables and one line saying so
(summary.py).

What this deliberately is not: a sweep framework or a scheduler across machines. The arms are
listed by hand in lab/questions.py, top to bottom, so that each experiment reads as its own
question.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from tqdm import tqdm

import config
import train
from checkpoint import write_json, write_text
from lab import label_cost, lift, overopt, passk, rm_quality, summary
from lab.questions import (BON_PROMPTS, EARLIER, EXPERIMENTS, PASSK_PROMPTS, QUICK, QUICK_BON,
                           QUICK_PASSK, SIZES)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository


@dataclass
class ExperimentConfig:
    """The runner: how many seeds, how many processes at once, where."""
    seeds: int = 3              # how many seeds (each its own pretraining)
    first_seed: int = 0         # the first seed; 0 = the experiment's own (1337 for most)
    jobs: int = 0               # processes at once; 0 = 2 with >= 2 cores, else 1
    quick: bool = False         # seconds: the smoke preset, 3 GRPO steps (a smoke test)
    arms: str = ""              # comma-separated arms to run; empty = every arm
    out: str = "out/exp"        # the cache and every experiment's runs and results

    def __post_init__(self):
        if self.seeds < 1 or self.jobs < 0:
            raise ValueError("--seeds must be >= 1 and --jobs >= 0")

# ------------------------------------------------------------------------------------------------
# runs: what each one is, and running it once


@dataclass(frozen=True)
class Run:
    """One train.py process: its run directory, its flags, and the run directories it copies
    its inputs from (name -> source directory)."""
    out: str
    flags: tuple[tuple[str, str], ...]
    inputs: tuple[tuple[str, str], ...] = ()


def key(*parts) -> str:
    """A short stable hash of JSON-able parts: the cache key."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def changed(configs: list) -> dict:
    """as_dict's {'TaskConfig': {...}, ...} with only the fields that differ from their
    dataclass defaults, or from EARLIER's for a default that moved after caches were keyed on it
    (a model made at the old default keeps its key): a knob added later with a default that
    keeps the old behaviour leaves every cache key, and so every cached pretraining and
    preference model, as it was."""
    return {type(c).__name__: {f.name: getattr(c, f.name) for f in dataclasses.fields(c)
                               if getattr(c, f.name) != EARLIER.get(f.name, f.default)}
            for c in configs}


def flags_of(configs: list, **extra) -> tuple[tuple[str, str], ...]:
    """Every field of `configs` as an explicit flag, then `extra`: a run's config.json depends
    on nothing else (the configs left out keep their preset's values). --out and --device are
    the runner's."""
    pairs = {f.name: getattr(c, f.name) for c in configs for f in dataclasses.fields(c)}
    pairs.update(extra)
    pairs.pop("out", None)
    pairs.pop("device", None)
    return tuple((k, str(v)) for k, v in sorted(pairs.items()))


def arm_configs(name: str, arm: str, quick: bool, seed: int | None = None) -> list:
    """The train.py configs of one arm: the cpu preset at SIZES (unless the experiment runs
    without them), the experiment's base, then the arm's own overrides; with --quick the smoke
    preset and QUICK on top of them. With corpus_seeds the corpus's task_seed is `seed`."""
    exp = EXPERIMENTS[name]
    overrides = {**({} if quick or not exp.at_sizes else SIZES), **exp.base, **exp.arms[arm],
                 **(QUICK if quick else {}),
                 **(dict(task_seed=seed) if exp.corpus_seeds and seed is not None else {})}
    return train.preset_configs(overrides.get("preset", "cpu"), overrides)


def plan(name: str, cfg: ExperimentConfig) -> tuple[list[Run], list[Run], list[tuple]]:
    """The pretraining runs, the preference-model runs and the (arm, seed, Run) of `name`."""
    arms = EXPERIMENTS[name].arms
    chosen = cfg.arms.split(",") if cfg.arms else list(arms)
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        raise config.ConfigError(f"{name} has no arm {unknown[0]!r} (arms: {', '.join(arms)})")
    arms = {a: arms[a] for a in chosen}
    pre, rms, arm_runs = {}, {}, []
    first = cfg.first_seed or EXPERIMENTS[name].first_seed
    for arm in arms:
        for seed in range(first, first + cfg.seeds):
            run, task, gpt, pcfg, rcfg, prefcfg, gcfg = arm_configs(name, arm, cfg.quick, seed)
            made = [task, gpt, pcfg]                         # what makes the pretrained model
            k_pre = key(changed(made), run.preset, seed)
            d_pre = os.path.join(cfg.out, "cache", f"pretrain-{k_pre}")
            pre[d_pre] = Run(d_pre, flags_of(made, preset=run.preset, seed=seed,
                                             stages="pretrain"))
            policy = tuple((f, d_pre) for f in ("pretrain.pt", "pretrain.json",
                                                "tokenizer.tiktoken"))
            k_rm = key(k_pre, changed([prefcfg]), rcfg.pref_scope)
            d_rm = os.path.join(cfg.out, "cache", f"reward-{k_rm}")
            rms[d_rm] = Run(d_rm, flags_of(made + [prefcfg], preset=run.preset, seed=seed,
                                           stages="reward", pref_scope=rcfg.pref_scope), policy)
            d_arm = os.path.join(cfg.out, name, arm, f"seed{seed}")
            arm_runs.append((arm, seed, Run(d_arm, flags_of(
                [run, task, gpt, pcfg, rcfg, prefcfg, gcfg], seed=seed, stages="grpo,eval"),
                policy + (("reward.pt", d_rm), ("reward.json", d_rm))
                + ((("harm.pt", d_rm), ("harm.json", d_rm))         # harmlessness.py
                   if prefcfg.harm_model == "learned" else ()))))
    return list(pre.values()), list(rms.values()), arm_runs


def state(out: str) -> str:
    """'done' (every stage asked for finished), 'interrupted' (started, not finished) or 'new'."""
    path = os.path.join(out, "progress.json")
    if not os.path.exists(path):
        return "new"
    progress = train.read_progress(path)
    return "done" if set(progress["stages"]) <= set(progress["done"]) else "interrupted"


def differs(run: Run) -> str | None:
    """How a started run's recorded config (its config.json) differs from the one planned now,
    e.g. "--rl_lr 0.0003, planned 0.00015"; None when it agrees or has not started. A field the
    run did not record (one added later, at its default) is not a difference."""
    path = os.path.join(run.out, "config.json")
    if state(run.out) == "new" or not os.path.exists(path):
        return None
    recorded = {k: str(v) for fields in json.load(open(path)).values() for k, v in fields.items()}
    for k, v in run.flags:
        if k in recorded and recorded[k] != v:
            return f"--{k} {recorded[k]}, planned {v}"
    return None


def execute(run: Run, threads: int, root: str = ROOT) -> None:
    """Run it once: skipped when done, resumed when interrupted, else started from copies of its
    inputs; root/train.py (a copy of the repository: course/lab.py's student trees). Raises
    RuntimeError naming the run and its log when train.py fails."""
    status = state(run.out)
    if status == "done":
        return
    os.makedirs(run.out, exist_ok=True)
    if status == "new":
        for name, src in run.inputs:
            shutil.copy2(os.path.join(src, name), os.path.join(run.out, name))
        args = [a for k, v in run.flags for a in (f"--{k}", v)] + ["--out", run.out]
    else:
        args = ["--resume", run.out]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(os.path.join(run.out, "train.log"), "a") as log:
        proc = subprocess.run([sys.executable, os.path.join(root, "train.py"), *args], cwd=root,
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{run.out}: train.py exited {proc.returncode}; see "
                           f"{os.path.join(run.out, 'train.log')}")

def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + "\nexperiments: " + ", ".join(EXPERIMENTS) + "\n"
              + config.help_text([ExperimentConfig()]))
        return
    name, pairs = argv[0], config.parse_pairs(config.bare_flags(argv[1:], "--quick"))
    if name not in EXPERIMENTS:
        raise config.ConfigError(f"unknown experiment {name!r} (experiments: "
                                 f"{', '.join(EXPERIMENTS)})")
    (cfg,) = config.apply([ExperimentConfig()], pairs)
    if cfg.quick and "seeds" not in pairs:
        cfg = dataclasses.replace(cfg, seeds=1)
    cores = os.cpu_count() or 1
    jobs = cfg.jobs or (2 if cores >= 2 else 1)
    threads = max(1, cores // jobs)
    pre, rms, arm_runs = plan(name, cfg)             # every config is checked here, up front
    runs = pre + rms + [run for _, _, run in arm_runs]  # each after every run it copies from
    for run, reason in ((r, differs(r)) for r in runs):  # a run made otherwise is kept
        if reason:
            raise config.ConfigError(f"{run.out} was run with {reason}: move it away or "
                                     f"choose another --out")
    bar = tqdm(total=len(runs), desc=f"{name} runs", dynamic_ncols=True)
    pending, running, made = list(runs), {}, set()   # made: run directories finished
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:                    # start the first runs whose inputs exist
            ready = [r for r in pending if all(src in made for _, src in r.inputs)]
            if not ready and not running:
                raise RuntimeError(f"{pending[0].out}: its inputs are made by no planned run")
            for run in ready[:jobs - len(running)]:
                pending.remove(run)
                running[pool.submit(execute, run, threads)] = run
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()                      # a failure stops here; the rest waits
                made.add(running.pop(future).out)
                bar.update()
                bar.refresh()                        # at once: runs made before end in ms
    bar.close()
    results, exp, bon = summary.collect(arm_runs), EXPERIMENTS[name], {}
    folder = os.path.join(cfg.out, name)
    if exp.bon:                                      # in this process, once per seed (or arm)
        n_max, n_prompts = QUICK_BON if cfg.quick else (exp.bon, BON_PROMPTS)
        for arm, seed, run in arm_runs:              # each arm's preference model, or the seed's
            mine = bon.setdefault(arm, {}) if exp.bon_each_arm else bon
            if str(seed) not in mine:
                inputs = dict(run.inputs)
                pool = os.path.join(inputs["pretrain.pt"], f"bon-pool-{n_max}x{n_prompts}.json")
                mine[str(seed)] = overopt.best_of_n_run(
                    os.path.join(folder, "bon", *([arm] if exp.bon_each_arm else []),
                                 f"seed{seed}"), inputs["pretrain.pt"],
                    inputs["reward.pt"], arm_configs(name, arm, cfg.quick, seed), n_max,
                    n_prompts, seed, pool)
    sampled = {}
    if exp.passk:                                    # in this process, each arm and seed
        n, n_prompts = QUICK_PASSK if cfg.quick else (exp.passk, PASSK_PROMPTS)
        for arm, seed, run in arm_runs:
            sampled.setdefault(arm, {})[str(seed)] = passk.passk_run(
                run.out, arm_configs(name, arm, cfg.quick, seed), n, n_prompts, seed)
    write_json(os.path.join(folder, "results.json"), {"experiment": name, "seeds": cfg.seeds,
                                                      "quick": cfg.quick, "arms": results,
                                                      **({"bon": bon} if bon else {}),
                                                      **({"passk": sampled} if sampled else {})})
    table = summary.markdown(f"{name}: {exp.question}", exp.columns, exp.curves, results,
                            cfg.seeds)
    if bon:
        table += "\n" + (rm_quality.markdown(results, bon, exp) if exp.bon_each_arm
                         else overopt.markdown(bon, results, summary.mean_std))
    if sampled:
        table += "\n" + passk.markdown(sampled, summary.mean_std)
    if exp.corpus_seeds:
        table += "\n" + lift.markdown(results)
    if exp.label_cost:
        table += "\n" + label_cost.markdown(results)
    write_text(os.path.join(folder, "results.md"), table)
    print(table)
    if summary.plot(results, exp.curves, os.path.join(folder, "curves.png")):
        print(f"plots: {os.path.join(folder, 'curves.png')}")
        if bon and exp.bon_each_arm and rm_quality.plot(results, bon, exp,
                                                        os.path.join(folder, "rm_quality.png")):
            print(f"       {os.path.join(folder, 'rm_quality.png')}")
        elif bon and overopt.plot(bon, results, os.path.join(folder, "overopt.png")):
            print(f"       {os.path.join(folder, 'overopt.png')}")
        if exp.label_cost and label_cost.plot(results, os.path.join(folder, "label_cost.png")):
            print(f"       {os.path.join(folder, 'label_cost.png')}")
        if sampled and passk.plot(sampled, os.path.join(folder, "passk.png")):
            print(f"       {os.path.join(folder, 'passk.png')}")
    else:
        print('no plots: matplotlib is not installed (pip install -e ".[plot]")')


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, RuntimeError) as e:
        sys.exit(f"error: {e}")
