"""Learning from little data (docs/little-data.md).

encoder.py      a sentence encoder: mean pooling and unit length, as sentence-transformers for MiniLM
zero_shot.py    label prompts, embedded and averaged: a linear head of cosine similarities
contrastive.py  SetFit's pair loss over every pair of a batch, and the tuning loop
head.py         scikit-learn's logistic regression, kept as arrays in safetensors
cloze.py        PET: the label word predicted at a mask by a masked-LM head
recipe.py       a zero_shot, contrastive or cloze run on the pipeline's stages
predictor.py    predict and evaluate with those runs
repeat.py       `tunesmith fewshot`: k per class over seeds, mean ± std
select.py       `tunesmith select`: entropy, margin, diversity, random
labels.py       zero-shot labels from the command line
cli.py          the commands' parsers and handlers
"""
