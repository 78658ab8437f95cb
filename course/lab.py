"""
Labs graded by outcome: the student's own pieces train the tiny model, and the grade is what the
run did, against a band measured on reference runs over several seeds.

    python -m course.lab grpo --kit DIR            # the student's GRPO pieces lift accuracy
    python -m course.lab hacking --kit DIR         # the preference model alone is hacked; the
                                                   # verifier beside it holds the accuracy
    python -m course.lab bug --seeds 1,2,3         # a silent bug: clean and bugged, side by side
    python -m course.lab grpo --seeds 11,12,13 --bands course/private.json   # a teacher's bands

A lab runs `train.py` in a copy of this repository whose bodies for the lab's exercises are the
student's (course/make.py's splicing; every other line is the reference), from a pretraining
the reference code makes once per seed and caches in out/course/. Without --kit it runs the
reference itself: that is how the bands are made (--bands FILE writes them).

What this deliberately is not: the exercise grader (course/grade.py checks each body on fixed
inputs in seconds; a lab takes minutes and checks what they add up to).
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

from course.exercises import by_name
from course.make import ROOT, body, is_stub, splice, tracked_files
from lab.experiments import Run, execute, flags_of
from lab.questions import EARLIER

GRPO_PIECES = ("kv_cache", "answer_span", "token_logprobs", "group_advantages", "policy_loss",
               "update")
SIZE = dict(preset="cpu", rl_steps=40,  # a lab run: minutes on a laptop CPU, at the pretraining
            **EARLIER)                  # and held-out set its bands were measured at
QUICK = dict(preset="smoke")                        # seconds: checks the plumbing only
MARGIN = 0.05                                       # a band: the reference seeds' range ± this
CURVES = {"accuracy": "accuracy on the step's samples", "proxy": "preference model's score",
          "zero_var": "share of groups without signal"}         # the plot's panels
ALONE = dict(w_correct=0.0, w_format=0.0, w_harm=0.0, w_pref=1.0)


@dataclass(frozen=True)
class Lab:
    """A question answered by runs: the exercises whose student bodies the runs use, its arms
    (train.py flags on top of SIZE), and the figures it is graded on, per arm."""
    question: str
    exercises: tuple
    arms: dict
    graded: dict = field(default_factory=dict)   # arm -> ((figure, "min" | "max"), ...): the
                                                 # run's figure at least the band's low, or at
                                                 # most its high
    bug: tuple = ()             # (file, old, new): the bugged arm's hidden edit
    curves: tuple = ("accuracy", "zero_var")  # the plot's panels (CURVES)


LABS = {
    "grpo": Lab("Do your GRPO pieces train the model? Held-out pass@1 after 40 steps on the "
                "verifier alone", GRPO_PIECES, {"verifier": dict(w_pref=0.0)},
                {"verifier": (("pass@1", "min"), ("gain", "min"))}),
    "hacking": Lab("The preference model alone is hacked: its score rises while accuracy "
                   "falls. Beside the verifier it is not.", GRPO_PIECES + ("bt_loss",),
                   {"alone": ALONE, "blend": dict(w_pref=1.0)},
                   {"alone": (("proxy_rise", "min"), ("gain", "max")),
                    "blend": (("pass@1", "min"), ("gain", "min"))},
                   curves=("accuracy", "proxy", "zero_var")),
    "bug": Lab("A silent bug: the same run, clean and bugged, over seeds. Which function?", (),
               {"verifier": dict(w_pref=0.0), "bugged": dict(w_pref=0.0)},
               bug=("advantages.py",
                    "torch.cat([varied.nonzero().flatten(), (~varied).nonzero().flatten()])",
                    "torch.cat([(~varied).nonzero().flatten(), varied.nonzero().flatten()])")),
}
BUG_ANSWER = "groups_with_signal"


def unfinished(lab: Lab, kit: str) -> list[str]:
    """The lab's exercises whose body in `kit` is still the stub."""
    return [n for n in lab.exercises
            if is_stub(open(os.path.join(kit, by_name()[n].path)).read(), n)]


