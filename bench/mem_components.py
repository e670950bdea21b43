"""Peak RSS by component for one pot size: `python bench/mem_components.py POT DOC_TOKENS NUC(0|1)`.

Prints RSS after import, after loading the model, after making the context
(with llama.cpp's own KV / compute / output buffer sizes), then the peak
after ingesting a pass-key document of DOC_TOKENS and answering.
"""
import re
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from passkey import passkey_text, QUESTION
from bookpot.engine.rss import peak_rss_bytes, current_rss_bytes
from bookpot.engine import llm  # noqa: F401  (imported here to measure what importing costs)
print("import", current_rss_bytes()>>20, end=" ")
from bookpot.engine.llm import Model, LLAMA_LOG  # noqa: E402  (after the RSS print above)
from bookpot.engine.session import Session  # noqa: E402  (after the RSS print above)
from bookpot.engine.pot import PotConfig  # noqa: E402  (after the RSS print above)
from bookpot.engine.readers.base import Segment, Locator  # noqa: E402  (after the RSS print above)
from bookpot.models import resolve  # noqa: E402  (after the RSS print above)
m = Model(resolve('smollm2-135m'))
print("model", current_rss_bytes()>>20, end=" ")
M = int(sys.argv[1]); n = int(sys.argv[2]); nuc = sys.argv[3] == "1"
s = Session(m, mode="pot", pot=PotConfig(M, M//2, nuc=nuc))
cb = [l for l in LLAMA_LOG if "compute buffer size" in l or "KV buffer size" in l or "output buffer" in l]
print("ctx", current_rss_bytes()>>20, [re.sub(r"\s+"," ",l.strip()) for l in cb])
s.ingest([Segment(passkey_text(n, .5, 12345), Locator(page='1'))])
a = s.ask(QUESTION, max_tokens=8)
print(M, n, nuc, "peak MiB", peak_rss_bytes()>>20, s.stats.distillations, repr(a.text))
