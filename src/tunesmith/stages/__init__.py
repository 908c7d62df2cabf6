"""The stages a recipe is made of, in the order a run goes through them.

plan.py      every check on config, model and run folder; nothing written
data.py      read the files and encode the labels (checks the data; nothing written),
             then tokenize (cached)
doctor.py    the data doctor on the splits as read: stops the run on what doctor.fail_on
             names, saves doctor.json/.md once the run folder is open
model.py     backbone + task head, activation checkpointing, strategy, speed-ups
train.py     the training loop on Accelerate, checkpoints in the run folder
evaluate.py  scores on validation and test, and what the task fits once training is over
save.py      the run folder: opened, its status kept, the trained model and results written

Each stage is a few small functions over plain objects (a `Plan`, datasets, a model);
recipes/ composes them.
"""
