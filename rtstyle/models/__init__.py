"""Model families, the registry and model specs."""
from ._examples import family_examples
from ._registry import UnknownModelError, create_model, get_spec, list_models, register_model
from ._spec import ModelSpec

__all__ = ["ModelSpec", "UnknownModelError", "create_model", "family_examples", "get_spec", "list_models",
           "register_model"]
