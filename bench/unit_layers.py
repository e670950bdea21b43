import sys

import numpy as np

sys.path.insert(0, "tests")
from passkey import passkey_text, QUESTION
from bookpot.engine.llm import Model, Context
from bookpot.native.kernels import Tap
from bookpot.models import resolve
m = Model(resolve("smollm2-135m"))
L = list(range(m.n_layer))
tap = Tap()
ctx = Context(m, n_ctx=4096, n_batch=512, n_seq_max=2, tap=tap)
results = {}
for trial, (depth, key) in enumerate([(0.1, 48213), (0.5, 77123), (0.8, 31337)]):
    ctx.clear()
    text = passkey_text(1800, depth, key)
    toks = m.tokenize(text)
    n = len(toks)
    K = np.zeros((len(L), n, 192), np.float32)
    att = np.zeros(n, np.float32)
    pos = 0
    for a in range(0, n, 512):
        part = toks[a:a+512]
        k = np.zeros((len(L), len(part), 192), np.float32)
        ca = np.zeros(ctx.cells.n_cells, np.float32)
        tap.capture(k, L, "K", len(part)); tap.arm(ca, [7, 15, 22], len(part))
        ctx.decode(part, a, logits="none"); tap.disarm(); tap.end_capture()
        K[:, a:a+len(part)] = k
        p, sc = ctx.cells.by_position(ca, 0)
        mine = (p >= a) & (p < a+len(part)); att[p[mine]] = sc[mine] / (len(part) - (p[mine]-a))
    qt = m.tokenize(QUESTION)
    Q = np.zeros((len(L), len(qt), 576), np.float32)
    tap.capture(Q, L, "Q", len(qt)); ctx.decode(qt, n, logits="none"); tap.end_capture(); ctx.seq_rm(0, n, -1)
    # the key unit
    kt = m.tokenize(f" {key}")
    needle_pos = [i for i in range(n) if toks[i] in kt]
    U = 128
    true_u = needle_pos[0] // U
    nu = -(-n // U)
    qbar = Q.mean(1).reshape(len(L), 3, 3, 64).sum(2)  # (L, 3, 64)
    Kr = K.reshape(len(L), n, 3, 64)
    tok_scores = np.einsum("lngd,lgd->ln", Kr, qbar)  # per layer per token
    def rank(unit_scores):
        order = np.argsort(-unit_scores); return int(np.where(order == true_u)[0][0])
    for name, f in [("mean", lambda s: np.array([s[u*U:(u+1)*U].mean() for u in range(nu)])),
                    ("max", lambda s: np.array([s[u*U:(u+1)*U].max() for u in range(nu)])),
                    ("top4mean", lambda s: np.array([np.sort(s[u*U:(u+1)*U])[-4:].mean() for u in range(nu)])),
                    ("repr4att", lambda s: np.array([s[u*U + np.argsort(-att[u*U:(u+1)*U])[:4]].sum() for u in range(nu)])),
                    ("repr4att_nosink", lambda s: np.array([s[u*U + 4*(u==0) + np.argsort(-att[u*U+4*(u==0):(u+1)*U])[:4]].sum() for u in range(nu)]))]:
        ranks = [rank(f(tok_scores[l])) for l in range(len(L))]
        results.setdefault(name, []).append(ranks)
    print(trial, "true unit", true_u, "of", nu, flush=True)
for name, rs in results.items():
    rs = np.array(rs)
    print(name, "per layer rank (sum over 3 trials):", rs.sum(0).tolist())