def student_tree(lab: Lab, kit: str | None, folder: str, arm: str) -> str:
    """A copy of the repository's files in `folder`, the lab's exercise bodies from `kit` (the
    reference's when kit is None), the bug's edit in the bugged arm. Returns who wrote the code:
    "reference", or "kit-" and a hash of the student's bodies that differ from the reference's,
    so that a changed body runs again and a reference run is shared by every lab."""
    bodies = {}
    for name in lab.exercises:
        path = by_name()[name].path
        mine = body(open(os.path.join(kit or ROOT, path)).read(), name)
        if mine != body(open(os.path.join(ROOT, path)).read(), name):
            bodies[name] = mine
    for rel in tracked_files(ROOT):
        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(folder, rel))
    for name, new_body in bodies.items():
        path = os.path.join(folder, by_name()[name].path)
        text = splice(open(path).read(), name, new_body)
        with open(path, "w") as f:
            f.write(text)
    if arm == "bugged":
        rel, old, new = lab.bug
        text = open(os.path.join(folder, rel)).read()
        if text.count(old) != 1:
            raise ValueError(f"the bug's text is not in {rel} once: the lab needs updating")
        with open(os.path.join(folder, rel), "w") as f:
            f.write(text.replace(old, new))
    if not bodies:
        return "reference"
    return "kit-" + hashlib.sha1(json.dumps(bodies, sort_keys=True).encode()).hexdigest()[:10]


def train(run: Run, root: str, log) -> None:
    """lab.experiments.execute at the threads this process has: skipped when done, resumed when
    interrupted."""
    execute(run, int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1, root)
    log(f"  {run.out}")


def pretraining(seed: int, size: dict, base: str, log) -> str:
    """The reference code's pretraining for `seed` (its own corpus too), made once."""
    out = os.path.join(base, f"pretrain-{size['preset']}-seed{seed}")
    made = {k: v for k, v in size.items() if k in ("preset", "pretrain_steps", "n_eval")}
    train(Run(out, flags_of([], **made, seed=seed, task_seed=seed, stages="pretrain")), ROOT,
          log)
    return out


def run_arm(lab_name: str, arm: str, seed: int, kit: str | None, size: dict, base: str,
            log) -> str:
    """One arm on one seed: the pretraining copied in, then reward (where the arm pays the
    preference model), grpo and eval in the student's copy. Returns the run directory. An arm's
    name stands for its flags in every lab (the grpo lab's "verifier" is the bug lab's clean
    run), so a reference run made for one lab serves the others."""
    lab = LABS[lab_name]
    pre = pretraining(seed, size, base, log)
    with tempfile.TemporaryDirectory(prefix="course-lab-") as code:
        who = student_tree(lab, kit, code, arm)
        out = os.path.join(base, who, size["preset"], arm, f"seed{seed}")
        flags = dict(size, **lab.arms[arm], seed=seed, task_seed=seed)
        stages = "reward,grpo,eval" if flags.get("w_pref", 0.3) > 0 else "grpo,eval"
        train(Run(out, flags_of([], **flags, stages=stages),
                  tuple((name, pre) for name in ("pretrain.pt", "pretrain.json",
                                                 "tokenizer.tiktoken"))), code, log)
    return out


def figures(out: str) -> dict:
    """What a lab grades, from a run directory: held-out pass@1 before and after RL, its gain,
    the preference model's mean score over the first and the last 10 steps, and the share of
    groups without signal."""
    report = json.load(open(os.path.join(out, "report.json")))
    steps = [json.loads(line) for line in open(os.path.join(out, "grpo_log.jsonl"))]

    def mean(rows, k):
        values = [r[k] for r in rows if k in r and r[k] == r[k]]    # NaN: no answer to score
        return sum(values) / len(values) if values else 0.0

    before, after = (report["eval"][m]["in_dist"]["pass@1"] for m in ("pretrained", "rl"))
    return {"pretrained": before, "pass@1": after, "gain": after - before,
            "proxy_rise": mean(steps[-10:], "proxy") - mean(steps[:10], "proxy"),
            "no_signal": mean(steps, "zero_var"),
            "curves": {k: [mean(steps[max(0, i - 4):i + 1], k) for i in range(len(steps))]
                       for k in CURVES}}                             # 5-step running means

