"""Training-data augmentation: pair orders (pairs.py), EDA-style word edits (text.py), WordNet
synonyms (lexicon.py) and entity-mention replacement for NER (entities.py), put together per
config in apply.py. Only the training split is ever augmented (stages/data.py)."""

from tunesmith.data.augment.pairs import swap_pairs, swapped

__all__ = ["swap_pairs", "swapped"]
