"""torchvision.models' builders by name, from tinylesion's model registry (list_models):
`models.resnet18(weights=None, num_classes=7)` is `tinylesion.models.get_model("resnet18",
num_classes=7)`; whatever the registry lists is here, nothing is named twice.

As in torchvision, the last layer has num_classes outputs whatever num_classes is: two
classes give two logits (the registry's own models give a two-class task one logit), and
num_classes=1 gives one logit (the registry's binary head)."""
from .. import models as _registry


def list_models():
    """The names of the models tinylesion builds."""
    return list(_registry.list_models())


def get_model(name, **config):
    """Build model `name` (as torchvision.models.get_model); weights=None means random."""
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; tinylesion builds: "
                         f"{', '.join(sorted(list_models()))}")
    config.pop("progress", None)     # nothing is downloaded, so there is no progress bar
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
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; tinylesion builds: "
                         f"{', '.join(sorted(list_models()))}")


def __dir__():
    return sorted(set(globals()) | set(list_models()))
