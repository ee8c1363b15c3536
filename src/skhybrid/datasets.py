"""Offline loaders for the benchmark data: digits, FSDD audio, Tiny Shakespeare (and CIFAR-10).

Where the data lives is one setting, the *data home*
(:func:`get_data_home`): the ``data_home`` argument of a loader, else the
environment variable ``SKHYBRID_DATA``, else a ``shared/data`` folder next to
the source checkout (``<repo>/../shared/data``), else ``~/skhybrid_data``.
Inside it each dataset has its own folder:

=========================  ==============================================
``fsdd/recordings/*.wav``   Free Spoken Digit Dataset, 3,000 WAVs at 8 kHz
``tinyshakespeare/input.txt``  Tiny Shakespeare, 1,115,394 characters
``cifar10/``                CIFAR-10 as torchvision stores it
=========================  ==============================================

A loader whose files are missing downloads them from the public source when
``download_if_missing=True`` (the default, as in scikit-learn's fetchers),
and raises ``FileNotFoundError`` naming the folder otherwise. Nothing is
ever written into a data home that already holds the data: computed audio
features are cached in the user's cache folder (:func:`get_cache_home`), so
a read-only shared copy works.
"""

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "DATA_ENV",
    "CACHE_ENV",
    "FSDD_SPEAKERS",
    "fetch_fsdd",
    "fetch_tinyshakespeare",
    "get_cache_home",
    "get_data_home",
    "load_cifar10",
    "load_digits",
    "load_fsdd",
    "load_fsdd_waveforms",
    "load_tinyshakespeare",
]

#: Environment variable naming the data home.
DATA_ENV = "SKHYBRID_DATA"
#: Environment variable naming the cache folder (computed features).
CACHE_ENV = "SKHYBRID_CACHE"

#: The six FSDD speakers (snapshot v1.0.10+27), in a fixed order.
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)

_FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


# ------------------------------------------------------------------ folders
def get_data_home(data_home=None):
    """The folder the loaders read datasets from.

    Parameters
    ----------
    data_home : str or path-like or None, default=None
        An explicit folder. ``None`` looks, in order, at the environment
        variable ``SKHYBRID_DATA``, at ``<repo>/../shared/data`` when that
        exists (a source checkout next to a shared data copy), and finally
        at ``~/skhybrid_data``.

    Returns
    -------
    pathlib.Path
        The folder (it need not exist yet).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return Path("~/skhybrid_data").expanduser()


def get_cache_home(cache_home=None):
    """The folder computed features are cached in (never the data home).

    ``cache_home``, else the environment variable ``SKHYBRID_CACHE``, else
    ``$XDG_CACHE_HOME/skhybrid`` (``~/.cache/skhybrid``).
    """
    if cache_home is not None:
        return Path(cache_home).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "skhybrid"


# ------------------------------------------------------------------- digits
def load_digits(*, test_size=0.2, random_state=0):
    """scikit-learn's handwritten digits (1,797 images of 8 x 8), split stratified.

    Parameters
    ----------
    test_size : float, default=0.2
        Share of the images held out.
    random_state : int, default=0
        Seed of the split.

    Returns
    -------
    Bunch
        ``X_train``, ``X_test`` (float32, shape (n, 64), pixel values 0-16),
        ``y_train``, ``y_test`` (int64), ``image_shape`` ``(1, 8, 8)`` and
        ``target_names``.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    X, y = _sk_load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32), y.astype(np.int64), test_size=test_size,
        random_state=random_state, stratify=y)
    return Bunch(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
                 image_shape=(1, 8, 8), target_names=np.arange(10),
                 DESCR="scikit-learn digits: 8x8 grey images of handwritten digits, 10 classes")


