from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.grounding import EssayIndex, quote_problem

ESSAY = "Stalin\u2019s rise was  swift.\nHe used the \u201cparty machine\u201d — patronage — to win votes in 1927."


@pytest.mark.parametrize(
    "quote",
    [
        "Stalin's rise was swift",
        'he used the "party machine"',
        "  STALIN\u2019S RISE WAS SWIFT.  ",
        "patronage - to win votes",
        "Stalin's rise ... to win votes in 1927",
        "\u201cHe used the \u2018party machine\u2019\u201d".replace("\u2018", '"').replace("\u2019", '"'),
    ],
)
def test_tolerant_matches(quote: str) -> None:
    index = EssayIndex(ESSAY)
    assert quote_problem(quote, index) is None


def test_span_points_at_original_text() -> None:
    index = EssayIndex(ESSAY)
    span = index.locate("rise was swift")
    assert span is not None
    assert ESSAY[span.start : span.end] == "rise was  swift"


@pytest.mark.parametrize(
    ("quote", "why"),
    [
        ("Stalin's rise was rapid", "does not appear"),
        ("He used the army machine", "does not appear"),
        ("to win votes in 1928", "does not appear"),
        ("to win votes ... Stalin's rise", "does not appear"),
        ("Stalin", "too short"),
        ("", "too short"),
    ],
)
def test_near_misses_are_rejected(quote: str, why: str) -> None:
    problem = quote_problem(quote, EssayIndex(ESSAY))
    assert problem is not None and why in problem


def _reference(text: str) -> tuple[str, list[int]]:
    """The obvious per-character normalisation the fast one must equal."""
    from schemas.grounding import _CHAR_MAP

    chars: list[str] = []
    index: list[int] = []
    previous_space = True
    for i, raw in enumerate(text):
        ch = _CHAR_MAP.get(raw, raw)
        if ch.isspace():
            if not previous_space:
                chars.append(" ")
                index.append(i)
                previous_space = True
            continue
        if not ch.isprintable():
            continue
        low = ch.lower()
        chars.append(low if len(low) == 1 else ch)
        index.append(i)
        previous_space = False
    return "".join(chars), index


_ALPHABET = st.sampled_from(
    [*"abcAB .,'\"\n\t", "\u2019", "\u201c", "\u2014", "\u00a0", "\u200b", "\u202e", "\x07", "İ", "ß"]
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=60))
def test_fast_normalisation_equals_the_reference(text: str) -> None:
    from schemas.grounding import _Normalised

    fast = _Normalised(text)
    expected_text, expected_index = _reference(text)
    assert fast.text == expected_text
    assert [fast.original(i) for i in range(len(fast.text))] == expected_index