# ------------------------------------------------------------------------------------------------
# bands and grades

WHAT = {"pass@1": "held-out pass@1 after RL", "gain": "its gain over the pretrained policy",
        "proxy_rise": "the preference score's rise, first 10 steps to last 10"}


def band(values: list[float]) -> dict:
    return {"values": values, "low": min(values) - MARGIN, "high": max(values) + MARGIN}


def make_bands(lab_name: str, results: dict) -> dict:
    """{arm: {figure: band, "curves": {seed: curves}}} from the reference runs' {arm: {seed:
    figures}}: what a student's run is graded against, and the curves it is drawn beside."""
    return {arm: {**{k: band([results[arm][s][k] for s in sorted(results[arm])])
                     for k, _ in LABS[lab_name].graded.get(arm, ())},
                  "curves": {str(s): results[arm][s]["curves"] for s in sorted(results[arm])}}
            for arm in results}


def plot(results: dict, bands: dict, keys: tuple, path: str) -> bool:
    """One row per arm, one panel per curve: the reference seeds' curves in grey, these runs'
    in colour. False when matplotlib is not installed."""
    from lab.summary import pyplot, save
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(len(results), len(keys), figsize=(4 * len(keys), 2.6 * len(results)),
                             squeeze=False)
    for row, (arm, per_seed) in zip(axes, results.items()):
        for ax, key in zip(row, keys):
            for curves in bands.get(arm, {}).get("curves", {}).values():
                ax.plot(curves[key], color="0.75", lw=1)
            for seed, f in sorted(per_seed.items()):
                ax.plot(f["curves"][key], lw=1.5, label=f"seed {seed}")
            ax.set_title(f"{arm}: {CURVES[key]}", fontsize=9)
            ax.set_xlabel("GRPO step", fontsize=8)
        row[0].legend(fontsize=7, title="grey: reference seeds", title_fontsize=7)
    save(fig, path)
    return True


def grade(lab_name: str, results: dict, bands: dict) -> list[tuple[bool, str]]:
    """Each graded figure of each run against its band: (passed, message). A figure graded
    "min" must reach the band's low end (pass@1 after RL), one graded "max" stay under its high
    end (pass@1's gain when the preference model alone is hacked: it must fall)."""
    lines = []
    for arm, per_seed in results.items():
        for seed, got in sorted(per_seed.items()):
            for k, side in LABS[lab_name].graded.get(arm, ()):
                b = bands[arm][k]
                ok = b["low"] <= got[k] if side == "min" else got[k] <= b["high"]
                form = ".3f" if k == "pass@1" else "+.3f"
                bound = (f"{b['low']:{form}} or more" if side == "min"
                         else f"{b['high']:{form}} or less")
                lines.append((ok, f"{arm}, seed {seed}: {WHAT[k]} {got[k]:{form}}; the reference "
                                  f"band {bound} (its seeds: "
                                  f"{', '.join(f'{v:{form}}' for v in b['values'])})"))
    return lines