# ----------------------------------------------------------------- CIFAR-10
def load_cifar10(data_home=None, *, download_if_missing=False, n_train=None, n_test=None):
    """CIFAR-10 through torchvision (``pip install torchvision``), flattened.

    Parameters
    ----------
    data_home : path-like or None, default=None
        See :func:`get_data_home`; the images live in ``<data_home>/cifar10``.
    download_if_missing : bool, default=False
        Let torchvision download the 170 MB archive.
    n_train, n_test : int or None, default=None
        Keep only the first this many images of each split.

    Returns
    -------
    Bunch
        ``X_train``, ``X_test`` (float32 in [0, 1], shape (n, 3072), channel
        first), ``y_train``, ``y_test``, ``image_shape`` ``(3, 32, 32)``.
    """
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as exc:  # pragma: no cover - optional path
        raise ImportError("load_cifar10 needs torchvision: pip install torchvision") from exc
    root = get_data_home(data_home) / "cifar10"
    out = {}
    for split, train, n in (("train", True, n_train), ("test", False, n_test)):
        ds = CIFAR10(str(root), train=train, download=download_if_missing)
        images = np.asarray(ds.data[:n], dtype=np.float32) / 255.0
        out[f"X_{split}"] = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        out[f"y_{split}"] = np.asarray(ds.targets[:n], dtype=np.int64)
    return Bunch(**out, image_shape=(3, 32, 32), target_names=np.arange(10),
                 DESCR="CIFAR-10: 32x32 colour images, 10 classes")


# --------------------------------------------------------------------- FSDD
def fetch_fsdd(data_home=None, *, download_if_missing=True):
    """The folder of the FSDD recordings, downloaded if missing.

    Parameters
    ----------
    data_home : path-like or None, default=None
        See :func:`get_data_home`; the recordings are
        ``<data_home>/fsdd/recordings/{digit}_{speaker}_{index}.wav``.
    download_if_missing : bool, default=True
        Download the public repository archive (about 10 MB, from
        ``FSDD_URL``) and keep only its ``recordings`` folder.

    Returns
    -------
    pathlib.Path
        The ``recordings`` folder.
    """
    folder = get_data_home(data_home) / "fsdd"
    recordings = folder / "recordings"
    if recordings.is_dir() and any(recordings.glob("*.wav")):
        return recordings
    if not download_if_missing:
        raise FileNotFoundError(
            f"FSDD recordings not found in {recordings}; set {DATA_ENV} or data_home to the "
            "folder holding fsdd/recordings, or pass download_if_missing=True")
    _download_fsdd(folder)  # pragma: no cover - network
    return recordings  # pragma: no cover


def _download_fsdd(folder):  # pragma: no cover - network, never run in tests
    folder.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(FSDD_URL, timeout=120) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    target = folder / "recordings"
    tmp = Path(tempfile.mkdtemp(dir=folder))
    for name in archive.namelist():
        parts = name.split("/")
        if len(parts) >= 2 and parts[-2] == "recordings" and parts[-1].endswith(".wav"):
            (tmp / parts[-1]).write_bytes(archive.read(name))
        elif parts[-1] == "metadata.py":
            (folder / "metadata.py").write_bytes(archive.read(name))
    shutil.move(str(tmp), str(target))


def _fsdd_index(recordings):
    """Sorted (path, digit, speaker, index) of every recording."""
    rows = []
    for path in recordings.iterdir():
        match = _FSDD_NAME.match(path.name)
        if match:
            rows.append((path, int(match[1]), match[2], int(match[3])))
    rows.sort(key=lambda r: (r[2], r[1], r[3]))
    if not rows:
        raise FileNotFoundError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) in "
                                f"{recordings}")
    return rows


