/*
 * bookpot.native._hot — the pot's hot loops, in C.
 *
 *   Tap          an eval callback for llama_context_params.cb_eval. Unarmed it
 *                says "no" to every graph node, so the scheduler never splits
 *                the graph. Armed for a catalyst pass it asks only for
 *                kq_soft_max-<l> of the chosen layers and adds, per KV cell, the
 *                attention the last Q rows of the batch give to that cell
 *                (summed over heads, rows and layers) into a float32 buffer
 *                owned by Python.
 *   nll()        per-token negative log-likelihood from a logits buffer.
 *
 * Nothing here links against ggml or llama: the three ggml functions we call
 * are handed in as addresses by init() (Python takes them from llama_cpp's
 * libggml-base.so). The few declarations below are written from
 * ggml/include/ggml.h and ggml-backend.h of llama-cpp-python 0.3.36
 * (vendored llama.cpp); init() checks them against the real library.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- ggml declarations (llama-cpp-python 0.3.36, ggml.h) ---------------- */

#define GGML_MAX_DIMS      4
#define GGML_MAX_SRC       10
#define GGML_MAX_OP_PARAMS 64
#define GGML_MAX_NAME      64
#define GGML_TYPE_F32      0

struct ggml_tensor {
    int32_t type;                       /* enum ggml_type */
    void   *buffer;                     /* struct ggml_backend_buffer * */
    int64_t ne[GGML_MAX_DIMS];          /* number of elements */
    size_t  nb[GGML_MAX_DIMS];          /* stride in bytes */
    int32_t op;                         /* enum ggml_op */
    int32_t op_params[GGML_MAX_OP_PARAMS / sizeof(int32_t)];
    int32_t flags;
    struct ggml_tensor *src[GGML_MAX_SRC];
    struct ggml_tensor *view_src;
    size_t  view_offs;
    void   *data;
    char    name[GGML_MAX_NAME];
    void   *extra;
    char    padding[8];
};

typedef const char *(*ggml_get_name_fn)(const struct ggml_tensor *);
typedef int64_t     (*ggml_nelements_fn)(const struct ggml_tensor *);
typedef void        (*ggml_tensor_get_fn)(const struct ggml_tensor *, void *, size_t, size_t);

static ggml_get_name_fn   g_get_name;
static ggml_nelements_fn  g_nelements;
static ggml_tensor_get_fn g_tensor_get;

#define NAME_PREFIX "kq_soft_max-"
#define MAX_LAYERS 1024

/* ---- init: take the ggml entry points and check our struct against them -- */

static PyObject *
hot_init(PyObject *self, PyObject *args)
{
    unsigned long long a_name, a_nel, a_get, a_tensor;
    if (!PyArg_ParseTuple(args, "KKKK", &a_name, &a_nel, &a_get, &a_tensor))
        return NULL;
    if (!a_name || !a_nel || !a_get || !a_tensor) {
        PyErr_SetString(PyExc_ValueError, "init() needs four non-null addresses");
        return NULL;
    }
    ggml_get_name_fn  get_name  = (ggml_get_name_fn)(uintptr_t)a_name;
    ggml_nelements_fn nelements = (ggml_nelements_fn)(uintptr_t)a_nel;

    /* a_tensor is a real tensor Python made with ggml_new_tensor_3d(ctx, F32,
     * 7, 5, 3) and named "bookpot-probe": if our layout is right, name sits at
     * the same offset ggml_get_name() returns, and ne[] multiplies out to
     * ggml_nelements(). */
    const struct ggml_tensor *t = (const struct ggml_tensor *)(uintptr_t)a_tensor;
    const char *name = get_name(t);
    int ok = name == t->name
          && strcmp(name, "bookpot-probe") == 0
          && t->type == GGML_TYPE_F32
          && t->ne[0] == 7 && t->ne[1] == 5 && t->ne[2] == 3 && t->ne[3] == 1
          && t->nb[0] == 4 && t->nb[1] == 28 && t->nb[2] == 140
          && nelements(t) == 105;
    if (!ok) {
        PyErr_SetString(PyExc_ImportError,
            "ggml's tensor layout differs from the one bookpot.native was written for "
            "(llama-cpp-python 0.3.36).");
        return NULL;
    }
    g_get_name = get_name;
    g_nelements = nelements;
    g_tensor_get = (ggml_tensor_get_fn)(uintptr_t)a_get;
    Py_RETURN_NONE;
}

/* ---- Tap: the eval callback and its state --------------------------------- */

