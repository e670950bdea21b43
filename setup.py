"""The C extension, the one thing pyproject.toml cannot declare without warnings.

Everything else (metadata, packages, dependencies) is in pyproject.toml.
native/hot.c holds the pot's hot loops; it links against nothing: the ggml
functions it calls are passed in at run time (see native/kernels.py).
"""
import warnings

from setuptools import Extension, setup

# An editable install of this layout (packages mapped from top-level folders)
# goes through setuptools' import finder, and setuptools says so with an
# informational note ("Editable installation. Please be careful with folders
# ... with the same name as your package"): there is no such folder here.
# Only that note is silenced; every other warning still shows.
warnings.filterwarnings("ignore", message="Editable installation")

setup(ext_modules=[Extension("bookpot.native._hot", sources=["native/hot.c"])])
