"""
The lab: what measures the lesson, never part of it. Run from the repository root:

    python -m lab.experiments reward      # an experiment: its arms over three seeds, table + plot
    python -m lab.bench                   # speed and memory of every stage (docs/speed.md)
    python -m lab.curves out/cpu          # a GRPO run's log, windowed, as a table and a plot

The lesson (the repository root) never imports from here.
"""
