"""The HTTP prediction service and its web page: python -m tinylesion.serve --weights RUN_DIR."""
from .app import create_app
from .batching import Batcher
from .runs import ServedModel, load_models

__all__ = ["create_app", "Batcher", "ServedModel", "load_models"]