typedef struct {
    /* settings, written by arm()/disarm() between decodes */
    int       armed;
    int       n_query;              /* catalyst rows: the last Q rows of the ubatch */
    uint8_t   want[MAX_LAYERS];     /* want[l]: read kq_soft_max-l */
    float    *out;                  /* per-cell sums, n_out floats (Python's buffer) */
    int64_t   n_out;
    float    *rows;                 /* scratch: Q rows of one head */
    size_t    rows_cap;             /* floats */
    /* what happened, read by Python after a decode */
    int64_t   n_asked;              /* ask=true calls */
    int64_t   n_yes;                /* nodes we said yes to */
    int64_t   n_read;               /* tensors accumulated since arm() */
    int64_t   last_n_kv, last_n_tokens, last_n_head;
    char      error[200];           /* first layout problem seen, "" if none */
    /* capture: pre-RoPE Q or K rows of chosen layers (memory-unit keys) */
    int       cap_armed;
    char      cap_prefix[8];         /* "Qcur-" or "Kcur-" */
    int16_t   cap_slot[MAX_LAYERS];  /* layer -> slot in cap_out, -1 = not wanted */
    int64_t   cap_dim, cap_n_tokens;
    float    *cap_out;               /* n_slots * n_tokens * dim floats */
    int64_t   cap_n_out;
    int64_t   cap_read;
} tap_state;

typedef struct {
    PyObject_HEAD
    tap_state s;
    Py_buffer view;                 /* keeps the output buffer alive while armed */
    int       has_view;
    Py_buffer cap_view;             /* the capture buffer, while capturing */
    int       has_cap_view;
} Tap;

/* "<prefix><l>" -> l, or -1 */
static int
layer_after(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return -1;
    const char *p = name + n;
    if (*p < '0' || *p > '9')
        return -1;
    int l = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        l = l * 10 + (*p - '0');
        if (l >= MAX_LAYERS)
            return -1;
    }
    return *p == '\0' ? l : -1;
}

/* "kq_soft_max-<l>" -> l, or -1 */
static int
layer_of(const char *name)
{
    return layer_after(name, NAME_PREFIX);
}

