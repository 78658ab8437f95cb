"""
Numerical faults: an update whose loss or gradient is not finite is skipped, not applied.

What this is: one object each training loop (pretraining, the preference model, GRPO) passes its
optimizer step through. A NaN or Inf in the loss or the gradient norm skips the step, prints one
line and counts it (the loops log the count); `limit` skips in a row stop the run with a message
that says what to try, because a model that only ever produces NaN will not recover by itself.
Skipping keeps the parameters and the optimizer's moments as they were, so a checkpoint written
afterwards is still clean (checkpoint.py refuses to write one that is not).

Under data parallelism the decision must be the same on every rank: the gradient norm is taken
after DDP has averaged the gradients, and the loss passed in is the all-reduced one.

What this is deliberately not: loss scaling for fp16 (we train in fp32 or bf16), or a rollback
to an earlier checkpoint.
"""

import math

import torch
from tqdm import tqdm


class NonFiniteError(RuntimeError):
    """Too many non-finite updates in a row; train.py prints it as one line and exits 1."""


class SkipNonFinite:
    def __init__(self, stage: str, limit: int, skipped: int = 0, in_row: int = 0):
        self.stage, self.limit = stage, limit
        self.skipped, self.in_row = skipped, in_row   # total skipped; skipped since the last good

    def step(self, opt: torch.optim.Optimizer, loss: float, grad_norm: float, step: int) -> bool:
        """opt.step() when loss and grad_norm are finite, else count a skip; grads are cleared
        either way. Returns whether the update was applied."""
        ok = math.isfinite(loss) and math.isfinite(grad_norm)
        if ok:
            opt.step()
            self.in_row = 0
        else:
            self.skipped += 1
            self.in_row += 1
            tqdm.write(f"{self.stage} step {step}: loss {loss}, grad norm {grad_norm}: update "
                       f"skipped ({self.in_row} in a row, {self.skipped} in all)")
        opt.zero_grad(set_to_none=True)
        if self.in_row >= self.limit:
            raise NonFiniteError(f"{self.stage}: {self.in_row} non-finite updates in a row (last "
                                 f"at step {step}); stopping. Try a lower learning rate or a "
                                 f"tighter gradient clip")
        return ok

    def state(self) -> dict:
        return {"skipped": self.skipped, "in_row": self.in_row}
