"""The one public door into the engine: ``open_book(path, options) -> Book``.

    from bookpot.engine import Options, open_book

    with open_book("book.pdf", Options(ram_cap="1G")) as book:
        book.read()
        for piece in book.ask_stream("Who kept the light?"):
            print(piece, end="")
        print(book.last_answer.citations)

``open_book`` does what every front end needs, in the order a user can fix
the problems: the document is opened (a missing, encrypted or unreadable
file fails here, before any model work: ``BookpotError``), the model
resolved, checked and loaded (``ModelError``; or the loaded one given is
used), and the book's ``Session`` built by the policy in engine/build.py
(RAM plan, then pot, memory units and cache key; ``RamCapError`` when the
cap cannot hold the model). ``Book.read`` then reads the book through its
cache (engine/book.py: at once when a saved state holds it, resumed after
an interruption), and ``ask``/``ask_stream`` answer from what was read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from .build import Built, Options, build_session, resolve_model
from .errors import BookpotError


def document_info(reader) -> dict:
    """The cache manifest's description of a document: title, format, size_bytes ({} if unknown)."""
    try:
        info = reader.info()
    except Exception:  # info is decoration: the reader reports real problems when read
        return {}
    return {"title": info.title, "format": info.format, "size_bytes": info.size_bytes}


class Book:
    """A book opened for questions: its reader, the loaded model and the Session
    sized by the RAM plan (with memory units and the book's cache when the
    catalyst is generic). Close it (or use ``with``) to free the context and
    any temporary units; the model stays loaded for its owner.
    """

    def __init__(self, path: str, reader, model, built: Built, *,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.path = path  # as given: error messages name the file the way the user did
        self.reader = reader
        self.model = model
        self.built = built
        self.on_note = on_note
        self._reading = None  # engine.book.Reading between ``index`` and ``read``/``close``: the lock is held
        for note in built.notes:
            self._note(note)

    @property
    def session(self):
        """The ``engine.session.Session`` (one context; not thread-safe)."""
        return self.built.session

    @property
    def stats(self):
        return self.built.session.stats

    @property
    def last_answer(self):
        """The ``engine.session.Answer`` of the last ``ask``/``ask_stream`` (text, citations, stats)."""
        return self.built.session.last_answer

    def _note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)

    @property
    def answers_early(self) -> bool:
        """Whether a question is better answered before the book is read (issue #19):
        memory units are on, the book fits neither the plain window nor the
        pot (counted by the text pass once it ran), and the pot is not
        distilled toward one question."""
        text = self.session.text
        if text is None or self.built.plain or self.built.by_question:
            return False
        return not text.done or text.n_tokens > self.session.budget

    def index(self, *, progress: Callable[[int, float], None] | None = None,
              cancel: Callable[[], bool] | None = None, on_wait: Callable[[], None] | None = None) -> bool:
        """Restore what was read of the book and run its text pass; True when the book is read whole.

        Under the book's lock (held until ``read`` ends or ``close``): the
        last checkpoint is restored (a finished book: nothing else to do),
        then the reader and tokenizer cut the whole book into its units and
        index them (engine/textpass.py; resumed if a run was killed), so
        ``ask`` finds passages anywhere in the book and prefills only the
        chunks it needs. ``progress(tokens, fraction)`` during the pass.
        Raises ``BookpotError`` when the document holds no text.
        """
        from . import book

        if self._reading is None:
            reading = book.Reading(self.session, self.reader.segments(), self.built.cache,
                                   on_wait=on_wait, on_note=self._note)
            if reading.open(cancel):
                return True
            self._reading = reading
        self.session.text_pass(self.reader.segments(), progress=progress, cancel=cancel)
        if self.session.text is not None and self.session.text.done and not self.session.text.n_tokens:
            raise BookpotError(f"{self.path} has no text to read")
        text = self.session.text
        if self.built.cache is not None and self._reading is not None and self._reading.held and text is not None and text.done:
            self.built.cache.note_indexed(text.n_tokens)
        return False

    def read(self, *, progress: Callable | None = None, cancel: Callable[[], bool] | None = None,
             on_wait: Callable[[], None] | None = None):
        """Read the whole book (through its cache when it has one); the Session's ``Stats``.

        ``progress(engine.session.Progress)`` after each chunk; ``cancel()``
        stops between chunks (an unfinished book is checkpointed);
        ``on_wait()`` once if another process holds the book's lock. Chunks
        prefilled on demand by earlier questions are reused, not decoded
        again (``stats.adopted_tokens``). Raises ``BookpotError`` when the
        document holds no text.
        """
        from . import book

        if self._reading is not None:
            reading, self._reading = self._reading, None
            try:
                reading.ingest(progress=progress, cancel=cancel)
            except BaseException:
                reading.close(save=False)
                raise
            reading.close()
        else:
            book.read(self.session, self.reader.segments(), self.built.cache, progress=progress, cancel=cancel,
                      on_wait=on_wait, on_note=self._note)
        if self.session.stats.doc_tokens == 0:
            raise BookpotError(f"{self.path} has no text to read")
        return self.session.stats

    def ask_stream(self, question: str, *, max_tokens: int = 200, temperature: float = 0.0,
                   cancel: Callable[[], bool] | None = None) -> Iterator[str]:
        """The answer as it is generated (text pieces); then ``last_answer`` holds it all.
        ``cancel()`` stops generation between tokens (the answer so far is kept)."""
        return self.session.ask_stream(question, max_tokens=max_tokens, temperature=temperature, cancel=cancel)

    def ask(self, question: str, *, max_tokens: int = 200, temperature: float = 0.0):
        """The whole answer (``engine.session.Answer``)."""
        return self.session.ask(question, max_tokens=max_tokens, temperature=temperature)

    def close(self) -> None:
        """Free the context and the temporary units (the book's cache stays on disk)."""
        try:
            if self._reading is not None:
                reading, self._reading = self._reading, None
                reading.close()
        finally:
            self.built.close()

    def __enter__(self) -> "Book":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_book(path: str | Path, options: Options | None = None, *, question: str | None = None,
              model=None, on_note: Callable[[str], None] | None = None,
              fetch_progress: Callable[[str, float | None], None] | None = None) -> Book:
    """Open ``path`` for questions (see the module docstring for the order of checks).

    ``question``: known before reading, it is the catalyst the pot is
    distilled toward if ``options.catalyst`` says so (then nothing is
    cached). ``model``: an ``engine.llm.Model`` already loaded from
    ``options.model``'s file, used instead of loading the weights again.
    ``on_note(text)``: things to tell the user (units off, resuming, a
    damaged state). ``fetch_progress(message, fraction)``: while a
    registry model is downloaded.
    """
    from .readers import open_document

    options = options or Options()
    path = str(path)
    reader = open_document(path, password=options.password)
    doc_info = document_info(reader)
    model_path, entry, meta = resolve_model(options.model, progress=fetch_progress)
    if model is None:
        from .llm import Model

        model = Model(model_path)
    built = build_session(options, model, entry, meta, book=path, doc_info=doc_info, question=question,
                          segments=reader.segments)
    return Book(path, reader, model, built, on_note=on_note)
