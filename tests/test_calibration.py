"""Calibration: fitting and honest selection on data with known structure, no leakage, no gaming, the pipeline."""

from __future__ import annotations

import pytest

from evals.calibration import split
from evals.dataset import EvalItem
from schemas.result import FlagCode
from schemas.scheme import MarkScheme
from service.calibration.apply import calibrate, predict
from service.calibration.fit import MIN_SCRIPTS, NotEnoughScriptsError, Script, fit_calibrator
from service.calibration.importing import parse_csv, parse_jsonl
from service.calibration.lexicon import lexicon_signals
from service.calibration.similarity import similarity_scores
from service.calibration.text import counted_text, text_signals
from service.errors import CallerError
from service.llm.fake import FakeMarker
from service.pipeline import mark_essay
from service.settings import Settings
from tests.calibration_support import synthetic_essay, synthetic_scripts


def test_where_length_carries_the_marks_the_plain_length_model_is_delivered(holistic: MarkScheme) -> None:
    scripts = synthetic_scripts(holistic, 40, seed=1, driver="length")
    calibrator = fit_calibrator(scripts, holistic)
    (fit,) = calibrator.objectives
    assert fit.cv.word_count_qwk is not None and fit.cv.word_count_qwk > 0.8, "length carries the marks here"
    assert fit.cv.delivered == "length" and fit.features == ["log_words"], fit.cv
    assert fit.used and "counted text's length" in fit.reason
    assert fit.cv.delivered_qwk == fit.cv.length_qwk and fit.cv.repeats == 3


def test_the_decision_needs_a_margin_and_never_prefers_a_worse_model() -> None:
    from service.calibration.fit import SELECTION_MARGIN, _decide

    just_better = [0.70 + SELECTION_MARGIN / 2] * 3
    assert _decide(just_better, [0.70] * 3, None, 20).delivered == "length", "noise does not pick the calibrator"
    assert _decide([0.75] * 3, [0.70] * 3, None, 20).delivered == "calibrator"
    assert _decide([0.75, 0.60, 0.75], [0.70] * 3, None, 20).delivered == "length", "paired: the mean gain decides"
    assert _decide([0.75] * 3, [0.70] * 3, 0.74, 20).delivered == "calibrator", "raw marks are never preferred"
    chosen = _decide([0.75] * 3, [0.70] * 3, 0.80, 20)
    assert chosen.delivered == "model" and not chosen.used
    weak = _decide([0.2] * 3, [0.3] * 3, 0.1, 20)
    assert weak.delivered == "length" and weak.used and "weak" in weak.reason, "the floor says so; raw marks are worse"
    assert _decide([None] * 3, [None] * 3, None, 20).delivered is None


