"""
The whole pipeline in one run directory: corpus + tokenizer, pretraining, the preference model,
GRPO, evaluation, report.

    python train.py                        # cpu preset without a GPU (minutes), gpu preset with one
    python train.py --preset smoke         # seconds: the pipeline end to end on a toy model
    python train.py --stages eval          # re-run a stage on an existing run directory
    python train.py --n_layer 6 --lr 1e-3  # any config field; `python train.py --help` lists them
    python train.py --resume out/cpu       # continue a run that was killed, where it stopped
    torchrun --nproc_per_node=2 train.py   # data-parallel pretraining and GRPO (dist.py)

Stages (run in this order, `--stages` picks a subset):
  pretrain  generate the fallible teacher's corpus (data/problems.py), train the BPE tokenizer
            (data/tokenizer.py), then next-token pretraining of the GPT in model.py
            (pretrain.py);
  reward    pairs of completions labelled by a simulated human (data/rater.py), then a small
            Bradley-Terry preference model on the answer span (or the whole response, with
            --pref_scope response) (preference.py, bradley_terry.py), saved as
            out/<run>/reward.pt;
  grpo      GRPO on the blended reward (grpo.py, reward.py), starting from the pretrained model;
            the RL policy is saved as out/<run>/rl.pt, one log line per step in grpo_log.jsonl;
  eval      held-out greedy accuracy, pass@1, pass@k and format rate (evaluate.py), in
            distribution and on harder problems, next to the teacher's imitation ceiling, plus
            the human's true utility (gold_utility), its style score (gold_score) and the
            preference model's pref_score of the sampled answers.
Each stage merges its figures into out/<run>/report.json.

Reliability: every stage saves <stage>.state.pt every N steps (checkpoint.py) and
progress.json records which stages finished, so `--resume out/<run>` continues after a crash or
a SIGKILL and, on CPU, ends with the report an uninterrupted run writes. Non-finite updates are
skipped and counted (guard.py). Bad input (config, checkpoints, tokenizer, run directory) stops
the run with one line before anything is written.

What this is deliberately not: a framework. The loop is flat, top to bottom, no callbacks.
"""

import dataclasses
import json
import os
import sys
from dataclasses import dataclass

import torch

import config
import dist
import preflight
from bradley_terry import PreferenceConfig, train_reward_model
from checkpoint import clear_state, read_json, state_path, update_report, write_json, write_text
from data.problems import Splits, TaskConfig, make_splits
from data.tokenizer import Tokenizer, train_bpe
from device import PRECISIONS, autocast, precision, release_free_memory
from evaluate import evaluate_stage
from harmlessness import train_harm_model
from grpo import GRPOConfig
from grpo_stage import train_grpo
from guard import NonFiniteError
from model import GPTConfig
from pretrain import PretrainConfig, pretrain
from reward import RewardConfig

STAGES = ("pretrain", "reward", "grpo", "eval")


@dataclass
class RunConfig:
    """The run as a whole: which stages, where, on what device, with which seed."""
    preset: str = ""            # cpu | gpu | smoke; empty = gpu when CUDA is available, else cpu
    stages: str = ",".join(STAGES)  # comma-separated subset of pretrain,reward,grpo,eval
    out: str = ""               # run directory; empty = out/<preset>
    device: str = ""            # cpu | cuda | cuda:N; empty = cuda when available
    seed: int = 1337            # model init, batch order and sampling
    eval_k: int = 4             # samples per held-out prompt for pass@1 / pass@k
    eval_batch: int = 32        # held-out prompts per sampling call (x eval_k rows): memory
    max_new_tokens: int = 192   # completion budget at evaluation and in RL
    max_bad_steps: int = 5      # non-finite updates in a row (each skipped) that stop a stage
    precision: str = "auto"     # bf16 (autocast: matmuls in bfloat16, weights and log-probs fp32)
                                # | fp32 | auto: bf16 on a GPU that has it, fp32 on a CPU
    compile: str = "auto"       # torch.compile the pretraining step (its shapes repeat): on | off
                                # | auto: on with CUDA. RL's shapes change every step: eager

    def __post_init__(self):
        if self.preset not in ("", *PRESETS):
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        bad = [s for s in self.stages.split(",") if s not in STAGES]
        if bad:
            raise ValueError(f"--stages: unknown stage {bad[0]!r} (stages: {', '.join(STAGES)})")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if self.compile not in ("auto", "on", "off"):
            raise ValueError(f"--compile must be auto, on or off, got {self.compile!r}")
        if min(self.eval_k, self.eval_batch, self.max_new_tokens, self.max_bad_steps) < 1:
            raise ValueError("--eval_k, --eval_batch, --max_new_tokens and --max_bad_steps "
                             "must be >= 1")


