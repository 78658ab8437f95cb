"""
What every training loop of train.py shares: the steps still to run, the guard on non-finite
updates, the progress bar, the periodic checkpoint and the JSONL log.

    loop = TrainingLoop("grpo", out, cfg.rl_steps, cfg.rl_ckpt_every, model=policy, opt=opt,
                        device=device, seed=seed, generators=dict(gen=gen), resume=resume,
                        max_bad_steps=5, state=dict(history=[], no_signal=0))
    for step in loop:                            # from step 0, or where a saved state stopped
        ... loop.guard.step(opt, loss, grad_norm, step) ...
        loop.log(row)                            # grpo_log.jsonl and state["history"]
    loop.elapsed()                               # seconds, the time before a resume included

Every `ckpt_every` steps, before the step runs, <stage>.state.pt receives the weights, the AdamW
moments, every generator and `state`, the loop's own running figures (checkpoint.save_training);
with resume=True the loop starts where that state stopped and hands `state` back as it was, so
on a CPU the finished run is bit-identical to one never interrupted (tests/test_resume.py).
Under torchrun only rank 0 saves, logs and shows the bar.

What this is deliberately not: a trainer. The step, the data and the evaluation stay in each
stage's own loop, written out top to bottom.
"""

import json
import os
import time

from tqdm import tqdm

import dist
from checkpoint import open_log, resume_training, save_training, state_path
from guard import SkipNonFinite


class TrainingLoop:
    def __init__(self, stage: str, out: str, steps: int, ckpt_every: int, *, model, opt,
                 device: str, seed: int, generators: dict, resume: bool, max_bad_steps: int,
                 state: dict, log: str | None = None):
        self.stage, self.out, self.steps, self.ckpt_every = stage, out, steps, ckpt_every
        self.model, self.opt, self.device, self.generators = model, opt, device, generators
        self.state, self.start, self.before = state, 0, 0.0       # before: seconds before a resume
        self.guard = SkipNonFinite(stage, max_bad_steps)
        saved = resume_training(out, stage, model=model, opt=opt, device=device, seed=seed,
                                generators=generators) if resume else None
        if saved is not None and "loop" not in saved:
            raise ValueError(f"{state_path(out, stage)}: a training state written by an older "
                             f"version of this code; delete it to restart the stage")
        if saved is not None:                                      # continue where it stopped
            self.start, self.before = saved["step"], saved["elapsed"]
            self.state.update(saved["loop"])
            self.guard = SkipNonFinite(stage, max_bad_steps, **saved["guard"])
            if dist.rank() == 0:
                print(f"{stage} | resuming at step {self.start}")
        self.main = dist.rank() == 0
        log_path = os.path.join(out, log) if log else None         # rewritten up to `start`
        self.log_file = open_log(log_path, state["history"]) if log and self.main else None
        self.t0 = time.time()
        self.bar = tqdm(range(self.start, steps), desc=stage, initial=self.start, total=steps,
                        dynamic_ncols=True, mininterval=1.0, disable=not self.main)

    def __iter__(self):
        for step in self.bar:
            if self.main and step > self.start and step % self.ckpt_every == 0:
                save_training(self.out, self.stage, step=step, model=self.model, opt=self.opt,
                              device=self.device, generators=self.generators, loop=self.state,
                              elapsed=self.elapsed(), guard=self.guard.state())
            yield step
        if self.log_file:
            self.log_file.close()

    def log(self, row: dict) -> None:
        """One step's row: into state["history"] (saved with the state) and the JSONL log."""
        self.state["history"].append(row)
        if self.log_file:
            self.log_file.write(json.dumps(row) + "\n")
            self.log_file.flush()

    def elapsed(self) -> float:
        return self.before + time.time() - self.t0
