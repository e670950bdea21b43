"""A book asked before reading (issue #19) has a manifest: ``cache list`` names it, ``cache clear BOOK`` removes it."""
from __future__ import annotations

import json

from bookpot.engine import bookcache


def _cache(root, doc):
    return bookcache.BookCache(root, doc_path=str(doc), doc_hash="h1", model="m", settings={"units": True},
                               doc_info={"title": "T", "format": "text", "size_bytes": 3})


def test_an_indexed_book_is_listed_and_cleared_by_its_document(tmp_path):
    doc = tmp_path / "b.txt"
    doc.write_text("abc")
    c = _cache(tmp_path / "cache", doc)
    (c.units_dir / "units").mkdir(parents=True)
    (c.units_dir / "units" / "e0000001.kv").write_bytes(b"x" * 100)  # an early unit, no checkpoint
    c.note_indexed(15000)
    [m] = bookcache.list_books(tmp_path / "cache")
    assert (m["status"], m["book_tokens"], m["document"]["hash"]) == ("indexed", 15000, "h1")
    assert bookcache.clear(tmp_path / "cache", "other")[0] == 0
    assert bookcache.clear(tmp_path / "cache", "h1")[0] == 1
    assert not c.dir.exists()


def test_a_checkpoint_manifest_is_not_overwritten(tmp_path):
    c = _cache(tmp_path / "cache", tmp_path / "b.txt")
    c.dir.mkdir(parents=True)
    (c.dir / "manifest.json").write_text(json.dumps({"status": "ingesting", "progress": 0.4}))
    c.note_indexed(15000)
    assert json.loads((c.dir / "manifest.json").read_text())["status"] == "ingesting"


def test_retiring_early_units_where_no_text_pass_ran_is_a_no_op(tmp_path):
    """A book read with ``--read first`` has a lexicon without the text pass's tables:
    the checkpoint's ``retire_early`` finds nothing to retire (a regression: it raised)."""
    from bookpot.engine.lexicon import Lexicon
    from bookpot.engine.textpass import Early, TextIndex

    import numpy as np

    lex = Lexicon(tmp_path / "lexicon.sqlite")
    text = TextIndex(lex)
    assert text.retire_early(10) == [] and text.early_bytes() == 0
    text._create()
    text.add_early(Early(3, [(7, "d", 100), (8, "e", 50)], np.zeros(0, np.float16), np.zeros(0, np.float32)))
    text.add_early(Early(12, [(30, "f", 40)], np.zeros(0, np.float16), np.zeros(0, np.float32)))
    assert text.early_bytes() == 190
    assert text.retire_early(10) == [(7, "d", 100), (8, "e", 50)]  # chunk 3 read, chunk 12 not yet
    assert text.early(3) is None and text.early(12) is not None and text.early_bytes() == 40
    lex.close()
