"""How the document and the question are laid out for the model.

Two styles, chosen per model by measurement (``--prompt-style`` overrides):

- ``completion``: the document, one newline, then the question exactly as
  typed. SmolLM2-135M finds a pass key 9 of 9 times this way and 1 of 6
  through its chat template.
- ``chat``: the model's own chat template, the document and question as the
  user's message.

Either way the prompt is built as token lists in three parts: ``prefix``
(before the document), the document, and ``suffix(question)``. The document
goes first so its KV can be computed before any question is known, and kept
while many questions are asked. Template strings are tokenized with special
tokens parsed; document and question text never are, so a book that
contains "<|im_start|>" cannot forge a turn.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelError

STYLES = ("completion", "chat")
# Between the question and the answer stem in completion style (bench/questions.py).
STEM_JOIN = "\n"
_DOC = "\x00BOOKPOT_DOCUMENT\x00"
_Q = "\x00BOOKPOT_QUESTION\x00"


@dataclass
class PromptFormat:
    style: str
    prefix: list[int]  # tokens before the document
    between: list[int]  # template tokens between document and question
    after: list[int]  # template tokens after the question
    doc_separator: str = "\n"  # text between document segments
    stop: tuple[str, ...] = ()  # generation ends at any of these strings

    def suffix(self, model, question: str, stem: str | None = None) -> list[int]:
        """Tokens after the document: separator, question, template end, then
        the answer's first words ``stem`` (see stems.py) when given: on a new
        line in completion style, as the start of the assistant's turn in chat."""
        out = self.between + model.tokenize(question, special=False) + self.after
        if stem:
            out += model.tokenize((STEM_JOIN if self.style == "completion" else "") + stem, special=False)
        return out


def build(model, style: str) -> PromptFormat:
    if style not in STYLES:
        raise ModelError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
    bos = [model.bos] if model.add_bos and model.bos >= 0 else []
    if style == "completion":
        return PromptFormat(
            style, prefix=bos, between=model.tokenize("\n", special=False), after=[],
            # A completion runs on into more "document"; a finished
            # sentence at a line break is where an answer ends.
            stop=("\n\n", ".\n", "?\n", "!\n"),
        )
    template = model.chat_template
    if not template:
        raise ModelError("this model has no chat template; use --prompt-style completion")
    rendered = _render(template, model)
    try:
        head, rest = rendered.split(_DOC, 1)
        mid, tail = rest.split(_Q, 1)
    except ValueError:
        raise ModelError("the model's chat template could not be used; use --prompt-style completion")
    # The template may already begin with the BOS text; don't add it twice.
    prefix = model.tokenize(head, special=True, add_bos=False)
    if bos and (not prefix or prefix[0] != model.bos):
        prefix = bos + prefix
    return PromptFormat(
        style,
        prefix=prefix,
        between=model.tokenize(mid, special=True),
        after=model.tokenize(tail, special=True),
    )


def _render(template: str, model) -> str:
    """Render the GGUF's Jinja chat template around placeholders."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg):
        raise ModelError(f"chat template error: {msg}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    messages = [{"role": "user", "content": f"{_DOC}\n\n{_Q}"}]
    return env.from_string(template).render(
        messages=messages,
        add_generation_prompt=True,
        bos_token=model.piece(model.bos, special=True).decode("utf-8", "replace") if model.bos >= 0 else "",
        eos_token=model.piece(model.eos, special=True).decode("utf-8", "replace") if model.eos >= 0 else "",
    )