# Each preset is a set of overrides on the defaults above (which are the cpu preset).
PRESETS = {
    "cpu": {},
    "smoke": dict(n_train=400, n_eval=8, vocab_size=320, n_layer=1, n_head=2, n_embd=32,
                  batch_size=8, pretrain_steps=12, warmup_steps=2, eval_every=6, eval_k=2,
                  max_new_tokens=48, rm_pairs=64, rm_eval_pairs=2, rm_steps=4, rm_batch_size=8,
                  rm_n_layer=1, rm_n_head=2, rm_n_embd=32, rl_steps=3, prompts_per_step=4,
                  group_size=4, rl_eval_every=2),
    "gpu": dict(max_value=999, min_steps=2, max_steps=4, harder_steps=6, n_train=200_000,
                n_eval=500, vocab_size=1024, block_size=512, n_layer=8, n_head=8, n_embd=384,
                batch_size=128, pretrain_steps=6000, lr=1.5e-3, warmup_steps=300,
                max_new_tokens=384, eval_every=1000, rm_pairs=20000, rm_steps=1500,
                rm_batch_size=64, prompts_per_step=32, rl_steps=200, rl_lr=1.5e-4),
}


REPORT_COLUMNS = {    # report.md's held-out columns: what each one is
    "greedy_accuracy": "share of problems whose temperature-0 completion has the right answer",
    "pass@1": "mean correctness of the k samples per problem at temperature 1",
    "pass@k": "share of problems with at least one right answer among those k samples",
    "format_rate": "share of samples whose <think>...</think><answer>...</answer> template holds",
    "gold_utility": "the simulated human's true utility u = c [right] + g(answer), mean",
    "gold_score": "the human's style score g of the answer alone (the part a labeller sees "
                  "without checking)",
    "pref_score": "the preference model's sigma(r - r_ref): 0.5 = as good as the teacher's "
                  "average answer",
    "misconception_rate": "share of samples using the teacher's subtraction bug",
    "wrong_unit_rate": "share of answers that name an item the problem is not about",
    "mean_length": "generated tokens per sample",
}


