"""The data doctor: what is wrong with a data set before a model is trained on it.

findings.py   what it reports (kept free of heavy imports: the config names its checks)
examples.py   the splits in comparable form (canonical labels, NER tags as written)
overlap.py    duplicates, conflicting labels, overlap between splits, swapped pairs
labels.py     label distribution, imbalance, shift, unseen labels, short texts, invalid NER tags
lengths.py    token lengths and the share cut at max_length
label_errors.py  likely label errors (cleanlab on out-of-fold probabilities of a cheap model)
examine.py    all of them over one data set
render.py     the printed table, doctor.md and doctor.json
"""
