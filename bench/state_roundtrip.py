"""Does a llama.cpp state save/load reproduce the in-memory KV? (bench/RESULTS.md, session 3)

Decodes 600 tokens, probes the next-token logits, then saves sequence 0 to
a file (llama_state_seq_save_file) and loads it back, and probes again:
without any shift, after seq_rm + seq_add with the shift applied by a
decode, into a fresh context, and with the shift still pending at save.
Prints the largest logit difference for each.

    .venv/bin/python bench/state_roundtrip.py [MODEL.gguf]
"""
import sys

import numpy as np

from bookpot.engine.llm import Model, Context
from bookpot.models import DEFAULT_MODEL, resolve

m = Model(str(sys.argv[1] if len(sys.argv) > 1 else resolve(DEFAULT_MODEL)))
ctx = Context(m, n_ctx=1792, n_batch=128, n_threads=1)
toks = m.tokenize("The grass is green. The sky is blue. The pass key is 47474. " * 40)[:600]
for i in range(0, 600, 128): ctx.decode(toks[i:i+128], i, logits="last")
q = m.tokenize(" What is the pass key? The pass key is")
def probe(n):
    ctx.decode(q, n, logits="last"); l = np.array(ctx.logits_ith(-1), dtype=np.float32); ctx.seq_rm(0, n, -1); return l
a = probe(600)
ctx.state_seq_save(0, "/tmp/rt2.bin"); ctx.state_seq_load("/tmp/rt2.bin", 0)
print("plain round trip", np.abs(a - probe(600)).max())
# shift case: remove 100..200, shift the rest down, decode one token to apply, probe
ctx.seq_rm(0, 100, 200); ctx.seq_add(0, 200, -1, -100)
c = probe(500); c2 = probe(500)
print("after shift, twice", np.abs(c - c2).max())
ctx.state_seq_save(0, "/tmp/rt2.bin"); ctx.state_seq_load("/tmp/rt2.bin", 0)
print("shifted round trip", np.abs(c - probe(500)).max())
ctx2 = Context(m, n_ctx=1792, n_batch=128, n_threads=1)
ctx2.state_seq_load("/tmp/rt2.bin", 0)
def probe2(n):
    ctx2.decode(q, n, logits="last"); l = np.array(ctx2.logits_ith(-1), dtype=np.float32); ctx2.seq_rm(0, n, -1); return l
print("fresh-context load", np.abs(c - probe2(500)).max())
# redo without the probe between shift and save (shift pending at save)
ctx3 = Context(m, n_ctx=1792, n_batch=128, n_threads=1)
for i in range(0, 600, 128): ctx3.decode(toks[i:i+128], i, logits="last")
ctx3.seq_rm(0, 100, 200); ctx3.seq_add(0, 200, -1, -100)
ctx3.state_seq_save(0, "/tmp/rt3.bin")
ctx4 = Context(m, n_ctx=1792, n_batch=128, n_threads=1); ctx4.state_seq_load("/tmp/rt3.bin", 0)
def probe4(n):
    ctx4.decode(q, n, logits="last"); l = np.array(ctx4.logits_ith(-1), dtype=np.float32); ctx4.seq_rm(0, n, -1); return l
print("pending-shift save, fresh load", np.abs(c - probe4(500)).max())

# Where the shifted delta comes from (session 4): the same KV, no save/load,
# only a different cell for the question. llama.cpp's attention sums depend
# on which cells hold what (holes, masked cells), by as much as the round trip.
def shifted(n_seq_max=2):
    x = Context(m, n_ctx=1792, n_batch=128, n_threads=1, n_seq_max=n_seq_max)
    for i in range(0, 600, 128): x.decode(toks[i:i+128], i, logits="last")
    x.seq_rm(0, 100, 200); x.seq_add(0, 200, -1, -100)
    return x
def probe_in(x, n):
    x.decode(q, n, logits="last"); l = np.array(x.logits_ith(-1), dtype=np.float32); x.seq_rm(0, n, -1); return l
in_hole = probe_in(shifted(), 500)  # the question fills the freed cells 100..
filled = shifted(); filled.decode(toks[:100], 0, seq=1, logits="none")  # a second sequence takes the hole
at_end = probe_in(filled, 500)  # the question goes after cell 600
print("same KV, question in the hole vs after the end", np.abs(in_hole - at_end).max(),
      "argmax", in_hole.argmax(), at_end.argmax())
