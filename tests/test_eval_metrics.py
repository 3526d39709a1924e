from __future__ import annotations

import random

import pytest

from evals.metrics import agreement, quadratic_weighted_kappa, stability, standardised_mean_difference


def test_qwk_hand_computed() -> None:
    # a = [0,1,2], b = [0,2,2], labels 0..2. Weights w_ij = (i-j)^2/4.
    # Observed: (0,0),(1,2),(2,2) -> sum w*O = 0.25 (one cell (1,2)) / 3 = 0.0833
    # Expected: row marginals [1,1,1], col marginals [1,0,2] / 3 each: E_ij = r_i c_j / 3
    #   sum w*E = (1/3)[ (0,1)w.25*0 + (0,2)w1*2 + (1,0)w.25*1 + (1,2)w.25*2 + (2,0)w1*1 + (2,1)*0 ] / 3
    #          = (2 + .25 + .5 + 1) / 9 = 0.41667
    # QWK = 1 - 0.0833 / 0.41667 = 0.8
    assert quadratic_weighted_kappa([0, 1, 2], [0, 2, 2], [0, 1, 2]) == pytest.approx(0.8)
    assert quadratic_weighted_kappa([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)


def test_agreement_figures() -> None:
    human = [1, 2, 3, 4]
    machine = [2, 2, 3, 1]
    stats = agreement(human, machine, [1, 2, 3, 4])
    assert stats.exact == 0.5 and stats.adjacent == 0.75 and stats.mae == pytest.approx(1.0)
    assert stats.confusion[3][0] == 1 and stats.n == 4
    assert stats.mean_a == 2.5 and stats.mean_b == 2.0


def test_smd_sign_and_size() -> None:
    # human sd = pstdev([1,2,3]) = 0.8165, machine = human + 1 -> same sd -> smd = 1 / 0.8165
    assert standardised_mean_difference([1, 2, 3], [2, 3, 4]) == pytest.approx(1.2247, abs=1e-4)
    assert standardised_mean_difference([2, 2], [2, 2]) is None


def test_undefined_values_are_none_not_nan() -> None:
    stats = agreement([2, 2, 2], [2, 2, 2], [1, 2, 3])
    assert stats.pearson is None and stats.smd is None and stats.exact == 1.0


def test_stability() -> None:
    s = stability({"a": [3, 3, 3], "b": [1, 3, 2]}, {"a": [False] * 3, "b": [True, False, False]})
    assert s.essays == 2 and s.repeats == 3 and s.exact_all_repeats == 0.5
    assert s.mean_std == pytest.approx((0 + 0.8165) / 2, abs=1e-4)
    assert s.needs_review_share == pytest.approx(1 / 6)


def test_paired_qwk_difference_interval() -> None:
    from evals.metrics import paired_qwk_difference

    rng = random.Random(5)
    human = [rng.randint(1, 6) for _ in range(80)]
    noisy = [min(6, max(1, h + rng.choice([-2, -1, 0, 1, 2]))) for h in human]
    same = paired_qwk_difference(human, noisy, noisy, list(range(1, 7)))
    assert same is not None and same.difference == 0 and same.low == same.high == 0
    better = paired_qwk_difference(human, noisy, human, list(range(1, 7)))
    assert better is not None and better.n == 80
    assert 0 < better.low <= better.difference <= better.high, better
    assert paired_qwk_difference([3, 3, 3], [3, 3, 3], [3, 3, 3], list(range(1, 7))) is None
