"""Quiet the libraries' chatter for the length of one API call, then put their settings back.

Loading a backbone into a new head always "misses" the head's weights (transformers' LOAD REPORT),
and datasets draws a bar for every map; neither is the user's to act on. The command line turns
them off for its whole process (`commands.silence_libraries`); the Python API runs in the user's
process, so `quiet_libraries` turns them off only while tunesmith works, through the libraries'
own switches, and restores what was set before, whoever set it.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


@contextmanager
def quiet_libraries(uses_datasets: bool = True) -> Iterator[None]:
    """transformers at error level without progress bars, and datasets without progress bars
    (unless `uses_datasets` is False: predicting never imports datasets), until the block ends."""
    with ExitStack() as restore:
        restore.enter_context(_transformers_quiet())
        if uses_datasets:
            restore.enter_context(_datasets_quiet())
        # peft asks transformers a question transformers has renamed; the warning is not the user's to fix.
        restore.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


@contextmanager
def _transformers_quiet() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    # The module, which `huggingface_hub.utils.tqdm` is not: that name is its tqdm class.
    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    # transformers' switch also flips huggingface_hub's bars, per group: those are put back as they were.
    hub_states = dict(getattr(hub_tqdm, "progress_bar_states", {}))
    hf_logging.set_verbosity_error()
    if bars:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cannot disable": an environment variable keeps them on
            hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hf_logging.enable_progress_bar()
            states = getattr(hub_tqdm, "progress_bar_states", None)
            if isinstance(states, dict):
                states.clear()
                states.update(hub_states)


@contextmanager
def _datasets_quiet() -> Iterator[None]:
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    bars = not are_progress_bars_disabled()
    if bars:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cannot disable": HF_DATASETS_DISABLE_PROGRESS_BARS=0 has priority
            disable_progress_bars()
    try:
        yield
    finally:
        if bars:
            enable_progress_bars()