static void
tap_fail(tap_state *s, const char *msg, const struct ggml_tensor *t)
{
    if (!s->error[0])
        snprintf(s->error, sizeof s->error,
                 "%s (%s: type %d, ne %lld %lld %lld %lld)", msg, g_get_name(t), t->type,
                 (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    s->armed = 0;
}

/* kq_soft_max-<l> is F32 [ne0 = n_kv cells (padded), ne1 = n_tokens, ne2 = n_head,
 * ne3 = n_stream = 1], contiguous. Row (token i, head h) starts at i*nb1 + h*nb2;
 * the catalyst rows of one head are one contiguous block. */
static void
tap_read(tap_state *s, const struct ggml_tensor *t)
{
    const int64_t n_kv = t->ne[0], n_tok = t->ne[1], n_head = t->ne[2];
    if (g_nelements(t) != n_kv * n_tok * n_head * t->ne[3])
        return tap_fail(s, "ggml_nelements() disagrees with ne[]", t);
    if (t->type != GGML_TYPE_F32 || t->ne[3] != 1 || t->nb[0] != sizeof(float)
        || t->nb[1] != (size_t)n_kv * sizeof(float) || t->nb[2] != t->nb[1] * (size_t)n_tok)
        return tap_fail(s, "kq_soft_max is not a contiguous F32 [n_kv, n_tokens, n_head] tensor", t);
    if (n_kv > s->n_out)
        return tap_fail(s, "more KV cells than the score buffer holds", t);
    if (n_tok < s->n_query)
        return tap_fail(s, "the ubatch has fewer tokens than catalyst rows", t);

    const size_t n_f = (size_t)s->n_query * (size_t)n_kv;
    if (n_f > s->rows_cap) {
        float *p = realloc(s->rows, n_f * sizeof(float));
        if (!p)
            return tap_fail(s, "out of memory", t);
        s->rows = p;
        s->rows_cap = n_f;
    }
    float *out = s->out;
    for (int64_t h = 0; h < n_head; h++) {
        size_t off = (size_t)h * t->nb[2] + (size_t)(n_tok - s->n_query) * t->nb[1];
        g_tensor_get(t, s->rows, off, n_f * sizeof(float));
        for (int64_t r = 0; r < s->n_query; r++) {
            const float *row = s->rows + (size_t)r * n_kv;
            for (int64_t c = 0; c < n_kv; c++)
                out[c] += row[c];
        }
    }
    s->n_read++;
    s->last_n_kv = n_kv;
    s->last_n_tokens = n_tok;
    s->last_n_head = n_head;
}

/* "Qcur-<l>"/"Kcur-<l>" of a wanted layer -> l, or -1 */
static int
cap_layer_of(const tap_state *s, const char *name)
{
    int l = layer_after(name, s->cap_prefix);
    return (l >= 0 && s->cap_slot[l] >= 0) ? l : -1;
}

/* The projection before RoPE is the 2-D F32 [dim, n_tokens] node named
 * Qcur-<l>/Kcur-<l>; the roped one carries the same name but is 3-D
 * [head_dim, n_head, n_tokens]. When a bias follows the projection the node
 * is named again after the add: the last 2-D match wins (we overwrite). */
static int
cap_match(const tap_state *s, const struct ggml_tensor *t)
{
    return t->type == GGML_TYPE_F32 && t->ne[0] == s->cap_dim && t->ne[1] == s->cap_n_tokens
        && t->ne[2] == 1 && t->ne[3] == 1 && cap_layer_of(s, g_get_name(t)) >= 0;
}

static void
cap_read(tap_state *s, const struct ggml_tensor *t)
{
    int l = cap_layer_of(s, g_get_name(t));
    if (t->nb[0] != sizeof(float) || t->nb[1] != (size_t)s->cap_dim * sizeof(float)) {
        if (!s->error[0])
            snprintf(s->error, sizeof s->error, "%s is not contiguous", g_get_name(t));
        s->cap_armed = 0;
        return;
    }
    size_t n = (size_t)s->cap_dim * (size_t)s->cap_n_tokens;
    g_tensor_get(t, s->cap_out + (size_t)s->cap_slot[l] * n, 0, n * sizeof(float));
    s->cap_read++;
}

/* ggml_backend_sched_eval_callback: bool (*)(struct ggml_tensor *, bool ask, void *) */
static bool
tap_eval(struct ggml_tensor *t, bool ask, void *user_data)
{
    tap_state *s = user_data;
    if (ask) {
        s->n_asked++;
        if (!s->armed && !s->cap_armed)
            return false;
        bool yes = false;
        if (s->armed) {
            int l = layer_of(g_get_name(t));
            yes = l >= 0 && s->want[l];
        }
        if (!yes && s->cap_armed)
            yes = cap_match(s, t);
        s->n_yes += yes;
        return yes;
    }
    if (s->armed) {
        int l = layer_of(g_get_name(t));
        if (l >= 0 && s->want[l])
            tap_read(s, t);
    }
    if (s->cap_armed && cap_match(s, t))
        cap_read(s, t);
    return true; /* keep computing */
}

static void
tap_release(Tap *self)
{
    self->s.armed = 0;
    self->s.out = NULL;
    self->s.n_out = 0;
    if (self->has_view) {
        PyBuffer_Release(&self->view);
        self->has_view = 0;
    }
}

static void
cap_release(Tap *self)
{
    self->s.cap_armed = 0;
    self->s.cap_out = NULL;
    self->s.cap_n_out = 0;
    if (self->has_cap_view) {
        PyBuffer_Release(&self->cap_view);
        self->has_cap_view = 0;
    }
}

static PyObject *
Tap_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Tap *self = (Tap *)type->tp_alloc(type, 0);   /* zero-filled */
    return (PyObject *)self;
}

static void
Tap_dealloc(Tap *self)
{
    tap_release(self);
    cap_release(self);
    free(self->s.rows);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(Tap_arm_doc,
"arm(out, layers, n_query)\n\n"
"Score the next decode: add the attention of its last n_query rows to every KV\n"
"cell into out (a writable float32 buffer of >= n_ctx cells; not zeroed here),\n"
"for the layers in `layers`. The decode must fit in one ubatch.");

static PyObject *
Tap_arm(Tap *self, PyObject *args)
{
    PyObject *out, *layers;
    int n_query;
    if (!g_tensor_get) {
        PyErr_SetString(PyExc_RuntimeError, "bookpot.native._hot.init() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOi", &out, &layers, &n_query))
        return NULL;
    if (n_query < 1) {
        PyErr_SetString(PyExc_ValueError, "n_query must be >= 1");
        return NULL;
    }
    uint8_t want[MAX_LAYERS] = {0};
    PyObject *seq = PySequence_Fast(layers, "layers must be a sequence of ints");
    if (!seq)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        long l = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (l == -1 && PyErr_Occurred()) { Py_DECREF(seq); return NULL; }
        if (l < 0 || l >= MAX_LAYERS) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "layer index out of range");
            return NULL;
        }
        want[l] = 1;
    }
    Py_DECREF(seq);

    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (view.itemsize != 4 || !view.format || strcmp(view.format, "f") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "out must be a contiguous float32 buffer");
        return NULL;
    }
    tap_release(self);
    self->view = view;
    self->has_view = 1;
    memcpy(self->s.want, want, sizeof want);
    self->s.out = view.buf;
    self->s.n_out = view.len / 4;
    self->s.n_query = n_query;
    self->s.n_read = 0;
    self->s.error[0] = '\0';
    self->s.armed = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tap_capture_doc,
