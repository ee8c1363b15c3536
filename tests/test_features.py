"""Tests of skhybrid.features: log-mel and MFCC maps, framing, pooling, the transformer."""

import numpy as np
import pytest
from sklearn.base import clone

pytest.importorskip("librosa")

from skhybrid.features import (AudioFeatures, fix_frames, log_mel_spectrogram,  # noqa: E402
                               mfcc, pool_frames)

RATE = 8000


def _tone(freq, seconds=0.5):
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_shape_range_and_dtype():
    S = log_mel_spectrogram(_tone(500), RATE, n_mels=32, hop_length=128, top_db=80)
    assert S.dtype == np.float32
    assert S.shape[0] == 32 and S.shape[1] == 4000 // 128 + 1
    assert S.max() == pytest.approx(0.0, abs=1e-4) and S.min() >= -80 - 1e-4


def test_log_mel_peak_follows_the_tone():
    low = log_mel_spectrogram(_tone(300), RATE).mean(axis=1).argmax()
    high = log_mel_spectrogram(_tone(2500), RATE).mean(axis=1).argmax()
    assert high > low + 5


def test_loudness_is_removed():
    # Referenced to its own peak: the same sound 20 dB quieter gives the same map.
    loud, quiet = _tone(700), 0.1 * _tone(700)
    np.testing.assert_allclose(log_mel_spectrogram(loud), log_mel_spectrogram(quiet), atol=1e-3)


def test_silence_and_short_input():
    S = log_mel_spectrogram(np.zeros(100), RATE, top_db=60)
    assert np.all(S == -60)


def test_mfcc_shape():
    C = mfcc(_tone(440), RATE, n_mfcc=13)
    assert C.shape[0] == 13 and np.isfinite(C).all()


def test_fix_frames_crop_and_pad():
    F = np.arange(20, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(fix_frames(F, 4), F[:, 3:7])
    padded = fix_frames(F, 14)
    assert padded.shape == (2, 14)
    np.testing.assert_array_equal(padded[:, 2:12], F)
    assert np.all(padded[:, :2] == F.min())
    assert np.all(fix_frames(F, 12, fill=-80.0)[:, 0] == -80.0)


def test_pool_frames():
    F = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(pool_frames(F), [2.0, 2.0, 1.0, 0.0])


def test_audio_features_transformer():
    waves = [_tone(f, s) for f, s in ((300, 0.3), (900, 0.9), (1500, 0.5))]
    seq = AudioFeatures(n_bands=16, n_frames=20)
    X = seq.fit_transform(waves)
    assert X.shape == (3, 16 * 20) and X.dtype == np.float32
    assert seq.feature_shape() == (16, 20) and seq.n_features_out_ == 320
    assert len(seq.get_feature_names_out()) == 320
    pooled = clone(AudioFeatures(n_bands=16, pooling="meanstd"))
    P = pooled.fit_transform(waves)
    assert P.shape == (3, 32)
    # Different tones give different features.
    assert np.linalg.norm(P[0] - P[2]) > 1.0
    m = AudioFeatures(kind="mfcc", n_bands=13, pooling="meanstd").fit_transform(waves)
    assert m.shape == (3, 26)


@pytest.mark.parametrize("params, match", [({"kind": "stft"}, "kind"),
                                           ({"pooling": "max"}, "pooling"),
                                           ({"n_frames": 0}, "n_frames")])
def test_audio_features_invalid(params, match):
    with pytest.raises(ValueError, match=match):
        AudioFeatures(**params).fit([_tone(400)])