def load_fsdd_waveforms(data_home=None, *, download_if_missing=True):
    """Every FSDD recording as a float32 waveform at 8 kHz.

    Needs ``soundfile`` (the ``audio`` extra).

    Returns
    -------
    Bunch
        ``waveforms`` (list of 1-D float32 arrays in [-1, 1]), ``target``
        (the spoken digit), ``speaker`` (str), ``index`` (0-49, the take),
        ``filenames`` and ``sample_rate`` (8000). Sorted by speaker, digit,
        take.
    """
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("reading FSDD needs soundfile: pip install 'skhybrid[audio]'") from exc
    rows = _fsdd_index(fetch_fsdd(data_home, download_if_missing=download_if_missing))
    waveforms, rates = [], set()
    for path, *_ in rows:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
        if data.ndim > 1:
            data = data.mean(axis=1)
        waveforms.append(data)
        rates.add(rate)
    if len(rates) != 1:
        raise ValueError(f"FSDD recordings have mixed sample rates {sorted(rates)}")
    return Bunch(
        waveforms=waveforms,
        target=np.array([r[1] for r in rows], dtype=np.int64),
        speaker=np.array([r[2] for r in rows]),
        index=np.array([r[3] for r in rows], dtype=np.int64),
        filenames=np.array([r[0].name for r in rows]),
        sample_rate=rates.pop(),
    )


def fsdd_split(speaker, index, split="customary", test_speaker="theo"):
    """Boolean test mask of an FSDD split.

    ``"customary"``: takes 0-4 of every speaker and digit are the test set
    (300 recordings). ``"speaker"``: every recording of ``test_speaker`` is
    the test set (500), so the model never heard the test voice.
    """
    speaker, index = np.asarray(speaker), np.asarray(index)
    if split == "customary":
        return index < 5
    if split == "speaker":
        if test_speaker not in set(speaker.tolist()):
            raise ValueError(f"test_speaker must be one of {sorted(set(speaker.tolist()))}; "
                             f"got {test_speaker!r}")
        return speaker == test_speaker
    raise ValueError(f'split must be "customary" or "speaker"; got {split!r}')


def load_fsdd(split="customary", *, features="logmel", pooled=False, test_speaker="theo",
              data_home=None, cache=True, cache_home=None, download_if_missing=True,
              **feature_options):
    """FSDD as audio features, split into train and test sets.

    Parameters
    ----------
    split : {"customary", "speaker"}, default="customary"
        ``"customary"``: takes 0-4 of each speaker and digit are the test set
        (2,700 train, 300 test). ``"speaker"``: ``test_speaker``'s 500
        recordings are the test set, the other five speakers train.
    features : {"logmel", "mfcc"}, default="logmel"
        See :class:`skhybrid.features.AudioFeatures`.
    pooled : bool, default=False
        ``False``: a fixed-length sequence per recording, rows of shape
        ``(n_bands, n_frames)`` flattened. ``True``: the per-band mean and
        standard deviation over the recording's frames, ``2 * n_bands``
        values.
    test_speaker : str, default="theo"
        The held-out voice of ``split="speaker"``.
    data_home : path-like or None, default=None
        See :func:`get_data_home`.
    cache : bool, default=True
        Keep the computed features in :func:`get_cache_home` (keyed by the
        feature settings and the file list) and reuse them.
    cache_home : path-like or None, default=None
    download_if_missing : bool, default=True
    **feature_options
        Passed to :class:`~skhybrid.features.AudioFeatures` (``n_bands``,
        ``n_frames``, ``n_fft``, ``hop_length``, ...).

    Returns
    -------
    Bunch
        ``X_train``, ``X_test`` (float32), ``y_train``, ``y_test`` (int64),
        ``speaker_train``, ``speaker_test``, ``feature_shape`` (``(n_bands,
        n_frames)`` for sequences, ``(2 * n_bands,)`` pooled) and
        ``feature_options``.

    Examples
    --------
    >>> from skhybrid.datasets import load_fsdd
    >>> data = load_fsdd(split="speaker", pooled=True)  # doctest: +SKIP
    >>> data.X_train.shape  # doctest: +SKIP
    (2500, 64)
    """
    from .features import AudioFeatures

    extractor = AudioFeatures(kind=features, pooling="meanstd" if pooled else None,
                              **feature_options)
    recordings = fetch_fsdd(data_home, download_if_missing=download_if_missing)
    rows = _fsdd_index(recordings)
    key = json.dumps({"files": [r[0].name for r in rows], **extractor.get_params()},
                     sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = get_cache_home(cache_home) / f"fsdd-{digest}.npz"
    X = None
    if cache and path.is_file():
        try:
            with np.load(path) as stored:
                X = stored["X"]
        except (OSError, ValueError, KeyError):
            X = None
    if X is None:
        waves = load_fsdd_waveforms(data_home, download_if_missing=download_if_missing)
        X = extractor.fit_transform(waves.waveforms, sample_rate=waves.sample_rate)
        if cache:
            _atomic_save(path, X)
    target = np.array([r[1] for r in rows], dtype=np.int64)
    speaker = np.array([r[2] for r in rows])
    index = np.array([r[3] for r in rows], dtype=np.int64)
    test = fsdd_split(speaker, index, split, test_speaker)
    X = np.asarray(X, dtype=np.float32)
    return Bunch(
        X_train=X[~test], X_test=X[test], y_train=target[~test], y_test=target[test],
        speaker_train=speaker[~test], speaker_test=speaker[test],
        feature_shape=extractor.feature_shape(), feature_options=extractor.get_params(),
        target_names=np.arange(10),
        DESCR=f"FSDD spoken digits, {features} features, split={split!r}",
    )


def _atomic_save(path, X):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, X=X)
        os.replace(tmp, path)
    except OSError:
        # A read-only home only costs recomputing the features next time.
        pass


