"""torchvision.models' builders by name, from tinylesion's model registry (list_models):
`models.resnet18(weights=None, num_classes=7)` is `tinylesion.models.get_model("resnet18",
num_classes=7)`; whatever the registry lists is here, nothing is named twice.

As in torchvision, the last layer has num_classes outputs whatever num_classes is: two
classes give two logits (the registry's own models give a two-class task one logit), and
num_classes=1 gives one logit (the registry's binary head)."""
import warnings

from .. import models as _registry
from . import weights as _weights
from .weights import get_model_weights, get_weight  # noqa: F401  (torchvision's names)


def list_models():
    """The names of the models tinylesion builds."""
    return list(_registry.list_models())


def get_model(name, **config):
    """Build model `name` (as torchvision.models.get_model). weights: None (random), a
    weights file, or a weights enum member (ResNet50_Weights.DEFAULT, or its name "DEFAULT"),
    read from torchvision's download folder (tinylesion.vision.weights); the deprecated
    pretrained=True means the IMAGENET1K_V1 member, as in torchvision."""
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; tinylesion builds: "
                         f"{', '.join(sorted(list_models()))}")
    config.pop("progress", None)     # nothing is downloaded, so there is no progress bar
    if "init_weights" in config:     # torchvision's switch for VGG and Inception's own init:
        if not isinstance(config.pop("init_weights"), (bool, type(None))):   # always done
            raise ValueError(f"{name}: init_weights must be True, False or None")
    if "pretrained" in config:
        pretrained = config.pop("pretrained")
        if not isinstance(pretrained, bool):
            raise ValueError(f"{name}: pretrained must be True or False, not {pretrained!r}")
        warnings.warn("the parameter 'pretrained' is deprecated (as in torchvision): use "
                      "'weights' instead", UserWarning, stacklevel=3)
        if pretrained:
            if config.get("weights") is not None:
                raise ValueError(f"{name}: give pretrained or weights, not both")
            config["weights"] = "IMAGENET1K_V1"
            if name not in _weights.ENUMS:
                raise ValueError(f"{name}: no published weights are known for it; pass "
                                 "weights= the path of a weights file")
    member = _weights.resolve(name, config.get("weights"))
    if isinstance(member, _weights.WeightsEnum):
        classes = config.setdefault("num_classes", member.meta["num_classes"])
        if classes != member.meta["num_classes"]:
            raise ValueError(f"{name}: {member!r} has {member.meta['num_classes']} classes, "
                             f"not num_classes={classes!r} (build with weights and replace "
                             "the head, or pass weights= a file: a head that does not fit "
                             "is then dropped)")
        if name == "inception_v3":
            config.setdefault("transform_input", True)   # as torchvision does for its file
        if name.startswith("vit_"):     # the position embedding is sized for the file's input
            config.setdefault("image_size", tuple(member.meta["min_size"]))
        config["weights"] = member.local_file()
    if config.get("weights", "absent") is None:
        del config["weights"]
    if config.get("num_classes") == 1 and not isinstance(config["num_classes"], bool):
        config["num_classes"] = 2          # one logit: the registry's binary head
    else:
        config.setdefault("per_class_logits", True)
    return _registry.get_model(name, **config)


def _builder(name):
    def build(*, weights=None, progress=True, **kwargs):
        return get_model(name, weights=weights, progress=progress, **kwargs)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build {name} (tinylesion.models.get_model({name!r}, **kwargs))."
    return build


def __getattr__(name):
    if not name.startswith("_") and name in list_models():
        return _builder(name)
    if name.endswith("_Weights") and hasattr(_weights, name):
        return getattr(_weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; tinylesion builds: "
                         f"{', '.join(sorted(list_models()))}")


def __dir__():
    return sorted(set(globals()) | set(list_models())
                  | {e.__name__ for e in _weights.ENUMS.values()})
