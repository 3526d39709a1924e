"""Text signals for calibration, computed on the part of an essay that can earn credit.

A calibrator fitted on teacher-marked scripts will lean on length, because length predicts marks.
So the statistics are taken over the *counted text*: the essay without repeated sentences,
without sentences copied from the question, and without sentences that share (almost) no
content words with the scheme's topic (the question, indicative content and the exemplars),
judged with their neighbours, so padding inside a paragraph is found too.
Padding, repetition and copying the question out then cannot raise a calibrated mark. What was
left out is reported, so a teacher can see it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.calibration.lexicon import LEXICON_FEATURES, general_share, lexicon_signals

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
_STOP = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each even few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more most
    much must my myself no nor not now of off on once only or other ought our ours ourselves out over own same
    she should so some such than that the their theirs them themselves then there these they this those
    through to too under until up upon us very was we were what when where which while who whom why will with
    would you your yours yourself yourselves one two get got go going make made many may might like well also
    still yet thing things way lot lots really quite every people think
    """.split()  # noqa: SIM905
)
# A paragraph is off the scheme's topic when fewer than this share of its content words occur in
# the topic vocabulary (and it has enough content words to judge).
OFF_TOPIC_SHARE = 0.2
_MIN_CONTENT_WORDS = 8
_MARKS_LINE = re.compile(r"\d+ marks?")
"""An exam paper's boilerplate, e.g. "(16 marks)", as ``_normalised`` leaves it."""


def words(text: str) -> list[str]:
    """Lowercased word tokens."""
    return [w.lower().strip("'’-") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Words that carry topic: no stop words, no one- or two-letter words, crude plural folding."""
    out = []
    for w in words(text):
        if len(w) < 3 or w in _STOP or w.isdigit():
            continue
        out.append(w[:-1] if w.endswith("s") and len(w) > 4 else w)
    return out


def sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (a simple splitter: the statistics need no more)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip()]


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs (single newlines are kept inside a paragraph)."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return parts or ([text.strip()] if text.strip() else [])


def _normalised(sentence: str) -> str:
    return " ".join(words(sentence))


def _ngrams(tokens: list[str], n: int = 4) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(max(0, len(tokens) - n + 1))}


@dataclass(frozen=True)
class CountedText:
    """The essay as the calibrator counts it, and what was left out."""

    text: str
    repeated_sentences: int
    question_sentences: int
    off_topic_sentences: int

    @property
    def discounted(self) -> list[str]:
        """Human-readable notes on what was not counted."""
        notes = []
        if self.repeated_sentences:
            notes.append(f"{self.repeated_sentences} repeated sentence(s)")
        if self.question_sentences:
            notes.append(f"{self.question_sentences} sentence(s) copied from the question")
        if self.off_topic_sentences:
            notes.append(f"{self.off_topic_sentences} sentence(s) off the question's topic")
        return notes


def _off_topic(content: list[list[str]], vocabulary: set[str]) -> list[bool]:
    """Which of a paragraph's sentences are off the topic, judged by sentence and not by paragraph.

    A sentence is off the topic when fewer than ``OFF_TOPIC_SHARE`` of its own content words are
    topic words *and* the same holds for it with its neighbours (enough content words to judge):
    off-topic text inside a paragraph is not counted, and the student's own on-topic sentences
    beside it, or a short plain sentence among on-topic ones, are never thrown away with it.
    """
    if not vocabulary:
        return [False] * len(content)
    hits = [sum(1 for w in words_ if w in vocabulary) for words_ in content]
    sizes = [len(words_) for words_ in content]
    flags = []
    for i, size in enumerate(sizes):
        own_low = size > 0 and hits[i] / size < OFF_TOPIC_SHARE
        # With the neighbour on either side (the sentence alone when it has none): low with either
        # means it sits in an off-topic run, such as the first sentence of padding after the essay.
        windows = [w for w in ((i - 1, i), (i, i + 1)) if w[0] >= 0 and w[1] < len(sizes)] or [(i, i)]
        window_low = any(
            sum(sizes[a : b + 1]) >= _MIN_CONTENT_WORDS
            and sum(hits[a : b + 1]) / sum(sizes[a : b + 1]) < OFF_TOPIC_SHARE
            for a, b in windows
        )
        flags.append(own_low and window_low)
    return flags


def counted_text(essay: str, question: str, topic_vocabulary: Iterable[str]) -> CountedText:
    """``essay`` without repeats, copied question sentences and off-topic sentences."""
    vocabulary = set(topic_vocabulary) | set(content_words(question))
    question_grams = _ngrams(words(question))
    question_keys = {_normalised(s) for p in paragraphs(question) for s in sentences(p)}
    seen: set[str] = set()
    repeated = copied = off_topic = 0
    kept_paragraphs = []
    for paragraph in paragraphs(essay):
        parts = sentences(paragraph)
        off = _off_topic([content_words(sentence) for sentence in parts], vocabulary)
        kept = []
        for sentence, is_off in zip(parts, off, strict=True):
            key = _normalised(sentence)
            if not key:
                continue
            if is_off:
                off_topic += 1
                continue
            if key in seen and len(key.split()) >= 4:
                repeated += 1
                continue
            seen.add(key)
            grams = _ngrams(key.split())
            # Copied from the question: most of its 4-word runs are the question's, or (too short to
            # have them, e.g. "Explain your answer." or "(16 marks)") it is one of the question's sentences.
            from_question = grams and question_grams and len(grams & question_grams) / len(grams) >= 0.6
            if from_question or key in question_keys or _MARKS_LINE.fullmatch(key):
                copied += 1
                continue
            kept.append(sentence)
        if kept:
            kept_paragraphs.append(" ".join(kept))
    return CountedText("\n\n".join(kept_paragraphs), repeated, copied, off_topic)


def topic_vocabulary(texts: Iterable[str], min_documents: int = 2) -> set[str]:
    """Content words used by at least ``min_documents`` of ``texts``."""
    counts: dict[str, int] = {}
    for text in texts:
        for w in set(content_words(text)):
            counts[w] = counts.get(w, 0) + 1
    return {w for w, c in counts.items() if c >= min_documents}


MIN_KEYNESS = 2.0
"""A shared word is a topic word only when the exemplars use it at least this many times as often as
general English does. Every word two exemplars share let everyday words ("play", "school", "football")
pass as topic, so padding read as on-topic: 12.8% of in-paragraph football padding counted on ASAP 2
and 33% on ASAP 7 (40 essays each, fit on 50, seed 7); with keyness 2, 1.7% and 26%, keeping 99.5% and
99.0% of honest essays' words (``benchmarks/calibration_design.py keyness``). Chosen on those sets (ASAP 1
is where it is reported)."""


def key_vocabulary(texts: Sequence[str], min_documents: int = 2, min_keyness: float = MIN_KEYNESS) -> set[str]:
    """The exemplars' topic: content words ``min_documents`` of them share and use ``min_keyness`` × general English."""
    tokens = [w for text in texts for w in content_words(text)]
    if not tokens:
        return set()
    frequency: dict[str, int] = {}
    for w in tokens:
        frequency[w] = frequency.get(w, 0) + 1
    return {
        w
        for w in topic_vocabulary(texts, min_documents)
        if frequency[w] / len(tokens) >= min_keyness * general_share(w)
    }