def table(results: dict) -> str:
    rows = ["| arm | seed | pretrained | pass@1 | gain | preference score rise | groups "
            "without signal |", "|---|---|---|---|---|---|---|"]
    for arm, per_seed in results.items():
        for seed, f in sorted(per_seed.items()):
            rows.append(f"| {arm} | {seed} | {f['pretrained']:.3f} | {f['pass@1']:.3f} | "
                        f"{f['gain']:+.3f} | {f['proxy_rise']:+.3f} | {f['no_signal']:.2f} |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    import argparse
    from tqdm import tqdm
    parser = argparse.ArgumentParser(prog="python -m course.lab", description=__doc__.split(
        "\n\n")[0].strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lab", choices=list(LABS))
    parser.add_argument("--kit", help="the student copy; without it, the reference code runs")
    parser.add_argument("--seeds", help="comma-separated seeds; default: the bands' first seed "
                        "(all of them without --kit)")
    parser.add_argument("--bands", default=os.path.join(ROOT, "course", "bands.json"),
                        help="the bands file: read with --kit, written without it")
    parser.add_argument("--diagnosis", help="bug: the function you think holds the bug")
    parser.add_argument("--quick", action="store_true", help="the smoke preset: plumbing only")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "course"),
                        help="runs and the cached pretrainings")
    args = parser.parse_args(argv)
    lab, size = LABS[args.lab], QUICK if args.quick else SIZE
    stored = json.load(open(args.bands)) if os.path.exists(args.bands) else {}
    if args.kit and not args.quick and args.lab != "bug" and args.lab not in stored:
        sys.exit(f"course.lab: {args.bands} has no bands for {args.lab}: make them with "
                 f"python -m course.lab {args.lab} --seeds S1,S2,S3 --bands {args.bands}")
    try:
        known = stored.get(args.lab, {}).get("seeds", [1, 2, 3])
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else (
            known[:1] if args.kit or args.quick else known)
    except ValueError:
        sys.exit(f"course.lab: --seeds takes comma-separated integers, got {args.seeds!r}")
    if args.kit and not os.path.isdir(args.kit):
        sys.exit(f"course.lab: {args.kit} is not a folder: make one with python -m course.make")
    if unfinished(lab, ROOT):
        sys.exit(f"course.lab: {ROOT} is itself a student copy (its bodies are stubs): run the "
                 f"lab from the original repository, with --kit pointing here")
    todo = unfinished(lab, args.kit) if args.kit else []
    if todo:
        sys.exit(f"course.lab: {args.lab} runs your {', '.join(todo)}, still stubs: grade them "
                 f"first (python -m course.grade {' '.join(todo)} --kit {args.kit})")
    print(f"{args.lab}: {lab.question}")
    results: dict = {}
    runs = [(arm, seed) for arm in lab.arms for seed in seeds]
    for arm, seed in tqdm(runs, desc=f"{args.lab} runs (minutes each)", file=sys.stderr):
        try:
            out = run_arm(args.lab, arm, seed, args.kit, size, args.out, tqdm.write)
        except (ValueError, RuntimeError) as e:
            sys.exit(f"course.lab: {e}")
        results.setdefault(arm, {})[seed] = figures(out)
    print(table(results))
    drawn = os.path.join(args.out, f"{args.lab}.png")
    if plot(results, stored.get(args.lab, {}), lab.curves, drawn):
        print(f"curves: {drawn}")
    if args.quick:
        return
    if args.lab == "bug":
        if args.diagnosis:
            right = args.diagnosis.strip() == BUG_ANSWER
            print(f"diagnosis {args.diagnosis}: " + ("right." if right else
                  "not that one. Compare the columns: which differs from the start?"))
            sys.exit(0 if right else 1)
        return
    if not args.kit:                                                 # the reference: the bands
        stored = json.load(open(args.bands)) if os.path.exists(args.bands) else {}  # as it is now
        stored[args.lab] = dict(make_bands(args.lab, results), seeds=seeds, size=size)
        with open(args.bands + ".tmp", "w") as f:
            json.dump(stored, f, indent=1)
        os.replace(args.bands + ".tmp", args.bands)
        print(f"bands for {args.lab} written to {args.bands}")
        return
    lines = grade(args.lab, results, stored[args.lab])
    for ok, line in lines:
        print(("pass  " if ok else "FAIL  ") + line)
    sys.exit(0 if all(ok for ok, _ in lines) else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
