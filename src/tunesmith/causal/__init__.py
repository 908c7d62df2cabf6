"""Supervised fine-tuning of causal (decoder) models: `task: causal` (tasks/causal.py).

rows.py        the rows of a file as prompt/completion pairs, chat conversations or plain texts, checked
templates.py   chat templates: the tokenizer's own, or a built-in one by name
encoding.py    one example to token ids and labels, loss only where it belongs (the label audit reads it)
packing.py     short examples packed into full rows (best fit), and the collators
generation.py  generation through transformers' `generate`: greedy or sampled, stop strings, chat
scoring.py     exact match and ROUGE-L of generations against references
audit.py       `tunesmith inspect`: encoded examples shown with the tokens that carry loss marked
"""