def report_markdown(report: dict, preset: str = "") -> str:
    """report.json as a page a person reads: the held-out table (in distribution first, then
    the harder set), what each column means, the ceilings, the GRPO run's health, the times."""
    cols = list(REPORT_COLUMNS)
    lines = ["# Run report", ""]
    if preset == "smoke":
        lines += ["**Smoke preset: this run checks that every stage runs end to end on a toy "
                  "model. Its figures mean nothing.**", ""]
    lines += ["Held-out problems the model never trained on: `in_dist` has the corpus's 2-3 "
              "steps, `harder` one step more than any problem in it.", "",
              "| model | set | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    evals = report.get("eval", {})
    for split in ("in_dist", "harder", "general"):       # general: requests for a note
        for model, sets in evals.items():
            if split in sets:
                m = sets[split]
                cells = [f"{m[c]:.3f}" if isinstance(m.get(c), float) else "-" for c in cols]
                lines.append(f"| {model} | {split} | " + " | ".join(cells) + " |")
    k = next((s["k"] for sets in evals.values() for s in sets.values() if "k" in s), None)
    lines += ["", f"The columns (k = {k} samples per problem):", ""]
    lines += [f"- `{c}`: {what}" for c, what in REPORT_COLUMNS.items()]
    ceiling = report.get("imitation_ceiling")
    if ceiling:
        lines += ["", f"Imitation ceiling (a perfect copy of the teacher), in distribution: greedy "
                      f"{ceiling['greedy']:.3f}, sampled {ceiling['sampled']:.3f}; harder: greedy "
                      f"{ceiling['harder']['greedy']:.3f}, sampled "
                      f"{ceiling['harder']['sampled']:.3f}."]
    rm = report.get("reward_model")
    if rm:
        lines += ["", f"Preference model ({rm['init']}, {rm['scope']} scope): held-out accuracy "
                      f"{rm['heldout_accuracy']:.3f} against the labels' agreement ceiling "
                      f"{rm['agreement_ceiling']:.3f}; style pairs ordered like the human's true "
                      f"utility {rm['accuracy_style']:.3f} (the labels: "
                      f"{rm['label_agreement_style']:.3f}); right above wrong on right-vs-wrong "
                      f"pairs {rm['accuracy_correctness']:.3f} (the labels: "
                      f"{rm['label_agreement_correctness']:.3f})."]
    g = report.get("grpo")
    if g:
        lines += ["", f"GRPO, {g['steps']} steps: accuracy of every completion drawn "
                      f"{g['train_accuracy_first10']:.3f} over the first 10 steps, "
                      f"{g['train_accuracy_last10']:.3f} over the last 10; held-out greedy "
                      f"accuracy at the end (64 problems) {g['final_quick_greedy_accuracy']:.3f}; "
                      f"steps with nothing to learn (every group all right or all wrong) "
                      f"{g['no_signal_steps']}; updates skipped as non-finite "
                      f"{g['skipped_updates']}. Every step's figures: grpo_log.jsonl "
                      f"(`python -m lab.curves <run>`)."]
    lines += ["", "Time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in report["time_s"].items())]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------

def run_directory_configs(out: str, pairs: dict) -> tuple[list, list[str], dict]:
    """--resume out: the configs and the progress that out/config.json and out/progress.json
    record. Only --device may be given beside --resume: the rest is the run's own."""
    if set(pairs) - {"device"}:
        raise config.ConfigError(f"--resume continues {out} with its own config; only --device "
                                 f"may be given with it, not --{sorted(set(pairs) - {'device'})[0]}")
    for name in ("config.json", "progress.json"):
        if not os.path.exists(os.path.join(out, name)):
            raise FileNotFoundError(f"nothing to resume in {out}: {name} not found")
    described = read_json(os.path.join(out, "config.json"))
    progress = read_progress(os.path.join(out, "progress.json"))
    flat = {k: v for section in described.values() for k, v in section.items()}
    configs = config.apply(default_configs(), {**flat, **pairs, "out": out,
                                               "stages": ",".join(progress["stages"])})
    return configs, progress["stages"], progress


def read_progress(path: str) -> dict:
    """out/progress.json: {"stages": the stages asked for, "done": those finished}."""
    progress = read_json(path)
    if not (isinstance(progress, dict) and {"stages", "done"} <= set(progress)
            and set(progress["stages"]) <= set(STAGES)):
        raise ValueError(f"{path}: not a progress file (needs 'stages' and 'done')")
    return progress


def prepare_corpus(task: TaskConfig, gpt: GPTConfig, out: str, todo: list[str],
                   resume: bool) -> tuple[Splits, Tokenizer, list | None]:
    """The corpus and held-out sets (data/problems.py), the run's tokenizer, and the tokenized
    pretraining documents when the run pretrains (else None). The corpus is only generated for
    the stages that read it (pretrain, grpo); the others get the held-out sets alone. The
    tokenizer is trained here, in memory, when pretraining starts afresh (pretrain() saves it);
    else it is the run's file."""
    if not todo:
        return Splits(), None, None
    if not {"pretrain", "grpo"} & set(todo):                   # held-out sets only, no corpus
        held_out = make_splits(dataclasses.replace(task, n_train=1))
        return (Splits([], held_out.in_dist, held_out.harder, held_out.general),
                Tokenizer.load(os.path.join(out, "tokenizer.tiktoken")), None)
    if os.environ.get("RANK", "0") == "0":
        print(f"corpus | {task.n_train} documents, {task.n_eval} + {task.n_eval} held-out problems")
    splits = make_splits(task)
    tok_path = os.path.join(out, "tokenizer.tiktoken")
    if "pretrain" in todo and not (resume and os.path.exists(state_path(out, "pretrain"))):
        tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train],
                                  gpt.vocab_size))
    else:
        tok = Tokenizer.load(tok_path)
    docs = ([tok.render(p.prompt, s.think, s.answer_text) for p, s in splits.train]
            if "pretrain" in todo else None)
    return splits, tok, docs


def default_configs() -> list:
    return [RunConfig(), TaskConfig(), GPTConfig(), PretrainConfig(), RewardConfig(),
            PreferenceConfig(), GRPOConfig()]


def preset_configs(preset: str, overrides: dict | None = None) -> list:
    """A run's configs: the defaults, then the preset's overrides, then `overrides`."""
    if preset not in PRESETS:
        raise config.ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    configs = config.apply(default_configs(), {**PRESETS[preset], "preset": preset})
    return config.apply(configs, overrides or {})


