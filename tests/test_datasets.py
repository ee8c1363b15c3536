"""Tests of skhybrid.datasets: the data-home setting, the splits, and the offline loaders."""

import numpy as np
import pytest

from skhybrid import datasets
from skhybrid.datasets import (DATA_ENV, fsdd_split, get_cache_home, get_data_home,
                               load_digits, load_fsdd, load_tinyshakespeare)


def _have(path):
    return path.exists()


DATA = get_data_home()
HAVE_FSDD = _have(DATA / "fsdd" / "recordings")
HAVE_SHAKESPEARE = _have(DATA / "tinyshakespeare" / "input.txt")
needs_fsdd = pytest.mark.skipif(not HAVE_FSDD, reason=f"FSDD not found under {DATA} "
                                f"(set {DATA_ENV} to the folder holding fsdd/recordings)")
needs_shakespeare = pytest.mark.skipif(
    not HAVE_SHAKESPEARE, reason=f"Tiny Shakespeare not found under {DATA} (set {DATA_ENV})")


# ----------------------------------------------------------------- folders
def test_data_home_precedence(monkeypatch, tmp_path):
    assert get_data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(DATA_ENV)
    home = get_data_home()
    assert home.name == "data" or home.name == "skhybrid_data"


def test_cache_home_is_separate_from_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKHYBRID_CACHE", str(tmp_path / "cache"))
    assert get_cache_home() == tmp_path / "cache"
    monkeypatch.delenv("SKHYBRID_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_cache_home() == tmp_path / "xdg" / "skhybrid"
    assert get_cache_home() != get_data_home()


def test_missing_data_raises_without_downloading(tmp_path):
    with pytest.raises(FileNotFoundError, match=DATA_ENV):
        datasets.fetch_fsdd(tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match=DATA_ENV):
        load_tinyshakespeare(tmp_path, download_if_missing=False)


# ------------------------------------------------------------------ digits
def test_load_digits_split():
    d = load_digits()
    assert d.X_train.shape == (1437, 64) and d.X_test.shape == (360, 64)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.image_shape == (1, 8, 8)
    # Stratified: every class in the test set in about its share.
    counts = np.bincount(d.y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


# -------------------------------------------------------------------- FSDD
def test_fsdd_split_masks():
    speaker = np.array(["a", "a", "b", "b", "c"])
    index = np.array([0, 7, 4, 5, 49])
    np.testing.assert_array_equal(fsdd_split(speaker, index), [True, False, True, False, False])
    np.testing.assert_array_equal(fsdd_split(speaker, index, "speaker", "b"),
                                  [False, False, True, True, False])
    with pytest.raises(ValueError, match="test_speaker"):
        fsdd_split(speaker, index, "speaker", "zed")
    with pytest.raises(ValueError, match="split"):
        fsdd_split(speaker, index, "random")


def _fake_fsdd(root, speakers=("ann", "bob"), digits=(0, 1), takes=6):
    soundfile = pytest.importorskip("soundfile")
    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for s in speakers:
        for d in digits:
            for k in range(takes):
                t = np.arange(2400) / 8000
                wave = 0.3 * np.sin(2 * np.pi * (300 + 400 * d) * t) + 0.01 * rng.randn(t.size)
                soundfile.write(str(folder / f"{d}_{s}_{k}.wav"), wave.astype(np.float32), 8000)
    (folder / "README.txt").write_text("not a recording")
    return root


def test_load_fsdd_on_a_small_copy(tmp_path):
    pytest.importorskip("librosa")
    home = _fake_fsdd(tmp_path / "data")
    cache = tmp_path / "cache"
    d = load_fsdd(data_home=home, cache_home=cache, pooled=True, download_if_missing=False)
    assert d.X_train.shape == (2 * 2 * 1, 64) and d.X_test.shape == (2 * 2 * 5, 64)
    assert set(d.y_train) == {0, 1}
    assert d.feature_shape == (64,)
    assert len(list(cache.glob("fsdd-*.npz"))) == 1
    # Served from the cache the second time, identically.
    again = load_fsdd(data_home=home, cache_home=cache, pooled=True, download_if_missing=False)
    np.testing.assert_array_equal(again.X_test, d.X_test)
    seq = load_fsdd("speaker", test_speaker="bob", data_home=home, cache_home=cache,
                    n_frames=20, download_if_missing=False)
    assert seq.X_train.shape == (12, 32 * 20) and seq.feature_shape == (32, 20)
    assert set(seq.speaker_test) == {"bob"} and "bob" not in set(seq.speaker_train)
    # The data folder was only read.
    assert not list((home / "fsdd").glob("*.npz"))


@needs_fsdd
def test_real_fsdd_index_and_splits():
    rows = datasets._fsdd_index(datasets.fetch_fsdd(download_if_missing=False))
    assert len(rows) == 3000
    speakers = np.array([r[2] for r in rows])
    index = np.array([r[3] for r in rows])
    assert tuple(sorted(set(speakers))) == datasets.FSDD_SPEAKERS
    assert fsdd_split(speakers, index).sum() == 300
    assert fsdd_split(speakers, index, "speaker").sum() == 500


@needs_fsdd
def test_real_fsdd_pooled_features():
    pytest.importorskip("librosa")
    d = load_fsdd(pooled=True, download_if_missing=False)
    assert d.X_train.shape == (2700, 64) and d.X_test.shape == (300, 64)
    assert np.isfinite(d.X_train).all()
    assert np.bincount(d.y_test).tolist() == [30] * 10


# -------------------------------------------------------- Tiny Shakespeare
@needs_shakespeare
def test_load_tinyshakespeare():
    d = load_tinyshakespeare(download_if_missing=False)
    assert d.n_chars == 65 and len(d.chars) == 65
    n = len(d.text)
    assert len(d.train) + len(d.valid) == n
    assert abs(len(d.valid) - 0.1 * n) <= 1
    assert "".join(d.chars[i] for i in d.train[:13]) == "First Citizen"
    assert d.train.min() >= 0 and d.valid.max() < 65
    assert d.valid[-1] == d.chars.index(d.text[-1])
    with pytest.raises(ValueError, match="valid_fraction"):
        load_tinyshakespeare(valid_fraction=1.0)