def key_vocabularies_without_each(
    texts: Sequence[str], min_documents: int = 2, min_keyness: float = MIN_KEYNESS
) -> list[set[str]]:
    """For each text, ``key_vocabulary`` of all the *other* texts (identical to recomputing it without that text).

    A marked script counted with a vocabulary learnt from itself keeps almost every word, while an
    unseen essay is counted with a vocabulary that never saw it; counting each script without its own
    words treats both alike (``LEAVE_ONE_OUT``).
    """
    per_text = [content_words(t) for t in texts]
    frequency: dict[str, int] = {}
    documents: dict[str, int] = {}
    for tokens in per_text:
        for w in tokens:
            frequency[w] = frequency.get(w, 0) + 1
        for w in set(tokens):
            documents[w] = documents.get(w, 0) + 1
    total = sum(frequency.values())
    shares = {w: general_share(w) for w in frequency}
    out: list[set[str]] = []
    for tokens in per_text:
        own: dict[str, int] = {}
        for w in tokens:
            own[w] = own.get(w, 0) + 1
        rest = total - len(tokens)
        if rest <= 0:
            out.append(set())
            continue
        out.append(
            {
                w
                for w, f in frequency.items()
                if documents[w] - (w in own) >= min_documents and (f - own.get(w, 0)) / rest >= min_keyness * shares[w]
            }
        )
    return out


TEXT_FEATURES = (
    "log_words",
    "log_unique_words",
    "paragraphs",
    "mean_sentence_words",
    "mean_word_length",
    "long_word_share",
    "mattr",
    "question_coverage",
    *LEXICON_FEATURES,
    "comma_rate",
    "capitalisation_errors",
)
_LOWER_I = re.compile(r"(?<![A-Za-z'’])i(?![A-Za-z])")


def text_signals(counted: str, question: str) -> dict[str, float]:
    """Length, structure, vocabulary, word-list and mechanics measures of the counted text.

    Mechanics are conventions that length does not measure: ``comma_rate`` is commas per word;
    ``capitalisation_errors`` is, per sentence, the sentences begun in lower case plus the pronoun
    "i" written small.
    """
    tokens = words(counted)
    n = len(tokens)
    parts = paragraphs(counted)
    all_sentences = [s for p in parts for s in sentences(p)]
    sentence_lengths = [len(words(s)) for s in all_sentences]
    small = sum(int(s[0].islower()) + len(_LOWER_I.findall(s, 1)) for s in all_sentences)
    question_terms = set(content_words(question))
    essay_terms = set(content_words(counted))
    window = 50
    if n >= window:
        ttrs = [len(set(tokens[i : i + window])) / window for i in range(0, n - window + 1, 10)]
        mattr = sum(ttrs) / len(ttrs)
    else:
        mattr = len(set(tokens)) / n if n else 0.0
    return {
        "log_words": math.log1p(n),
        "log_unique_words": math.log1p(len(set(tokens))),
        "paragraphs": float(len(parts)),
        "mean_sentence_words": sum(sentence_lengths) / len(sentence_lengths) if sentence_lengths else 0.0,
        "mean_word_length": sum(len(t) for t in tokens) / n if n else 0.0,
        "long_word_share": sum(1 for t in tokens if len(t) >= 7) / n if n else 0.0,
        "mattr": mattr,
        "question_coverage": len(question_terms & essay_terms) / len(question_terms) if question_terms else 0.0,
        **lexicon_signals(counted),
        "comma_rate": counted.count(",") / n if n else 0.0,
        "capitalisation_errors": small / len(all_sentences) if all_sentences else 0.0,
    }


def essay_signals(essay: str, question: str, vocabulary: set[str]) -> tuple[CountedText, dict[str, float]]:
    """The counted text and its signals, plus ``raw_log_words`` (the whole essay's length, for word count)."""
    counted = counted_text(essay, question, vocabulary)
    signals = text_signals(counted.text, question)
    signals["raw_log_words"] = math.log1p(len(words(essay)))
    return counted, signals
