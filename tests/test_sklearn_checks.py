"""scikit-learn's common estimator checks, with no expected failures.

The instances are small so the ~55 checks per estimator run in seconds: an
8-wide black-box layer, rank 2, 4 ZO directions, 5 epochs. ``lr=0.02``
lets ``check_regressors_train`` and ``check_classifiers_train`` reach their
score thresholds (R^2 > 0.5, accuracy > 0.83) in those few epochs, so the
``poor_score`` tags stay off.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skhybrid import HybridClassifier, HybridRegressor

SMALL = dict(hidden_units=8, rank=2, zo_samples=4, max_epochs=5, lr=0.02)

ESTIMATORS = [
    HybridClassifier(black_box="slm", **SMALL),
    HybridRegressor(black_box="slm", **SMALL),
    # The black box as the first layer sees the raw feature count, down to
    # check_fit2d_1feature's single column (the rank is then clipped to 1).
    HybridClassifier(black_box="mrr", architecture="front", **SMALL),
    # Here only the zeroth-order estimate trains the first layer: a faster
    # device step makes up for 4 directions in 5 epochs (R^2 0.46 -> 0.68).
    HybridRegressor(black_box="matrix", architecture="front", **{**SMALL, "black_box_lr": 0.05}),
    HybridClassifier(black_box="digital", **SMALL),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
