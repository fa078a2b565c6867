"""Statistics used to report results, checked against textbook / reference values."""

import math

import pytest

from hf_reason.evaluation.statistics import (
    auroc,
    benjamini_hochberg,
    cohens_h,
    format_proportion,
    mcnemar_exact,
    mcnemar_from_outcomes,
    paired_sign_flip_p,
    wilson_interval,
)


def test_wilson_interval_matches_reference_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 .. 0.3662; 0/10 -> 0 .. 0.2775
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert format_proportion(1, 2).startswith("50.0%")


def test_mcnemar_exact_is_the_two_sided_binomial_tail():
    # b=1, c=9: 2 * (C(10,0) + C(10,1)) / 2**10 = 22 / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024, rel=1e-12)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(5, 5) == 1.0  # capped at one
    assert mcnemar_exact(0, 0) == 1.0
    # scipy.stats.binomtest(2, 14, 0.5).pvalue == 0.012939453125
    assert mcnemar_exact(2, 12) == pytest.approx(0.012939453125, rel=1e-12)
    # large counts stay exact (no float underflow)
    assert 0 < mcnemar_exact(100, 1500) < 1e-200
    with pytest.raises(ValueError, match="b and c"):
        mcnemar_exact(-1, 3)


def test_mcnemar_from_outcomes_counts_only_discordant_pairs():
    a = [True, True, False, False, True]
    b = [True, False, True, False, False]
    assert mcnemar_from_outcomes(a, b)[:2] == (2, 1)
    with pytest.raises(ValueError, match="pair up"):
        mcnemar_from_outcomes([True], [True, False])


def test_benjamini_hochberg_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    adjusted, rejected = benjamini_hochberg(p, alpha=0.05)
    # sorted: .005 .01 .03 .04 .2 -> m*p/rank: .025 .025 .05 .05 .2 -> running min from the top
    assert adjusted == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])
    assert rejected == [True, True, True, True, False]
    # R: p.adjust(c(0.02, 0.03, 0.04), "BH") = 0.04 0.04 0.04
    assert benjamini_hochberg([0.02, 0.03, 0.04])[0] == pytest.approx([0.04, 0.04, 0.04])
    assert benjamini_hochberg([]) == ([], [])
    with pytest.raises(ValueError, match="p_values"):
        benjamini_hochberg([1.5])


def test_cohens_h_reference_values():
    assert cohens_h(0.5, 0.5) == 0.0
    # Cohen (1988): h between 0.6 and 0.4 is ~0.4027
    assert cohens_h(0.6, 0.4) == pytest.approx(0.402716, abs=1e-6)
    assert cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    with pytest.raises(ValueError, match="p2"):
        cohens_h(0.5, 1.2)


def test_paired_sign_flip_p_is_exact_on_a_small_case_and_refuses_bad_input():
    # three equal positive differences: of the 8 sign assignments, 2 reach |mean| = 1 (all +, all -)
    assert paired_sign_flip_p([1.0, 1.0, 1.0], samples=20000) == pytest.approx(2 / 8, abs=0.015)
    assert paired_sign_flip_p([0.0, 0.0]) == 1.0 and paired_sign_flip_p([]) == 1.0
    # forty consistent improvements: p at its floor 1 / (samples + 1)
    assert paired_sign_flip_p([0.5] * 40, samples=999) == pytest.approx(1 / 1000)
    # symmetric differences carry no evidence
    assert paired_sign_flip_p([1.0, -1.0] * 10, samples=999) == 1.0
    with pytest.raises(ValueError, match="samples must be an int >= 1"):
        paired_sign_flip_p([1.0], samples=0)
    with pytest.raises(ValueError, match="finite"):
        paired_sign_flip_p([1.0, float("nan")])


def test_auroc_counts_ties_as_half_and_refuses_bad_input():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    # pairs (positive, negative): 0.5 vs 0.5 a tie (1/2), 0.5 vs 0.4 won, 0.3 lost twice: 1.5 / 4
    assert auroc([0.5, 0.3, 0.5, 0.4], [1, 1, 0, 0]) == pytest.approx(0.375)
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    with pytest.raises(ValueError, match="equal length"):
        auroc([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="booleans"):
        auroc([0.1, 0.2], [2, 0])
