"""Sentence numbering for evidence by reference: splitting, coverage, look-up, mapping back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.grounding import EssayIndex, quote_problem
from schemas.sentences import MAX_SENTENCE_CHARS, MAX_SENTENCE_WORDS, SentenceTable, split_sentences


def texts(essay: str) -> list[str]:
    return [s.text for s in split_sentences(essay)]


@pytest.mark.parametrize(
    ("essay", "expected"),
    [
        ("Stalin won. Trotsky lost! Why? Nobody knows.", ["Stalin won.", "Trotsky lost!", "Why?", "Nobody knows."]),
        # closing quotes and brackets stay with their sentence; a lower-case word after "?" continues it
        (
            'Lenin wrote "Stalin is too rude." Then he died. "Why?" he asked. (It mattered.) Yes.',
            ['Lenin wrote "Stalin is too rude."', "Then he died.", '"Why?" he asked.', "(It mattered.)", "Yes."],
        ),
        (
            "Lenin wrote \u201cStalin is too rude.\u201d Then he died \u2014 in 1924 \u2013 at Gorki.",
            ["Lenin wrote \u201cStalin is too rude.\u201d", "Then he died \u2014 in 1924 \u2013 at Gorki."],
        ),
        # abbreviations, initials, dotted acronyms and decimals do not end sentences
        (
            "Mr. Smith met Dr. Jones in St. Petersburg c. 1920. J. V. Stalin rose, e.g. through the "
            "U.S.S.R. party machine. Output grew 1.5 times. He won.",
            [
                "Mr. Smith met Dr. Jones in St. Petersburg c. 1920.",
                "J. V. Stalin rose, e.g. through the U.S.S.R. party machine.",
                "Output grew 1.5 times.",
                "He won.",
            ],
        ),
        ("Trotsky was exiled... Stalin ruled alone.", ["Trotsky was exiled...", "Stalin ruled alone."]),
        (
            "A heading\nA line without a full stop\n\nNext paragraph.",
            ["A heading", "A line without a full stop", "Next paragraph."],
        ),
    ],
)
def test_splitting(essay: str, expected: list[str]) -> None:
    assert texts(essay) == expected


def test_paragraphs_are_marked() -> None:
    found = split_sentences("One here. Two here.\n\n  Three here.\nFour here.")
    assert [s.new_paragraph for s in found] == [False, False, True, False]
    assert [s.ref for s in found] == ["S1", "S2", "S3", "S4"]


def test_very_long_sentences_are_cut_into_bounded_pieces() -> None:
    run_on = " ".join(f"word{i}" for i in range(100)) + ". Short one here! ok"
    assert [len(t.split()) for t in texts(run_on)] == [MAX_SENTENCE_WORDS, MAX_SENTENCE_WORDS, 20, 4]
    giant = "x" * (MAX_SENTENCE_CHARS * 2 + 5) + " tail words."
    pieces = texts(giant)
    assert all(len(p) <= MAX_SENTENCE_CHARS for p in pieces) and "".join(pieces).replace(" ", "") == giant.replace(
        " ", ""
    )
    long_words = " ".join(["antidisestablishmentarianism"] * 39) + "."
    assert all(len(p) <= MAX_SENTENCE_CHARS for p in texts(long_words))


def test_refs_resolve_to_exact_spans_and_bad_refs_are_explained() -> None:
    essay = "Stalin\u2019s rise was swift.  He used the \u201cparty machine\u201d. Ok."
    index = EssayIndex(essay, sentence_refs=True)
    span = index.locate("S2")
    assert span is not None and essay[span.start : span.end] == "He used the \u201cparty machine\u201d."
    assert quote_problem("S2", index) is None
    assert "not a sentence of this essay; cite one of S1-S3" in str(quote_problem("S4", index))
    assert "too short" in str(quote_problem("S3", index))
    assert quote_problem('He used the "party machine"', index) is None, "free quotes still work beside refs"
    table = index.sentences
    assert table is not None and table.citable_refs() == ["S1", "S2"]
    assert table.get("S0") is None and table.get("s1") is None and table.get(" S1 ") is not None


_PIECES = st.sampled_from(
    [*"abcAB .,!?'\"()\n\t", "\u2019", "\u201d", "\u2014", "\u00a0", "Mr. ", "e.g. ", "1.5", "x" * 50]
)


@settings(max_examples=300, deadline=None)
@given(essay=st.lists(_PIECES, max_size=120).map("".join))
def test_pieces_cover_the_essay_in_order_verbatim(essay: str) -> None:
    found = split_sentences(essay)
    covered = [False] * len(essay)
    previous_end = 0
    for number, s in enumerate(found, start=1):
        assert s.number == number and s.text == essay[s.start : s.end] and s.text == s.text.strip()
        assert s.start >= previous_end
        assert len(s.text.split()) <= MAX_SENTENCE_WORDS and len(s.text) <= MAX_SENTENCE_CHARS
        for i in range(s.start, s.end):
            covered[i] = True
        previous_end = s.end
    assert all(covered[i] for i, c in enumerate(essay) if not c.isspace())


def test_the_example_essay(essay: str) -> None:
    table = SentenceTable(essay)
    assert len(table.sentences) > 20
    assert "Stalin additionally gained a support base in the Bolsheviks." in [s.text for s in table.sentences]