def test_the_development_rules_measured_beside_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/calibration_design.py smalln compares them; the product keeps the margin alone."""
    from service.calibration import fit

    y = [0, 1, 2, 3, 4, 5]
    steady = [[0, 1, 2, 3, 4, 5]] * 3  # right on every script
    near = [[1, 2, 3, 4, 5, 4]] * 3  # one mark off on every script
    lucky = [[0, 1, 2, 3, 4, 0]] * 3  # right but for one script, far off there
    assert fit._paired_se_gain(y, steady, near) == float("inf"), "better on every script by the same amount"
    assert 0 < fit._paired_se_gain(y, near, lucky) < 1.0, "better on average, but by one script's luck"
    assert fit.DECISION == "margin"
    assert fit._decide([0.75] * 3, [0.70] * 3, None, 12, se_gain=0.5).delivered == "calibrator"
    monkeypatch.setattr(fit, "DECISION", "one_se")
    assert fit._decide([0.75] * 3, [0.70] * 3, None, 12, se_gain=0.5).delivered == "length"
    assert fit._decide([0.75] * 3, [0.70] * 3, None, 12, se_gain=1.5).delivered == "calibrator"
    monkeypatch.setattr(fit, "DECISION", "min20")
    assert fit._decide([0.75] * 3, [0.70] * 3, None, 12).delivered == "length"
    assert fit._decide([0.75] * 3, [0.70] * 3, None, 20).delivered == "calibrator"


def test_the_decision_does_not_depend_on_the_fold_order(holistic: MarkScheme) -> None:
    scripts = synthetic_scripts(holistic, 20, seed=8, driver="vocabulary")
    decisions = {fit_calibrator(scripts[k:] + scripts[:k], holistic).objectives[0].cv.delivered for k in (0, 7, 13)}
    assert len(decisions) == 1, decisions


def test_a_calibrator_that_sees_beyond_length_is_used(holistic: MarkScheme) -> None:
    scripts = synthetic_scripts(holistic, 40, seed=2, driver="vocabulary")
    calibrator = fit_calibrator(scripts, holistic, ablations=True)
    (fit,) = calibrator.objectives
    assert fit.cv.calibrated_qwk is not None and fit.cv.word_count_qwk is not None
    assert fit.cv.calibrated_qwk > fit.cv.word_count_qwk + 0.2, fit.cv
    assert fit.used and calibrator.used and fit.cv.n_scripts == 40
    assert set(fit.cv.ablation) >= {"length", "vocabulary"}
    assert fit.cv.ablation["vocabulary"] is not None and fit.cv.ablation["vocabulary"] < fit.cv.calibrated_qwk
    held_out = synthetic_scripts(holistic, 24, seed=99, driver="vocabulary")
    predicted = [predict(calibrator, holistic, s.essay)["overall"] for s in held_out]
    errors = [abs(p - s.marks["overall"]) for p, s in zip(predicted, held_out, strict=True)]
    assert sum(errors) / len(errors) < 1.0, errors


def test_a_calibrator_sees_spelling(holistic: MarkScheme) -> None:
    scripts = synthetic_scripts(holistic, 40, seed=5, driver="spelling")
    calibrator = fit_calibrator(scripts, holistic, ablations=True)
    (fit,) = calibrator.objectives
    assert fit.used and fit.coef[fit.features.index("misspelled_share")] < 0, "chosen, and more errors mark lower"
    assert fit.cv.calibrated_qwk is not None and fit.cv.word_count_qwk is not None
    assert fit.cv.calibrated_qwk > fit.cv.word_count_qwk + 0.2, fit.cv
    # No ablation threshold here: a misspelt word is also a new word type, so type-token signals
    # partly stand in for the spelling signal when it is left out.
    assert "spelling" in fit.cv.ablation


def test_word_list_signals_count_misspellings_not_names() -> None:
    plain = lexicon_signals("The cat sat on the mat because it was warm.")
    assert plain["misspelled_share"] == 0.0
    misspelt = lexicon_signals("The cat sat on the mat becuase it was wrm.")
    assert misspelt["misspelled_share"] == pytest.approx(2 / 10)
    names = lexicon_signals("Stalin outwitted Zinoviev and Kamenev while @PERSON1 watched in 1924.")
    assert names["misspelled_share"] == 0.0, "capitalised names and anonymised tags are not misspellings"
    precise = lexicon_signals("Stalin consolidated bureaucratic patronage, outmanoeuvring ideological rivals.")
    assert precise["mean_word_zipf"] < plain["mean_word_zipf"] - 1.0, (precise, plain)
    assert lexicon_signals("") == {"misspelled_share": 0.0, "mean_word_zipf": 0.0}


def test_mechanics_signals_count_commas_and_small_capitals() -> None:
    def mechanics_signals(text: str) -> dict[str, float]:
        return {k: v for k, v in text_signals(text, "").items() if k in ("comma_rate", "capitalisation_errors")}

    signals = mechanics_signals("i think so, and i know it. then it rained, a lot, too. It is fine.")
    assert signals["comma_rate"] == pytest.approx(3 / 16)
    assert signals["capitalisation_errors"] == pytest.approx((2 + 1) / 3), "two sentences begun small, one more small i"
    clean = mechanics_signals("I think so. It's mine, I said. In Italy it rained.")
    assert clean["capitalisation_errors"] == 0.0, "words that start with i are not the pronoun"
    assert mechanics_signals("") == {"comma_rate": 0.0, "capitalisation_errors": 0.0}


def test_the_models_marks_are_a_signal_only_when_they_earn_their_place(holistic: MarkScheme) -> None:
    base = synthetic_scripts(holistic, 40, seed=3, driver="length")
    constant = [Script(s.essay, s.marks, llm_marks={"overall": 5}) for s in base]
    calibrator = fit_calibrator(constant, holistic, llm_model="tiny")
    assert not calibrator.needs_model_marks, "a model that gives every essay 5 adds nothing"
    assert calibrator.objectives[0].cv.llm_qwk in (None, 0.0)
    oracle = [
        Script(s.essay, s.marks, llm_marks=dict(s.marks)) for s in synthetic_scripts(holistic, 40, 4, "vocabulary")
    ]
    calibrator = fit_calibrator(oracle, holistic, llm_model="good")
    assert "llm_mark" in calibrator.objectives[0].features, calibrator.objectives[0].cv
    assert calibrator.objectives[0].cv.llm_qwk == 1.0
    cv = calibrator.objectives[0].cv
    assert cv.calibrated_qwk is not None and cv.calibrated_qwk > 0.98, cv
    assert cv.delivered == "calibrator", "the model's raw marks do not beat a fit that carries them by the margin"


def test_too_few_scripts_is_a_clear_error(holistic: MarkScheme) -> None:
    with pytest.raises(NotEnoughScriptsError, match=f"at least {MIN_SCRIPTS}"):
        fit_calibrator(synthetic_scripts(holistic, MIN_SCRIPTS - 1, 0, "length"), holistic)


def test_no_script_sees_its_own_mark_through_similarity() -> None:
    texts = ["alpha beta gamma delta", "alpha beta gamma delta", "omega sigma tau rho"]
    marks = [1, 6, 3]
    own_excluded = similarity_scores(texts, texts, marks, same=[0, 1, 2])
    assert own_excluded[0] == pytest.approx(6.0), "the twin's mark, not its own"
    assert own_excluded[1] == pytest.approx(1.0)
    with_self = similarity_scores(texts[:1], texts, marks, same=[-1])
    assert with_self[0] == pytest.approx(3.5)


def test_eval_splits_are_disjoint(holistic: MarkScheme) -> None:
    items = [
        EvalItem(id=f"e{i}", essay=f"essay {i}", scheme_id=holistic.id, human={"overall": 1 + i % 6}) for i in range(80)
    ]
    for sampling in ("random", "stratified"):
        parts = split(items, train=30, test=40, seed=5, sampling=sampling)  # type: ignore[arg-type]
        assert len(parts.train) == 30 and len(parts.test) == 40
        assert not {i.id for i in parts.train} & {i.id for i in parts.test}
    with pytest.raises(ValueError, match="the dataset has 80"):
        split(items, train=50, test=40, seed=0, sampling="random")


@pytest.mark.parametrize(
    ("gaming", "expected"),
    [
        ("repeated", "repeated sentence"),
        ("question", "copied from the question"),
        ("padding", "off the question's topic"),
        ("padding_inside_a_paragraph", "off the question's topic"),
        ("question_inline", "copied from the question"),
        ("question_boilerplate", "copied from the question"),
    ],
)
def test_gaming_does_not_raise_a_length_leaning_calibrated_mark(
    holistic: MarkScheme, gaming: str, expected: str
) -> None:
    import random

    from evals.robustness import OFF_TOPIC_PADDING

    scripts = synthetic_scripts(holistic, 60, seed=6, driver="length")
    calibrator = fit_calibrator(scripts, holistic, ablations=False)
    essay = synthetic_essay(2, random.Random(7), "length")
    gamed = {
        "repeated": essay + "\n\n" + essay,
        "question": holistic.question + "\n\n" + holistic.question + "\n\n" + essay,
        "padding": essay + "\n\n" + OFF_TOPIC_PADDING * 3,
        # Issue 21: 300 fluent words about football appended to the last paragraph, no blank line.
        "padding_inside_a_paragraph": essay + " " + OFF_TOPIC_PADDING * 3,
        "question_inline": essay + " " + holistic.question + " " + holistic.question,
        "question_boilerplate": essay + "\n\n(16 marks)\n\n(6 marks)",
    }[gaming]
    before = predict(calibrator, holistic, essay)["overall"]
    after = predict(calibrator, holistic, gamed)["overall"]
    assert after <= before, (gaming, before, after)
    assert any(
        expected in note for note in counted_text(gamed, holistic.question, calibrator.topic_vocabulary).discounted
    )


def test_counted_text_keeps_an_honest_essay_whole(holistic: MarkScheme) -> None:
    import random

    essay = synthetic_essay(4, random.Random(8), "vocabulary")
    counted = counted_text(essay, holistic.question, set(synthetic_essay(3, random.Random(9), "vocabulary").split()))
    assert counted.discounted == [] and counted.text.split() == essay.split()


def test_csv_and_jsonl_import_errors_name_the_line(stalin: MarkScheme, holistic: MarkScheme) -> None:
    good = "id,essay,AO1,AO2,AO3\ns1,An essay.,2,3,1\n"
    assert parse_csv(good, stalin)[0].marks == {"AO1": 2, "AO2": 3, "AO3": 1}
    with pytest.raises(CallerError, match=r"line 3: AO2 mark 9 is outside 0-6"):
        parse_csv(good + "s2,Another.,1,9,1\n", stalin)
    with pytest.raises(CallerError, match=r"line 2: AO3 mark 'x' is not a whole number"):
        parse_csv("essay,AO1,AO2,AO3\nText,1,1,x\n", stalin)
    with pytest.raises(CallerError, match=r"line 1: the CSV needs a column for each objective"):
        parse_csv("essay,AO1\nText,1\n", stalin)
    with pytest.raises(CallerError, match=r"line 2: the essay is empty"):
        parse_csv("essay,mark\n   ,3\n", holistic)
    assert parse_csv("student,essay,mark\nAnn,Text here.,4\n", holistic)[0].external_id == "Ann"
    line = '{"id": "a", "essay": "Text.", "scheme_id": "persuasive-holistic-6", "human": {"overall": 3}}'
    assert parse_jsonl(line + "\n", holistic)[0].marks == {"overall": 3}
    with pytest.raises(CallerError, match="line 2: not a JSON object"):
        parse_jsonl(line + "\n{nope\n", holistic)
    with pytest.raises(CallerError, match="line 1: scheme_id is 'other'"):
        parse_jsonl(line.replace("persuasive-holistic-6", "other"), holistic)
    with pytest.raises(CallerError, match="line 1: overall mark 9 is outside 1-6"):
        parse_jsonl(line.replace('"overall": 3', '"overall": 9'), holistic)
    with pytest.raises(CallerError, match="line 1: not a JSON object"):
        parse_jsonl("[" * 10000 + "]" * 10000, holistic)


async def test_calibrated_marks_are_explained_by_one_model_call(holistic: MarkScheme, settings: Settings) -> None:
    import random

    calibrator = fit_calibrator(synthetic_scripts(holistic, 40, seed=2, driver="vocabulary"), holistic)
    assert calibrator.used and not calibrator.needs_model_marks
    essay = synthetic_essay(5, random.Random(10), "vocabulary")
    expected = calibrate(calibrator, holistic, essay).marks["overall"]
    llm = FakeMarker(policy=lambda *_: 1, indicative_only=True)
    result = await mark_essay(essay, holistic, llm=llm, settings=settings, calibrator=calibrator)
    assert llm.calls == 1
    assert result.ao_marks[0].mark == expected and f"mark {expected}" in result.ao_marks[0].rationale
    info = result.provenance.calibration
    assert info.status == "calibrated" and info.version == calibrator.version and info.n_scripts == 40
    assert info.summary.startswith("calibrated on 40 of your marked scripts: tried on each script without seeing")
    assert "within one mark of yours 100% of the time" in info.summary
    assert "cross-validated agreement (QWK)" in info.summary
    assert "word count alone" in info.summary
    assert not result.has_flag(FlagCode.INDICATIVE_MODEL), "the marks are the calibrator's, not the small model's"


async def test_calibration_after_the_models_judgement_rewrites_its_feedback(
    holistic: MarkScheme, settings: Settings
) -> None:
    import random

    # The text says nothing about the mark; the model ranks the scripts right but over-marks
    # (5 or 6 for everything), as small models do: calibration maps its marks back onto the scale.
    rng = random.Random(12)
    scripts = []
    for i in range(60):
        mark = 1 + i % 6
        essay = synthetic_essay(rng.randint(1, 6), rng, "vocabulary")
        scripts.append(Script(essay, {"overall": mark}, llm_marks={"overall": 5 if mark <= 3 else 6}))
    calibrator = fit_calibrator(scripts, holistic, llm_model="fake-marker")
    assert calibrator.needs_model_marks and calibrator.used, calibrator.objectives[0].cv
    llm = FakeMarker(policy=lambda *_: 6)
    result = await mark_essay(
        synthetic_essay(3, rng, "vocabulary"), holistic, llm=llm, settings=settings, calibrator=calibrator
    )
    info = result.provenance.calibration
    assert info.uncalibrated_marks == {"overall": 6}
    mark = result.ao_marks[0].mark
    assert mark in (4, 5), "a 6 from this model means the upper half of the scale, not the top"
    assert llm.calls == 2, "the model wrote again for the calibrated mark"
    assert f"mark {mark}" in result.ao_marks[0].rationale and "mark 6" not in result.ao_marks[0].rationale


async def test_without_a_calibrator_the_result_says_it_is_uncalibrated(
    holistic: MarkScheme, settings: Settings
) -> None:
    result = await mark_essay("A short essay about uniforms. " * 20, holistic, llm=FakeMarker(), settings=settings)
    assert result.provenance.calibration.status == "uncalibrated"
    assert result.provenance.calibration.summary.startswith("uncalibrated")


async def test_an_unused_calibrator_leaves_the_models_marks_and_says_why(
    holistic: MarkScheme, settings: Settings
) -> None:
    same = [Script(s.essay, {"overall": 3}) for s in synthetic_scripts(holistic, 20, seed=1, driver="length")]
    calibrator = fit_calibrator(same, holistic)
    assert not calibrator.used
    llm = FakeMarker(policy=lambda *_: 2)
    result = await mark_essay(
        "Uniforms are a policy. " * 30, holistic, llm=llm, settings=settings, calibrator=calibrator
    )
    assert result.ao_marks[0].mark == 2 and llm.calls == 1
    info = result.provenance.calibration
    assert info.status == "not_used" and "do not vary enough" in info.summary


def test_signal_survey_finds_the_signal_that_carries_the_marks(holistic: MarkScheme) -> None:
    from evals.dataset import Dataset
    from evals.signal_survey import survey

    scripts = synthetic_scripts(holistic, 40, seed=11, driver="spelling")
    items = [EvalItem(id=f"s{n}", essay=s.essay, scheme_id=holistic.id, human=s.marks) for n, s in enumerate(scripts)]
    lines = survey(Dataset("synthetic", items, {holistic.id: holistic}))
    row = next(line for line in lines if line.startswith("| misspelled_share |"))
    _, rho, beyond, _ = (cell.strip() for cell in row.split("|")[1:])
    assert float(rho) < -0.7 and float(beyond) < -0.7, row
    assert "40 essays" in lines[0]


def test_padding_inside_a_paragraph_is_not_counted_and_the_students_sentences_are_kept(holistic: MarkScheme) -> None:
    from evals.robustness import OFF_TOPIC_PADDING

    own = (
        "Schools should ban mobile phones in lessons because phones distract students from learning. "
        "Teachers report that students check social media instead of listening. "
        "A ban would also protect students from cyberbullying during the school day."
    )
    vocabulary = {"school", "phone", "mobile", "student", "lesson", "teacher", "ban", "learning", "cyberbullying"}
    counted = counted_text(own + " " + OFF_TOPIC_PADDING * 3, holistic.question, vocabulary)
    assert counted.text == own, "the football is dropped, every sentence of the student's own is kept"
    assert counted.off_topic_sentences == 12 and "12 sentence(s) off the question's topic" in counted.discounted
    plain = own + " It matters. " + own.replace("Schools", "Colleges")
    assert "It matters." in counted_text(plain, holistic.question, vocabulary).text, "a short plain sentence stays"


def test_the_topic_is_what_the_exemplars_say_more_than_english_does() -> None:
    from service.calibration.text import content_words, key_vocabulary, topic_vocabulary

    body = (
        "Stalin outmanoeuvred Trotsky through the secretariat, appointing loyal officials to the party "
        "apparatus. The Politburo backed Stalin against Trotsky, Zinoviev and Kamenev in turn, and the "
        "Lenin enrolment filled the party with members grateful to the general secretary."
    )
    texts = [f"{body} Essay {n}." for n in range(60)]
    texts[3] += " It was a good plan."
    texts[7] += " Good or bad, it worked."
    tokens = sum(len(content_words(t)) for t in texts)
    assert tokens > 1000
    shared = topic_vocabulary(texts)
    key = key_vocabulary(texts)
    assert {"stalin", "trotsky", "politburo", "secretariat"} <= key
    assert "good" in shared, "two exemplars share it"
    assert "good" not in key, "but the exemplars use it no more than English does: not the topic"
