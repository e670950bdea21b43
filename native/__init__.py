"""A small C extension beside llama.cpp's KV API for the hot loops."""

_reason = ""
try:
    from . import kernels  # noqa: F401  (checks llama_cpp's version and ggml's ABI)
except ImportError as e:
    kernels = None
    _reason = str(e) or e.__class__.__name__


def available() -> bool:
    """True when the C extension is built and matches the installed llama.cpp."""
    return kernels is not None


def reason() -> str:
    """Why the extension is unavailable, one sentence ("" when it is available)."""
    return _reason