def main(argv: list[str]) -> None:
    if argv in (["-h"], ["--help"]):
        print(__doc__ + "\n" + config.help_text(default_configs()) + "\n\npresets: "
              + ", ".join(PRESETS) + "\n--resume out/<run>: continue an interrupted run")
        return
    pairs = config.parse_pairs(argv)
    resume = pairs.pop("resume", None)
    if resume is not None:
        configs, stages, progress = run_directory_configs(resume, pairs)
    else:
        preset = pairs.get("preset") or ("gpu" if torch.cuda.is_available() else "cpu")
        configs = preset_configs(preset, pairs)
        stages = configs[0].stages.split(",")
    run, task, gpt, pcfg, rcfg, prefcfg, gcfg = configs
    out = run.out or os.path.join("out", run.preset)
    world = int(os.environ.get("WORLD_SIZE", "1"))                 # processes torchrun started
    device = run.device or ("cuda" if torch.cuda.is_available() else "cpu")
    preflight.check_settings(run, task, gpt, pcfg, gcfg, world)
    preflight.check_device(device, world)
    preflight.check_precision(device, run.precision)

    # the run directory belongs to one config: refuse to mix two runs in one folder, and refuse
    # to start afresh over an interrupted run (that is what --resume is for)
    described = config.as_dict([task, gpt, pcfg, rcfg, prefcfg, gcfg])
    described["RunConfig"] = {k: v for k, v in dataclasses.asdict(run).items()
                              if k not in ("stages", "device", "out")}
    config_path, progress_path = os.path.join(out, "config.json"), os.path.join(out, "progress.json")
    if resume is None:
        if os.path.exists(config_path) and read_json(config_path) != described:
            raise config.ConfigError(f"{out} holds a run with a different config; use another "
                                     f"--out or delete it")
        if os.path.exists(progress_path):
            old = read_progress(progress_path)
            if set(old["stages"]) - set(old["done"]):
                raise config.ConfigError(f"{out} holds an interrupted run (stages not finished: "
                                         f"{', '.join(s for s in old['stages'] if s not in old['done'])}"
                                         f"); continue it with --resume {out}, or use another --out")
        preflight.check_inputs(stages, out, rcfg, prefcfg)
        progress = {"stages": stages, "done": []}
    todo = [s for s in STAGES if s in stages and s not in progress["done"]]   # in pipeline order
    # the corpus and the tokenizer, in memory: every length is checked before anything is written
    splits, tok, docs = prepare_corpus(task, gpt, out, todo, resume is not None)
    if todo:
        preflight.check_lengths(tok, splits, gpt.block_size, run.max_new_tokens, docs)

    rank, world, device = dist.setup(device)
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        write_json(config_path, described)
        write_json(progress_path, progress)
    dist.barrier()
    if run.preset == "smoke" and rank == 0:
        print("smoke preset: checks that every stage runs end to end on a toy model; its figures "
              "mean nothing (python train.py runs the real thing)")
    if resume is not None and rank == 0:
        print(f"resuming {out} | stages done: {', '.join(progress['done']) or 'none'} | "
              f"to do: {', '.join(todo) or 'none'}")
    in_precision = autocast(device, precision(device, run.precision))  # bf16 on a GPU; reusable
    for stage in todo:
        if stage == "pretrain":
            figures = pretrain(run, task, gpt, pcfg, out, device, splits, tok, docs,
                               resume is not None)
        elif stage == "grpo":
            with in_precision:
                figures = train_grpo(run, rcfg, prefcfg, gcfg, out, device, splits,
                                     resume is not None, task)
        elif rank > 0:                     # the small stages run on rank 0; the others wait
            figures = {}
        elif stage == "reward":
            with in_precision:
                figures = train_reward_model(run, task, gpt, prefcfg, rcfg.pref_scope, out,
                                             device, resume is not None)
                if prefcfg.harm_model == "learned":    # the harmlessness model beside it
                    figures.update(train_harm_model(run, task, gpt, prefcfg, out, device))
        else:
            with in_precision:
                figures = evaluate_stage(run, prefcfg, out, device, splits, resume is not None,
                                         rcfg.banned)
        if rank == 0:
            update_report(out, figures)
            progress["done"].append(stage)
            write_json(progress_path, progress)
            clear_state(out, stage)
        release_free_memory()              # or the next stage's peak sits on this one's
        dist.barrier()
    if rank == 0:
        times = json.load(open(os.path.join(out, "report.json"))).get("time_s", {})
        total = sum(v for k, v in times.items() if k != "total")     # the stages' times, summed
        report = update_report(out, {"time_s": {"total": total}})
        write_text(os.path.join(out, "report.md"), report_markdown(report, run.preset))
        print(f"done in {report['time_s']['total']:.0f}s | report: "
              f"{os.path.join(out, 'report.json')}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, FileNotFoundError, ValueError, NonFiniteError) as e:
        sys.exit(f"error: {e}")
    finally:
        dist.teardown()
