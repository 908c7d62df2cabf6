"""Continual learning: fine-tune a finished run on a new task or new data while limiting what it forgets.

pull.py       quadratic pulls toward fixed weights: L2-SP (uniform) and EWC (Fisher-weighted), as analytic
              gradients added to the step's gradient
ewc.py        the Fisher diagonal of the old task at the old weights
rehearsal.py  which old training rows are replayed, and the gradient of each step's share of them
old_run.py    the old run: checked, its task and data read, its model sharing the new run's encoder
stage.py      what the fine-tuning recipe calls: the old task read before the run folder opens, the protections
              set up once the model is built, the forgetting measured at the end

See docs/continual.md.
"""
