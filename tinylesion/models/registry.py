"""The model registry: builders register under a name; get_model builds one by name."""
import contextvars
import inspect
from dataclasses import dataclass, field

MODELS = {}

# True while get_model builds a model with one logit per class even for two classes
# (torchvision's convention, which tinylesion.vision.models follows).
_PER_CLASS_LOGITS = contextvars.ContextVar("per_class_logits", default=False)


def head_units(num_classes):
    """The width of a model's last layer: one logit for a binary task (two classes, trained
    with binary cross-entropy), else one per class; one per class always while get_model
    builds with per_class_logits=True."""
    return 1 if num_classes == 2 and not _PER_CLASS_LOGITS.get() else num_classes


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, the builder's fixed arguments and its defaults."""
    builder: object
    description: str
    fixed: dict = field(default_factory=dict)
    num_classes: int = 7
    image_size: tuple = (224, 224)


def register_model(name=None, description="", *, fixed=None, num_classes=7,
                   image_size=(224, 224)):
    """Decorator: register the builder under `name` (default: the builder's own name).

    The builder takes num_classes= and image_size= (width, height) and returns a model with
    `name`, `num_classes`, `image_size`, `binary` and `config` attributes; `fixed` are
    keyword arguments always passed (padua1..padua5 are one builder with blocks fixed).
    """
    def decorate(builder):
        key = name or builder.__name__
        if key in MODELS:
            raise ValueError(f"model {key!r} is registered twice")
        doc = (builder.__doc__ or "").strip().splitlines()
        MODELS[key] = ModelSpec(builder, description or (doc[0] if doc else ""),
                                dict(fixed or {}), num_classes, tuple(image_size))
        return builder
    return decorate


def list_models():
    """The registered model names, in registration order."""
    return list(MODELS)


def get_model(name, num_classes=None, image_size=None, weights=None, **options):
    """Build the registered model `name` (the defaults of num_classes and image_size, given
    as (width, height) or 'WxH', are the model's own); options go to its builder.

    `weights` is a file (.npz, PyTorch .pth/.pt or .safetensors) whose state_dict is loaded
    into the model by models.pretrained.load_weights: a head that does not fit num_classes
    is dropped with a HeadDroppedWarning naming its keys; other mismatches are errors.
    per_class_logits=True gives a two-class model two logits (softmax cross-entropy), as
    torchvision's models have, instead of one (binary cross-entropy); the model's config
    keeps it, so that a checkpoint rebuilds the same head.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    spec = MODELS[name]
    head = options.pop("head", "default")  # a fine-tuned model's head (finetune.HEADS)
    per_class_logits = options.pop("per_class_logits", False)
    if not isinstance(per_class_logits, bool):
        raise ValueError(f"model {name!r}: per_class_logits must be True or False, not "
                         f"{per_class_logits!r}")
    clash = sorted(set(options) & set(spec.fixed))
    if clash:
        raise ValueError(f"model {name!r} fixes {', '.join(clash)}; do not pass it")
    known = set(inspect.signature(spec.builder).parameters) - set(spec.fixed)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; its options: "
                         f"{', '.join(sorted(known - {'num_classes', 'image_size'}))}")
    token = _PER_CLASS_LOGITS.set(per_class_logits)
    try:
        model = spec.builder(
            num_classes=spec.num_classes if num_classes is None else num_classes,
            image_size=spec.image_size if image_size is None else image_size,
            **spec.fixed, **options)
    finally:
        _PER_CLASS_LOGITS.reset(token)
    if per_class_logits and model.num_classes == 2:
        model.config = dict(model.config, per_class_logits=True)
    if head != "default":
        from ..finetune import replace_head
        replace_head(model, head)
    if weights is not None:
        from .pretrained import load_weights
        load_weights(model, weights, _stacklevel=3)  # the warning names get_model's caller
    return model
