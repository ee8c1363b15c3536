"""Audio features for the black-box networks: log-mel spectrograms and MFCCs.

The spectral work is done by librosa (the ``audio`` extra: ``pip install
'skhybrid[audio]'``). :class:`AudioFeatures` is a scikit-learn transformer
from a list of waveforms to a fixed-width feature matrix, either a
fixed-length sequence of frames (for a convolutional network) or per-band
statistics pooled over time (for an MLP), so it can sit in a ``Pipeline``
in front of a :class:`~skhybrid.HybridClassifier`.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["AudioFeatures", "fix_frames", "log_mel_spectrogram", "mfcc", "pool_frames"]


def _librosa():
    try:
        import librosa
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "audio features need librosa: pip install 'skhybrid[audio]'") from exc
    return librosa


def log_mel_spectrogram(waveform, sample_rate=8000, *, n_mels=32, n_fft=256, hop_length=128,
                        fmin=0.0, fmax=None, top_db=80.0):
    """Log-mel power spectrogram in dB relative to the recording's peak.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
    sample_rate : int, default=8000
    n_mels : int, default=32
        Mel bands.
    n_fft : int, default=256
        Window length in samples (32 ms at 8 kHz).
    hop_length : int, default=128
        Frame step in samples (16 ms at 8 kHz).
    fmin, fmax : float, default=0 and None (the Nyquist frequency)
    top_db : float, default=80
        Floor below the peak: values lie in ``[-top_db, 0]``.

    Returns
    -------
    ndarray of shape (n_mels, n_frames), float32

    Notes
    -----
    Referencing each recording to its own peak removes the loudness of the
    speaker and microphone, which otherwise separates the voices more than
    the words do.
    """
    librosa = _librosa()
    y = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    power = librosa.feature.melspectrogram(
        y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
        fmin=fmin, fmax=fmax, power=2.0)
    peak = float(power.max())
    if not peak > 0:
        return np.full(power.shape, -float(top_db), dtype=np.float32)
    db = librosa.power_to_db(power, ref=peak, top_db=top_db)
    return np.asarray(db, dtype=np.float32)


def mfcc(waveform, sample_rate=8000, *, n_mfcc=20, n_mels=40, **mel_options):
    """Mel-frequency cepstral coefficients, shape (n_mfcc, n_frames), float32.

    The DCT-II (orthonormal) of :func:`log_mel_spectrogram` with ``n_mels``
    bands; ``mel_options`` go there.
    """
    librosa = _librosa()
    db = log_mel_spectrogram(waveform, sample_rate, n_mels=n_mels, **mel_options)
    return np.asarray(librosa.feature.mfcc(S=db, n_mfcc=n_mfcc), dtype=np.float32)


def fix_frames(features, n_frames, fill=None):
    """Centre-crop or centre-pad a (n_bands, T) feature map to ``n_frames`` frames.

    Parameters
    ----------
    features : ndarray of shape (n_bands, T)
    n_frames : int
    fill : float or None, default=None
        Padding value; ``None`` pads with the map's minimum (silence for a
        log spectrogram).
    """
    features = np.asarray(features)
    T = features.shape[1]
    if T >= n_frames:
        start = (T - n_frames) // 2
        return features[:, start:start + n_frames]
    fill = float(features.min()) if fill is None else float(fill)
    left = (n_frames - T) // 2
    out = np.full((features.shape[0], n_frames), fill, dtype=features.dtype)
    out[:, left:left + T] = features
    return out


def pool_frames(features):
    """Per-band mean and standard deviation over time: shape (2 * n_bands,)."""
    features = np.asarray(features, dtype=np.float64)
    return np.concatenate([features.mean(axis=1), features.std(axis=1)]).astype(np.float32)


class AudioFeatures(TransformerMixin, BaseEstimator):
    """Waveforms -> fixed-width log-mel or MFCC features (a stateless transformer).

    Parameters
    ----------
    kind : {"logmel", "mfcc"}, default="logmel"
    n_bands : int, default=32
        Mel bands (``"logmel"``) or coefficients (``"mfcc"``).
    n_frames : int, default=48
        Sequence length (``pooling=None``): each recording is centre-cropped
        or padded with silence to this many frames (48 frames of 16 ms cover
        0.77 s; 95% of FSDD is shorter than 0.67 s).
    pooling : {None, "meanstd"}, default=None
        ``None`` returns the flattened ``(n_bands, n_frames)`` sequence;
        ``"meanstd"`` the per-band mean and standard deviation over every
        frame of the recording, ``2 * n_bands`` values.
    sample_rate : int, default=8000
        Used when :meth:`transform` is not given one.
    n_fft : int, default=256
    hop_length : int, default=128
    fmin : float, default=0.0
    fmax : float or None, default=None
    top_db : float, default=80.0
    n_mels : int, default=40
        Mel bands under the MFCCs (``kind="mfcc"`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from skhybrid.features import AudioFeatures
    >>> waves = [np.sin(np.arange(4000) * f) for f in (0.3, 0.6)]
    >>> AudioFeatures(pooling="meanstd").fit_transform(waves).shape  # doctest: +SKIP
    (2, 64)
    """

    def __init__(self, kind="logmel", n_bands=32, n_frames=48, pooling=None, sample_rate=8000,
                 n_fft=256, hop_length=128, fmin=0.0, fmax=None, top_db=80.0, n_mels=40):
        self.kind = kind
        self.n_bands = n_bands
        self.n_frames = n_frames
        self.pooling = pooling
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.top_db = top_db
        self.n_mels = n_mels

    def _check(self):
        if self.kind not in ("logmel", "mfcc"):
            raise ValueError(f'kind must be "logmel" or "mfcc"; got {self.kind!r}')
        if self.pooling not in (None, "meanstd"):
            raise ValueError(f'pooling must be None or "meanstd"; got {self.pooling!r}')
        for name in ("n_bands", "n_frames", "n_fft", "hop_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")

    def feature_shape(self):
        """``(n_bands, n_frames)`` for sequences, ``(2 * n_bands,)`` when pooled."""
        return (2 * self.n_bands,) if self.pooling else (self.n_bands, self.n_frames)

    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned."""
        self._check()
        self.n_features_out_ = int(np.prod(self.feature_shape()))
        return self

    def transform_one(self, waveform, sample_rate=None):
        """The feature map of one waveform, shape :meth:`feature_shape`."""
        rate = self.sample_rate if sample_rate is None else sample_rate
        options = dict(n_fft=self.n_fft, hop_length=self.hop_length, fmin=self.fmin,
                       fmax=self.fmax, top_db=self.top_db)
        if self.kind == "logmel":
            fmap = log_mel_spectrogram(waveform, rate, n_mels=self.n_bands, **options)
        else:
            fmap = mfcc(waveform, rate, n_mfcc=self.n_bands, n_mels=self.n_mels, **options)
        if self.pooling == "meanstd":
            return pool_frames(fmap)
        fill = -float(self.top_db) if self.kind == "logmel" else None
        return fix_frames(fmap, self.n_frames, fill=fill)

    def transform(self, X, sample_rate=None):
        """Features of every waveform in ``X`` (a list of 1-D arrays).

        Returns
        -------
        ndarray of shape (n_waveforms, prod(feature_shape())), float32
        """
        self._check()
        return np.stack([self.transform_one(w, sample_rate).reshape(-1) for w in X]).astype(
            np.float32)

    def fit_transform(self, X, y=None, sample_rate=None):
        return self.fit(X, y).transform(X, sample_rate=sample_rate)

    def get_feature_names_out(self, input_features=None):
        if self.pooling:
            return np.array([f"{stat}{b}" for stat in ("mean", "std")
                             for b in range(self.n_bands)], dtype=object)
        return np.array([f"band{b}_t{t}" for b in range(self.n_bands)
                         for t in range(self.n_frames)], dtype=object)
