"""Issue 21, defect 1: calibrated marks stay inside the marks the teacher's scripts were given.

Distribution-matched cut-points put every mark above the highest training mark at one score, so
an essay scoring above every marked script used to get full marks (62 of 1,700 real test
markings: all 16/16 where no human gave more than 12).
"""

from __future__ import annotations

import math
import random

from schemas.scheme import MarkScheme
from service.calibration.apply import calibrate, predict
from service.calibration.fit import Script, fit_calibrator, sceptic_marks, word_count_marks
from tests.calibration_support import synthetic_essay


def test_the_issues_repro_no_longer_gives_full_marks() -> None:
    train = ["word " * n for n in (20, 40, 60, 80, 100, 120, 140, 160, 180, 200)]
    marks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 8]
    # The sceptic's plain regression (what word count means now) extrapolates along its line: 210 words is 8.
    assert word_count_marks(train, marks, ["word " * 210], list(range(17))) == [8]


def test_the_sceptic_is_least_squares_rounded_and_clipped() -> None:
    from sklearn.linear_model import LinearRegression

    rng = random.Random(2)
    counts = [rng.randint(50, 600) for _ in range(40)]
    marks = [min(16, max(0, round(math.log1p(n) * 3 - 10 + rng.gauss(0, 1.5)))) for n in counts]
    test = [1, 80, 300, 5000, 100000]
    line = LinearRegression().fit([[math.log1p(n)] for n in counts], marks)
    expected = [int(min(16, max(0, round(v)))) for v in line.predict([[math.log1p(n)] for n in test])]
    assert sceptic_marks(counts, marks, test, list(range(17))) == expected
    assert expected[-1] == 16 and expected[0] == 0, "the clip to the scale is exercised"


def test_a_calibrated_mark_stays_near_the_marked_scripts_range_and_is_flagged_outside(holistic: MarkScheme) -> None:
    rng = random.Random(5)
    scripts = [Script(essay=synthetic_essay(mark, rng, "length"), marks={"overall": mark}) for mark in (2, 3) * 9]
    calibrator = fit_calibrator(scripts, holistic)
    fit = calibrator.objective("overall")
    assert fit.seen == [2, 3] and fit.cv.delivered == "length" and fit.reach == 2
    assert fit.mark_for(1e9) == 5 and fit.mark_for(-1e9) == 1, "at most two marks outside (1 is the scale's floor)"
    longest = synthetic_essay(6, rng, "length")
    above = calibrate(calibrator, holistic, longest)
    assert above.marks["overall"] > 3 and "outside the marks of your marked scripts (2-3)" in above.review_reasons[0]
    inside = calibrate(calibrator, holistic, synthetic_essay(3, rng, "length"))
    assert not any("outside" in r for r in inside.review_reasons)
    matched = fit_calibrator(scripts, holistic, decide=False).objective("overall")
    assert matched.reach == 0 and matched.mark_for(1e9) == 3, "matched cut-points cannot extrapolate: held at the edge"
    assert fit.model_copy(update={"seen": None}).mark_for(1e9) == 6, "fits stored before the bound keep their cuts"
    assert predict(calibrator, holistic, longest)["overall"] == above.marks["overall"]


def test_the_sentence_beside_a_mark_speaks_plainly(holistic: MarkScheme) -> None:
    from service.calibration.apply import summary
    from service.calibration.fit import _cross_validate, prepare

    scripts = [Script(essay=synthetic_essay(m, random.Random(m * 7 + i), "length"), marks={"overall": m})
               for i in range(4) for m in (1, 2, 3, 4, 5)]  # fmt: skip
    fit = fit_calibrator(scripts, holistic).objective("overall")
    assert fit.cv.delivered == "length"
    y = [s.marks["overall"] for s in scripts]
    runs = [_cross_validate(("log_words",), prepare(scripts, holistic), scripts, "overall", list(range(1, 7)), k)
            for k in (0, 1, 2)]  # fmt: skip
    within = sum(abs(p - t) <= 1 for r in runs for p, t in zip(r, y, strict=True)) / (len(y) * 3)
    assert fit.cv.delivered_within_one == within
    text = summary(fit, len(scripts), fit.used)
    assert f"within one mark of yours {within:.0%} of the time" in text and "marking by length alone" in text