"capture(out, layers, which, dim, n_tokens)\n\n"
"Copy the pre-RoPE projection rows (which = 'Q' or 'K': the Qcur-<l>/Kcur-<l>\n"
"nodes) of the next decode into out, a float32 buffer of len(layers) *\n"
"n_tokens * dim, slot i for layers[i]. The decode must be one ubatch of\n"
"n_tokens tokens. end_capture() stops it.");

static PyObject *
Tap_capture(Tap *self, PyObject *args)
{
    PyObject *out, *layers;
    const char *which;
    long long dim, n_tokens;
    if (!g_tensor_get) {
        PyErr_SetString(PyExc_RuntimeError, "bookpot.native._hot.init() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOsLL", &out, &layers, &which, &dim, &n_tokens))
        return NULL;
    if (strcmp(which, "Q") && strcmp(which, "K")) {
        PyErr_SetString(PyExc_ValueError, "which must be 'Q' or 'K'");
        return NULL;
    }
    if (dim < 1 || n_tokens < 1) {
        PyErr_SetString(PyExc_ValueError, "dim and n_tokens must be >= 1");
        return NULL;
    }
    int16_t slot[MAX_LAYERS];
    for (int i = 0; i < MAX_LAYERS; i++)
        slot[i] = -1;
    PyObject *seq = PySequence_Fast(layers, "layers must be a sequence of ints");
    if (!seq)
        return NULL;
    Py_ssize_t n_slots = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n_slots; i++) {
        long l = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (l == -1 && PyErr_Occurred()) { Py_DECREF(seq); return NULL; }
        if (l < 0 || l >= MAX_LAYERS || slot[l] >= 0) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "layer index out of range or repeated");
            return NULL;
        }
        slot[l] = (int16_t)i;
    }
    Py_DECREF(seq);
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (view.itemsize != 4 || !view.format || strcmp(view.format, "f") != 0
        || view.len / 4 < (Py_ssize_t)(n_slots * dim * n_tokens)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "out must be a contiguous float32 buffer of len(layers)*n_tokens*dim");
        return NULL;
    }
    cap_release(self);
    self->cap_view = view;
    self->has_cap_view = 1;
    memcpy(self->s.cap_slot, slot, sizeof slot);
    snprintf(self->s.cap_prefix, sizeof self->s.cap_prefix, "%scur-", which);
    self->s.cap_dim = dim;
    self->s.cap_n_tokens = n_tokens;
    self->s.cap_out = view.buf;
    self->s.cap_n_out = view.len / 4;
    self->s.cap_read = 0;
    self->s.error[0] = '\0';
    self->s.cap_armed = 1;
    Py_RETURN_NONE;
}

static PyObject *
Tap_end_capture(Tap *self, PyObject *unused)
{
    long long n = self->s.cap_read;
    cap_release(self);
    return PyLong_FromLongLong(n);
}

static PyObject *
Tap_disarm(Tap *self, PyObject *unused)
{
    tap_release(self);
    Py_RETURN_NONE;
}

static PyObject *
Tap_stats(Tap *self, PyObject *unused)
{
    const tap_state *s = &self->s;
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:L,s:s}",
                         "asked", (long long)s->n_asked, "yes", (long long)s->n_yes,
                         "read", (long long)s->n_read, "n_kv", (long long)s->last_n_kv,
                         "n_tokens", (long long)s->last_n_tokens,
                         "n_head", (long long)s->last_n_head, "error", s->error);
}

static PyObject *
Tap_get_user_data(Tap *self, void *closure)
{
    return PyLong_FromVoidPtr(&self->s);
}

static PyObject *
Tap_get_armed(Tap *self, void *closure)
{
    return PyBool_FromLong(self->s.armed);
}

static PyMethodDef Tap_methods[] = {
    {"arm",    (PyCFunction)Tap_arm,    METH_VARARGS, Tap_arm_doc},
    {"disarm", (PyCFunction)Tap_disarm, METH_NOARGS,  "Stop scoring; answer 'no' to every node again."},
    {"capture", (PyCFunction)Tap_capture, METH_VARARGS, Tap_capture_doc},
    {"end_capture", (PyCFunction)Tap_end_capture, METH_NOARGS, "Stop capturing; return how many tensors were copied (overwrites count)."},
    {"stats",  (PyCFunction)Tap_stats,  METH_NOARGS,  "Counters: asked, yes, read, last n_kv/n_tokens/n_head, error."},
    {NULL}
};