# --------------------------------------------------------- Tiny Shakespeare
def fetch_tinyshakespeare(data_home=None, *, download_if_missing=True):
    """The path of Tiny Shakespeare's ``input.txt``, downloaded if missing (1.1 MB)."""
    path = get_data_home(data_home) / "tinyshakespeare" / "input.txt"
    if path.is_file():
        return path
    if not download_if_missing:
        raise FileNotFoundError(
            f"Tiny Shakespeare not found at {path}; set {DATA_ENV} or data_home, or pass "
            "download_if_missing=True")
    path.parent.mkdir(parents=True, exist_ok=True)  # pragma: no cover - network
    with urllib.request.urlopen(TINYSHAKESPEARE_URL, timeout=120) as response:  # pragma: no cover
        path.write_bytes(response.read())
    return path  # pragma: no cover


def load_tinyshakespeare(data_home=None, *, valid_fraction=0.1, download_if_missing=True):
    """Tiny Shakespeare as character ids: the first 90% trains, the last 10% validates.

    Parameters
    ----------
    data_home : path-like or None, default=None
        See :func:`get_data_home`.
    valid_fraction : float, default=0.1
        Share of the characters, taken from the end, for validation.
    download_if_missing : bool, default=True

    Returns
    -------
    Bunch
        ``train`` and ``valid`` (int64 arrays of character ids), ``chars``
        (the sorted vocabulary, a str; id ``i`` is ``chars[i]``),
        ``n_chars`` (65) and ``text``.

    Examples
    --------
    >>> from skhybrid.datasets import load_tinyshakespeare
    >>> data = load_tinyshakespeare()  # doctest: +SKIP
    >>> "".join(data.chars[i] for i in data.train[:5])  # doctest: +SKIP
    'First'
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be a float in (0, 1); got {valid_fraction!r}")
    path = fetch_tinyshakespeare(data_home, download_if_missing=download_if_missing)
    text = path.read_text(encoding="utf-8")
    chars = "".join(sorted(set(text)))
    lookup = np.full(max(map(ord, chars)) + 1, -1, dtype=np.int64)
    lookup[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)]
    n_train = int(round(len(ids) * (1 - valid_fraction)))
    return Bunch(train=ids[:n_train], valid=ids[n_train:], chars=chars, n_chars=len(chars),
                 text=text, DESCR="Tiny Shakespeare, character level")
