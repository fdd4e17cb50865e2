"""The models: the seed papers' scratch networks and one registry usable as --model."""
from .registry import MODELS, ModelSpec, get_model, list_models, register_model
from .papers import (Classifier, baseline_cnn, dense_nn, feature_shape, logistic_regression,
                     melanoma_cnn, padua_cnn, parse_image_size, DENSE_NN_WEIGHT_DECAY,
                     PADUA_CHANNELS)

__all__ = ["MODELS", "ModelSpec", "get_model", "list_models", "register_model", "Classifier",
           "baseline_cnn", "dense_nn", "feature_shape", "logistic_regression", "melanoma_cnn",
           "padua_cnn", "parse_image_size", "DENSE_NN_WEIGHT_DECAY", "PADUA_CHANNELS"]