static PyGetSetDef Tap_getset[] = {
    {"user_data", (getter)Tap_get_user_data, NULL, "address to pass as cb_eval_user_data", NULL},
    {"armed",     (getter)Tap_get_armed,     NULL, "whether the next decode is scored", NULL},
    {NULL}
};

static PyTypeObject TapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bookpot.native._hot.Tap",
    .tp_basicsize = sizeof(Tap),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Eval-callback state for one llama_context. Keep it alive as long as the context.",
    .tp_new = Tap_new,
    .tp_dealloc = (destructor)Tap_dealloc,
    .tp_methods = Tap_methods,
    .tp_getset = Tap_getset,
};

/* ---- nll ------------------------------------------------------------------ */

PyDoc_STRVAR(nll_doc,
"nll(logits, targets, out)\n\n"
"out[i] = logsumexp(logits[i]) - logits[i, targets[i]] for n = len(targets) rows;\n"
"logits: float32 buffer of n * n_vocab, targets: int32, out: float32 (n).");

static PyObject *
hot_nll(PyObject *self, PyObject *args)
{
    PyObject *o_logits, *o_targets, *o_out;
    if (!PyArg_ParseTuple(args, "OOO", &o_logits, &o_targets, &o_out))
        return NULL;
    Py_buffer lg, tg, ou;
    if (PyObject_GetBuffer(o_logits, &lg, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(o_targets, &tg, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&lg);
        return NULL;
    }
    if (PyObject_GetBuffer(o_out, &ou, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&lg);
        PyBuffer_Release(&tg);
        return NULL;
    }
    const char *err = NULL;
    Py_ssize_t n = tg.len / 4, n_vocab = 0;
    if (strcmp(lg.format, "f") || strcmp(ou.format, "f") || tg.itemsize != 4
        || (strcmp(tg.format, "i") && strcmp(tg.format, "l")))
        err = "logits and out must be float32, targets int32";
    else if (n == 0 || lg.len % (4 * n) || ou.len / 4 < n)
        err = "logits must hold len(targets) rows and out len(targets) floats";
    else
        n_vocab = lg.len / 4 / n;

    if (!err) {
        const float *L = lg.buf;
        const int32_t *T = tg.buf;
        float *O = ou.buf;
        for (Py_ssize_t i = 0; i < n && !err; i++)
            if (T[i] < 0 || T[i] >= n_vocab)
                err = "target id outside the vocabulary";
        if (!err) {
            Py_BEGIN_ALLOW_THREADS
            for (Py_ssize_t i = 0; i < n; i++) {
                const float *x = L + (size_t)i * n_vocab;
                float m = x[0];
                for (Py_ssize_t j = 1; j < n_vocab; j++)
                    m = x[j] > m ? x[j] : m;
                double sum = 0.0;
                for (Py_ssize_t j = 0; j < n_vocab; j++)
                    sum += expf(x[j] - m);
                O[i] = (float)((double)m + log(sum) - (double)x[T[i]]);
            }
            Py_END_ALLOW_THREADS
        }
    }
    PyBuffer_Release(&lg);
    PyBuffer_Release(&tg);
    PyBuffer_Release(&ou);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- module ---------------------------------------------------------------- */

static PyObject *
hot_eval_callback(PyObject *self, PyObject *unused)
{
    return PyLong_FromVoidPtr((void *)(uintptr_t)&tap_eval);
}

static PyMethodDef hot_methods[] = {
    {"init", hot_init, METH_VARARGS,
     "init(addr_ggml_get_name, addr_ggml_nelements, addr_ggml_backend_tensor_get, addr_probe_tensor)"},
    {"eval_callback", hot_eval_callback, METH_NOARGS,
     "Address of the C eval callback, for llama_context_params.cb_eval (user data: Tap.user_data)."},
    {"nll", hot_nll, METH_VARARGS, nll_doc},
    {NULL}
};

static struct PyModuleDef hot_module = {
    PyModuleDef_HEAD_INIT, "bookpot.native._hot",
    "The pot's hot loops: a KQ-softmax tap for catalyst scoring and per-token NLL.",
    -1, hot_methods,
};

PyMODINIT_FUNC
PyInit__hot(void)
{
    if (PyType_Ready(&TapType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&hot_module);
    if (!m)
        return NULL;
    Py_INCREF(&TapType);
    if (PyModule_AddObject(m, "Tap", (PyObject *)&TapType) < 0) {
        Py_DECREF(&TapType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
