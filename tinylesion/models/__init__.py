"""The models: the seed papers' scratch networks, the ImageNet backbones (one module per
family, torchvision's layouts) and one registry usable as --model."""
from .registry import MODELS, ModelSpec, get_model, list_models, register_model
from .papers import (Classifier, baseline_cnn, dense_nn, feature_shape, logistic_regression,
                     melanoma_cnn, padua_cnn, parse_image_size, DENSE_NN_WEIGHT_DECAY,
                     PADUA_CHANNELS)
from .backbone import Backbone
from .pretrained import HeadDroppedWarning, load_weights
from .resnet import (ResNet, resnet18, resnet34, resnet50, resnet101, resnet152,
                     resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2,
                     wide_resnet101_2)
from .vgg import VGG, vgg16, vgg16_bn, vgg19
from .densenet import DenseNet, densenet121, densenet169, densenet201
from .inception import Inception3, InceptionOutputs, inception_v3
from .mobilenet import MobileNetV2, MobileNetV3, mobilenet_v2, mobilenet_v3_large, \
    mobilenet_v3_small
from .efficientnet import (EfficientNet, efficientnet_b0, efficientnet_b1, efficientnet_b2,
                           efficientnet_b3, efficientnet_b4, efficientnet_b5, efficientnet_b6,
                           efficientnet_b7)
from .convnext import ConvNeXt, convnext_base, convnext_large, convnext_small, convnext_tiny
from .vit import VisionTransformer, vit_b_16, vit_b_32, vit_l_16

__all__ = ["MODELS", "ModelSpec", "get_model", "list_models", "register_model", "Classifier",
           "baseline_cnn", "dense_nn", "feature_shape", "logistic_regression", "melanoma_cnn",
           "padua_cnn", "parse_image_size", "DENSE_NN_WEIGHT_DECAY", "PADUA_CHANNELS",
           "Backbone", "HeadDroppedWarning", "load_weights", "ResNet", "resnet18", "resnet34",
           "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
           "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
           "VGG", "vgg16", "vgg16_bn", "vgg19", "DenseNet", "densenet121", "densenet169",
           "densenet201", "Inception3", "InceptionOutputs", "inception_v3", "MobileNetV2",
           "MobileNetV3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
           "EfficientNet", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
           "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
           "efficientnet_b7", "ConvNeXt", "convnext_tiny", "convnext_small", "convnext_base",
           "convnext_large", "VisionTransformer", "vit_b_16", "vit_b_32", "vit_l_16"]
