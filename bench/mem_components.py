"""Peak RSS by component for one pot size: `python bench/mem_components.py POT DOC_TOKENS NUC(0|1)`.

Prints RSS after import, after loading the model, after making the context
(with llama.cpp's own KV / compute / output buffer sizes), then the peak
after ingesting a pass-key document of DOC_TOKENS and answering.
"""
import sys, re
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from passkey import passkey_text, QUESTION
from bookpot.engine.rss import peak_rss_bytes, current_rss_bytes
from bookpot.engine import llm
print("import", current_rss_bytes()>>20, end=" ")
from bookpot.engine.llm import Model, LLAMA_LOG
from bookpot.engine.session import Session
from bookpot.engine.pot import PotConfig
from bookpot.engine.readers.base import Segment, Locator
from bookpot.models import resolve
m = Model(resolve('smollm2-135m'))
print("model", current_rss_bytes()>>20, end=" ")
M = int(sys.argv[1]); n = int(sys.argv[2]); nuc = sys.argv[3] == "1"
s = Session(m, mode="pot", pot=PotConfig(M, M//2, nuc=nuc))
cb = [l for l in LLAMA_LOG if "compute buffer size" in l or "KV buffer size" in l or "output buffer" in l]
print("ctx", current_rss_bytes()>>20, [re.sub(r"\s+"," ",l.strip()) for l in cb])
s.ingest([Segment(passkey_text(n, .5, 12345), Locator(page='1'))])
a = s.ask(QUESTION, max_tokens=8)
print(M, n, nuc, "peak MiB", peak_rss_bytes()>>20, s.stats.distillations, repr(a.text))
