"""``bookpot doctor``: the cache disk, memory-unit room and warnings.

The first test runs the real CLI in a subprocess. Warnings about a small or
worn disk cannot be provoked on this machine's disk, so the others run the
same CLI entry point in-process with the disk's answers replaced.
"""
from __future__ import annotations

import os
from collections import namedtuple

import pytest

from conftest import run_cli

MiB = 1 << 20
Usage = namedtuple("Usage", "total used free")


def test_doctor_reports_cache_dir_disk_and_units(tmp_path, model_path):
    cache = tmp_path / "cache"
    (cache / "book").mkdir(parents=True)
    (cache / "book" / "u0.kv").write_bytes(b"\0" * (3 * MiB))
    p = run_cli("doctor", "--ram-cap", "1G", env={"BOOKPOT_CACHE_DIR": str(cache)})
    assert p.returncode == 0, p.stderr
    out = p.stdout
    cache_line = next(l for l in out.splitlines() if l.startswith("cache "))
    assert f"free at {cache}" in cache_line and "bookpot keeps 3.0 MiB there" in cache_line
    # compact units (K q8_0 + V q4_0 blocks: 9,360 B/token before zstd) against 23,040 B in f16
    assert ("units        memory units take at most ~8.9 MiB of cache per 1,000 tokens of book "
            "(K q8_0 + V q4_0 blocks, zstd; f16 would take 22.0)") in out
    assert "KV 23,040 B/token" in out
    assert "plan         pot " in out and "batch " in out
    assert "native       C extension loaded" in out

    # A cache folder that does not exist yet is measured on its nearest parent
    # and not created: doctor writes nothing.
    missing = tmp_path / "not" / "yet"
    p = run_cli("doctor", env={"BOOKPOT_CACHE_DIR": str(missing)})
    assert p.returncode == 0, p.stderr
    assert f"free at {missing}" in p.stdout and "bookpot keeps 0.0 MiB there" in p.stdout
    assert not (tmp_path / "not").exists()


def _doctor(capsys, *args) -> str:
    from bookpot.app.cli import main

    assert main(["doctor", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def fake_disk(monkeypatch):
    """Make every disk doctor measures report ``free`` bytes."""
    from bookpot.app import doctor

    def set_free(free):
        monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: Usage(100 * free, 99 * free, free))

    return set_free


def test_doctor_warns_when_the_cache_disk_is_nearly_full(tmp_path, monkeypatch, capsys, model_path, fake_disk):
    monkeypatch.setenv("BOOKPOT_CACHE_DIR", str(tmp_path))
    fake_disk(500 * MiB)
    out = _doctor(capsys)
    assert f"warning      less than 1 GiB free for the cache at {tmp_path}" in out
    assert "warning      less than 1 GiB free at" in out  # the models folder too
    assert "ok           nothing to fix" not in out


def test_doctor_warns_when_a_long_book_units_would_not_fit(tmp_path, monkeypatch, capsys, model_path, fake_disk):
    monkeypatch.setenv("BOOKPOT_CACHE_DIR", str(tmp_path))
    fake_disk(1200 * MiB)  # 1,200 MiB / 9,360 B per token (compact units) = ~134K tokens of units
    out = _doctor(capsys)
    assert "room for ~134,432 tokens" in out
    assert "warning      the cache disk has room for the memory units of ~134,432 tokens only" in out
    fake_disk(20 * 1024 * MiB)
    out = _doctor(capsys)
    assert "cache disk has room" not in out and "less than 1 GiB" not in out


def test_doctor_warns_about_a_cache_on_an_sd_card(tmp_path, monkeypatch, capsys, model_path):
    """A Raspberry Pi's root filesystem: /sys/dev/block/179:2 -> .../mmcblk0/mmcblk0p2."""
    from bookpot.app import doctor

    cache = tmp_path / "cache"
    cache.mkdir()
    st = os.stat(cache)
    sysfs = tmp_path / "sys"
    part = sysfs / "devices" / "platform" / "emmc2bus" / "mmc_host" / "mmc0" / "block" / "mmcblk0" / "mmcblk0p2"
    part.mkdir(parents=True)
    (sysfs / "dev" / "block").mkdir(parents=True)
    (sysfs / "dev" / "block" / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}").symlink_to(part)
    monkeypatch.setattr(doctor, "SYSFS", str(sysfs))
    assert doctor.block_device(cache) == "mmcblk0p2"

    monkeypatch.setenv("BOOKPOT_CACHE_DIR", str(cache))
    out = _doctor(capsys)
    assert f"free at {cache} (mmcblk0p2)" in out
    assert "warning      the cache is on an SD card or eMMC (mmcblk0p2)" in out and "USB SSD" in out


def test_doctor_warns_on_a_32_bit_arm_board(monkeypatch, capsys, model_path):
    from bookpot.app import doctor

    monkeypatch.setattr(doctor.platform, "machine", lambda: "armv7l")
    out = _doctor(capsys)
    assert "(armv7l)" in out and "warning      a 32-bit system (armv7l)" in out


def test_doctor_warns_about_too_many_threads_and_a_low_cap(model_path):
    p = run_cli("doctor", "--ram-cap", "128M", "--threads", "64")
    assert p.returncode == 0, p.stderr
    from bookpot.engine.plan import smallest_cap
    from bookpot.models import read_metadata

    need = smallest_cap(read_metadata(model_path), unit_room=4 * 128) / (1 << 20)
    assert f"warning      RAM cap too low: at least {need:,.0f} MiB is needed" in p.stdout
    assert "warning      --threads 64 is more than the" in p.stdout
