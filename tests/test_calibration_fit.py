"""The calibrator's numerics: numpy ridge, penalty and kappa agree with scikit-learn; bagged selection leaks nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import KFold, cross_val_predict

from schemas.scheme import MarkScheme
from service.calibration import fit


@pytest.mark.parametrize("seed", range(5))
def test_numpy_ridge_penalty_and_inner_scores_are_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(40, 3))
    y = np.clip(np.round(z @ [1.0, 0.5, 0.0] + rng.normal(size=40)) + 3, 0, 6).astype(np.int64)
    alpha = fit._loo_alpha(z, y.astype(float))
    assert alpha == float(RidgeCV(alphas=fit.ALPHAS).fit(z, y).alpha_)
    coef, intercept = fit._ridge(z, y.astype(float), alpha)
    reference = Ridge(alpha=alpha).fit(z, y)
    assert np.allclose(coef, reference.coef_) and intercept == pytest.approx(float(reference.intercept_))
    scores, chosen = fit._inner_scores(z, y, seed)
    folds = KFold(5, shuffle=True, random_state=seed)
    assert chosen == alpha
    assert np.allclose(scores, cross_val_predict(Ridge(alpha=alpha), z, y, cv=folds))


def test_numpy_kappa_is_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    labels = list(range(1, 7))
    for _ in range(50):
        a = [int(v) for v in rng.integers(1, 7, 30)]
        b = [int(np.clip(v + rng.integers(-2, 3), 1, 6)) for v in a]
        expected = cohen_kappa_score(a, b, labels=labels, weights="quadratic")
        assert fit._qwk(a, b, labels) == pytest.approx(float(expected), abs=1e-12)
    assert fit._qwk([3, 3, 3], [3, 3, 3], labels) is None, "no variation: no agreement to measure"


@pytest.mark.parametrize(
    ("a", "b"),
    [([3, 3, 3, 3], [2, 3, 4, 5]), ([1, 2, 4, 6], [4, 4, 4, 4]), ([6, 6, 6], [1, 6, 6])],
)
def test_kappa_with_one_constant_rater_is_zero_not_missing(a: list[int], b: list[int]) -> None:
    """One rater who gives every script the same mark agrees no better than chance: 0, not n/a."""
    labels = list(range(1, 7))
    assert fit._qwk(a, b, labels) == pytest.approx(0.0, abs=1e-12)
    assert float(cohen_kappa_score(a, b, labels=labels, weights="quadratic")) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("a", "b"), [([3, 3, 3], [3, 3, 3]), ([2, 2, 2, 2], [5, 5, 5, 5])])
def test_kappa_with_both_raters_constant_is_missing(a: list[int], b: list[int]) -> None:
    """Neither rater varies: there is no agreement to measure (None), whether or not they give the same mark."""
    assert fit._qwk(a, b, list(range(1, 7))) is None


def _data(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))  # columns 0 and 1 carry the marks; 2-5 are noise
    y = np.clip(np.round(1.2 * z[:, 0] + 0.8 * z[:, 1] + 0.5 * rng.normal(size=n)) + 3, 0, 6).astype(np.int64)
    return z, y


def test_a_scripts_out_of_bag_score_never_depends_on_its_own_mark() -> None:
    z, y = _data(1)
    labels = list(range(7))
    _, _, _, scores = fit._bagged(z, y, labels, seed=0, start=[0])
    for row in (0, 7, 23):
        changed = y.copy()
        changed[row] = 6 - changed[row]
        _, _, _, other = fit._bagged(z, changed, labels, seed=0, start=[0])
        assert other[row] == pytest.approx(scores[row]), f"script {row} was scored by a fit that saw its mark"
        assert not np.allclose(other, scores), "the other scripts' scores do see the change"


def test_bagged_selection_weights_the_signals_that_carry_the_marks() -> None:
    z, y = _data(2)
    model = fit._fit_linear(z, y, list(range(7)), seed=0, select=True, start=[0])
    assert model.coef[0] > 0.5 and model.coef[1] > 0.3, model.coef
    assert max(abs(c) for c in model.coef[2:]) < 0.25 * model.coef[0], model.coef
    again = fit._fit_linear(z, y, list(range(7)), seed=0, select=True, start=[0])
    assert np.array_equal(model.coef, again.coef) and model.cutpoints == again.cutpoints, "a fit is reproducible"


def test_the_leave_one_out_count_treats_a_script_as_unseen(
    holistic: MarkScheme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The development switch (measured, not kept): a sentence only two scripts share is topic when a script is
    counted with its own words, not otherwise."""
    from service.calibration.text import key_vocabularies_without_each, key_vocabulary

    topic = "The internet lets students research computers, software and online learning every evening."
    aside = (
        "Our goalkeeper saved a penalty and the striker scored a volley in the derby. "
        "The referee booked our captain, and the crowd sang loudly until the final whistle."
    )
    texts = [f"{topic} Essay {i} explains computers and software. " + (aside if i < 2 else "") for i in range(8)]
    assert all(
        v == key_vocabulary(texts[:i] + texts[i + 1 :]) for i, v in enumerate(key_vocabularies_without_each(texts))
    )
    scripts = [fit.Script(t, {"overall": i % 4 + 1}) for i, t in enumerate(texts)]
    assert "goalkeeper" in fit.prepare(scripts, holistic).counted[0], "the product counts a script with its own words"
    monkeypatch.setattr(fit, "LEAVE_ONE_OUT", True)
    prepared = fit.prepare(scripts, holistic)
    assert "goalkeeper" not in prepared.counted[0], "the aside was counted because the script's own words allowed it"
    assert "goalkeeper" in prepared.vocabulary, "the vocabulary stored for new essays still comes from all scripts"
    assert "computers" in prepared.counted[0]
