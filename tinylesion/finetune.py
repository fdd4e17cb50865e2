"""Fine-tuning: freeze and unfreeze by module (frozen batch norm stays in evaluation mode),
a network's blocks and head, the papers' heads, pretrained weights with a new head, and the
examples' two-phase schedule (train the head frozen, then unfreeze at a smaller rate)."""
from . import nn
from .models.inception import IMAGENET_MEAN, IMAGENET_STD
from .nn.layers import _BatchNorm

HEADS = ("default", "maxpool512", "fc4096")
DEFAULT_FREEZE_EPOCHS = 3
KEEP_EVAL = "keep_eval"  # the flag Module.train() respects: the module stays in eval mode


# ---- freeze and unfreeze -------------------------------------------------------------------
def freeze(module):
    """Stop training `module`: its parameters get requires_grad=False and no gradient, and
    its batch norms stay in evaluation mode (normalising with, and never changing, their
    running statistics) even when model.train() is called; returns module."""
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            object.__setattr__(m, KEEP_EVAL, True)
            object.__setattr__(m, "training", False)
    return module


def unfreeze(module):
    """Train `module` again: requires_grad=True, its batch norms follow train()/eval() again
    (in the mode of `module` now); returns module."""
    for p in module.parameters():
        p.requires_grad_(True)
    for m in module.modules():
        if isinstance(m, _BatchNorm) and getattr(m, KEEP_EVAL, False):
            object.__setattr__(m, KEEP_EVAL, False)
            object.__setattr__(m, "training", module.training)
    return module


def frozen_parameters(model):
    """The names of the parameters that do not train, in the model's order."""
    return [name for name, p in model.named_parameters() if not p.requires_grad]


def set_frozen(model, names):
    """Freeze exactly the parameters named and unfreeze the others; a batch norm whose
    parameters are all frozen stays in evaluation mode."""
    names = set(names)
    unfreeze(model)
    for module_name, m in model.named_modules():
        own = {f"{module_name}.{k}" if module_name else k: v for k, v in m._parameters.items()
               if v is not None}
        for key, p in own.items():
            if key in names:
                p.requires_grad_(False)
                p.grad = None
        if isinstance(m, _BatchNorm) and own and all(k in names for k in own):
            object.__setattr__(m, KEEP_EVAL, True)
            object.__setattr__(m, "training", False)


# ---- blocks and head, per family -----------------------------------------------------------
def _features_stages(features, first=1):
    """MobileNet/EfficientNet: `features` after the stem, consecutive children of one output
    width as one stage (EfficientNet's stages are Sequentials already); the last 1×1
    convolution joins the last stage."""
    children = [c for c in list(features)[first:] if not isinstance(c, GlobalMaxPool2d)]
    last, stages, key = children.pop(), [], None
    for child in children:
        width = None if isinstance(child, nn.Sequential) else getattr(child, "out_channels",
                                                                       None)
        if stages and width is not None and width == key:
            stages[-1].append(child)
        else:
            stages.append([child])
        key = width
    stages[-1].append(last)
    return stages


def _split_after_pools(layers):
    """Consecutive layers up to and including each max-pool as one stage."""
    stages, current = [], []
    for layer in layers:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(current)
            current = []
    if current:
        stages[-1:] = [stages[-1] + current] if stages else [current]
    return stages


def blocks(model):
    """The network's blocks from input to output, each a list of modules (the stem before
    the first block and the head after the last are not blocks): ResNet's layer1..layer4,
    VGG's five convolution stages, DenseNet's dense blocks (each with its transition),
    MobileNet's stages of one width, EfficientNet's seven stages, Inception's Mixed blocks,
    ConvNeXt's four stages (each after the first with the downsampling before it), a vision
    transformer's encoder blocks (the last with the final LayerNorm), and for the papers'
    networks the convolution stages ending in a max-pool."""
    from . import models
    if isinstance(model, models.ResNet):
        return [[getattr(model, f"layer{i}")] for i in range(1, 5)]
    if isinstance(model, models.VGG):
        return _split_after_pools(list(model.features))
    if isinstance(model, models.DenseNet):
        stages, f = [], model.features
        for name, child in f.named_children():
            if name.startswith("denseblock"):
                stages.append([child])
            elif name.startswith("transition") or name == "norm5":
                stages[-1].append(child)
        return stages
    if isinstance(model, (models.MobileNetV2, models.MobileNetV3, models.EfficientNet)):
        return _features_stages(model.features)
    if isinstance(model, models.Inception3):
        return [[m] for name, m in model.named_children() if name.startswith("Mixed_")]
    if isinstance(model, models.ConvNeXt):
        f = list(model.features)
        return [[f[1]]] + [[f[i], f[i + 1]] for i in range(2, len(f), 2)]
    if isinstance(model, models.VisionTransformer):
        layers = [[layer] for layer in model.encoder.layers]
        layers[-1].append(model.encoder.ln)
        return layers
    if isinstance(model, models.Classifier):
        layers = list(model)
        cut = _first_flatten(layers)
        return _split_after_pools(layers[:cut])
    raise ValueError(f"{type(model).__name__}: no blocks are known for this network")


def _first_flatten(layers):
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Flatten):
            return i
    raise ValueError("the network has no Flatten layer before its classifier")


def head(model):
    """The modules of the classifier a new task replaces (always trained)."""
    from . import models
    if isinstance(model, models.ResNet):
        return [model.fc]
    if isinstance(model, models.Inception3):
        return [model.fc] + ([model.AuxLogits] if model.AuxLogits is not None else [])
    if isinstance(model, models.Classifier):
        return list(model)[_first_flatten(list(model)):]
    if isinstance(model, models.VisionTransformer):
        return [model.heads]
    if isinstance(model, models.Backbone):
        return [model.classifier]
    raise ValueError(f"{type(model).__name__}: its head is not known")


# ---- the papers' heads ---------------------------------------------------------------------
class GlobalMaxPool2d(nn.Module):
    """The maximum of each channel over the plane: (N, C, H, W) → (N, C, 1, 1)."""

    def forward(self, x):
        return x.amax(dim=(2, 3), keepdim=True)


def _mlp(widths, dropout=None):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _classifier_slot(model):
    """(attribute name, input width) of the model's last classifier module."""
    from . import models
    name = "fc" if isinstance(model, (models.ResNet, models.Inception3)) else "classifier"
    first = next(m for m in getattr(model, name).modules() if isinstance(m, nn.Linear))
    return name, first.in_features


def replace_head(model, kind):
    """Give a backbone one of the papers' heads on its feature width: "default" keeps its own
    (global average pooling + linear; VGG's FC 4096 pair), "maxpool512" is global max
    pooling, FC 512, ReLU, dropout 0.5, FC out (003), "fc4096" FC 4096-1024-256-32-out with
    ReLU between (001). Returns the model."""
    from . import models
    if kind not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, not {kind!r}")
    if kind == "default":
        return model
    if not isinstance(model, models.Backbone):
        raise ValueError(f"--head {kind} needs an ImageNet backbone, not {model.name}")
    if isinstance(model, (models.ConvNeXt, models.VisionTransformer)):
        raise ValueError(f"--head {kind} is for the backbones whose head is pooling and a "
                         f"linear layer, not {model.name} (keep its own head: --head default)")
    out = model.out_features
    name, width = _classifier_slot(model)
    if kind == "maxpool512":
        if isinstance(model, models.VGG):
            model.avgpool, width = GlobalMaxPool2d(), 512
        elif hasattr(model, "avgpool"):
            model.avgpool = GlobalMaxPool2d()
        else:  # NOTE: DenseNet and MobileNetV2 pool in forward(); a 1×1 map is pooled as is,
            model.features.add_module("maxpool", GlobalMaxPool2d())  # and ReLU commutes with max
        new = _mlp((width, 512, out), dropout=0.5)
    else:
        new = _mlp((width, 4096, 1024, 256, 32, out))
    setattr(model, name, new)
    model.config = {**model.config, "head": kind}
    return model


# ---- pretrained weights --------------------------------------------------------------------
def load_pretrained(model, path):
    """Load a weights file (.npz, .pth/.pt, .safetensors) into `model` through
    models.load_weights: a head whose shapes do not fit the model's classes is dropped (the
    keys dropped are returned); anything else that does not fit is a one-line ValueError
    naming the file and the keys, and the model is left as it was."""
    from .models.pretrained import load_weights
    from .nn.module import StateDictError
    from .io import load
    try:
        state = load(path)
    except Exception as exc:  # noqa: BLE001 - whatever the reader says is the file's problem
        said = (str(exc).splitlines() or [type(exc).__name__])[0]
        if said.startswith(f"{path} "):   # the reader's "PATH is not ...": said once
            said = "it" + said[len(str(path)):]
        raise ValueError(f"{path}: cannot read weights: {said[:300]}") from None
    try:
        return load_weights(model, dict(state) if isinstance(state, dict) else state,
                            log=lambda text: None)
    except StateDictError as exc:
        text = str(exc).replace("the state_dict", str(path), 1)
        hint = "" if "NaN or infinite" in text else " (weights of another architecture?)"
        raise ValueError(text + hint) from None


# ---- the two-phase schedule ----------------------------------------------------------------
def parameter_groups(model, lr, lr_factor):
    """The optimizer's groups: the head at `lr` first, then the rest at lr × lr_factor (the
    rate the backbone trains at once unfrozen; a plateau schedule scales both alike)."""
    head_ids = {id(p) for m in head(model) for p in m.parameters()}
    head_params = [p for p in model.parameters() if id(p) in head_ids]
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": head_params, "lr": lr}, {"params": body, "lr": lr * lr_factor}]


class TwoPhase:
    """Before epoch `freeze_epochs` (0-based) everything but the head is frozen; from it on,
    the last `unfreeze_blocks` blocks (all of the network when None) train too. The phase
    is a function of the epoch, so a resumed run is in the phase of its epoch; the
    checkpoint keeps the phase and the frozen parameters' names as a record."""

    def __init__(self, model, freeze_epochs, unfreeze_blocks=None, log=print):
        self.model, self.freeze_epochs = model, int(freeze_epochs)
        self.unfreeze_blocks, self.log = unfreeze_blocks, log
        self.phase = None

    def phase_of(self, epoch):
        return "frozen" if epoch < self.freeze_epochs else "unfrozen"

    def before_epoch(self, epoch):
        """Put the model in the phase of `epoch` (0-based); say so when it changes."""
        phase = self.phase_of(epoch)
        if phase == self.phase:
            return
        freeze(self.model)
        if phase == "frozen":
            for m in head(self.model):
                unfreeze(m)
        elif self.unfreeze_blocks is None:
            unfreeze(self.model)
        else:
            for m in head(self.model):
                unfreeze(m)
            for stage in blocks(self.model)[-self.unfreeze_blocks:]:
                for m in stage:
                    unfreeze(m)
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if self.phase is not None or phase == "unfrozen":
            what = ("every layer" if self.unfreeze_blocks is None else
                    f"the last {self.unfreeze_blocks} block(s) and the head")
            self.log(f"fine-tuning from epoch {epoch + 1}: {what} unfrozen "
                     f"({trainable:,} parameters train)")
        else:
            first = ("epoch 1" if self.freeze_epochs == 1 else
                     f"epochs 1-{self.freeze_epochs}")
            self.log(f"{first}: the backbone is frozen, the head trains ({trainable:,} "
                     "parameters)")
        self.phase = phase

    def state_dict(self):
        return {"phase": self.phase, "frozen": frozen_parameters(self.model)}

    def load_state_dict(self, state):
        """Restore the frozen parameters a checkpoint recorded."""
        if not isinstance(state, dict) or state.get("phase") not in ("frozen", "unfrozen") \
                or not isinstance(state.get("frozen"), list):
            raise ValueError("entry 'finetune' must be {phase, frozen}")
        set_frozen(self.model, state["frozen"])
        self.phase = state["phase"]


def pretrained_stats(path):
    """The channel mean and std to normalise with when fine-tuning from `path`, and where they
    come from: the run.json beside a weights file that tinylesion trained, else ImageNet's."""
    import json
    import math
    from pathlib import Path
    run_json = Path(path).parent / "run.json"
    try:
        run = json.loads(run_json.read_text())
        mean, std = [float(v) for v in run["mean"]], [float(v) for v in run["std"]]
        if len(mean) == len(std) == 3 and all(math.isfinite(v) for v in mean + std) and \
                min(std) > 0:
            import numpy as np
            return np.asarray(mean), np.asarray(std), f"those of {run_json}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    mean, std = imagenet_stats()
    return mean, std, "ImageNet's"


def imagenet_stats():
    """The ImageNet channel mean and std (in [0, 1] scale) the published weights expect."""
    import numpy as np
    return np.asarray(IMAGENET_MEAN, float), np.asarray(IMAGENET_STD, float)


# ---- the examples' flags -------------------------------------------------------------------
FLAGS = ("freeze_epochs", "unfreeze_blocks", "finetune_lr_factor")


def file_path(text):
    """An argparse type: a non-empty file path, else a one-line ArgumentTypeError."""
    import argparse
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a weights file, got an empty string")
    return text


file_path.__name__ = "file path"


def check_flags(args, given, resuming=False):
    """Raise ValueError (one line, naming the flag) for fine-tuning flags that cannot apply
    or a --pretrained path that is not a file (unless resuming: the checkpoint has the
    weights); fill freeze_epochs's default. Nothing is written."""
    import os
    pretrained = getattr(args, "pretrained", None)
    if pretrained is not None and not resuming and not os.path.isfile(pretrained):
        raise ValueError(f"--pretrained {pretrained}: " + (
            "is a folder, not a weights file" if os.path.isdir(pretrained) else "no such file"))
    if pretrained is None:
        for dest in FLAGS:
            if dest in given:
                raise ValueError(f"--{dest.replace('_', '-')} needs --pretrained FILE (the "
                                 "weights to fine-tune)")
        return
    if args.freeze_epochs is None:
        args.freeze_epochs = DEFAULT_FREEZE_EPOCHS


def setup(args, model, log, resuming=False):
    """For the examples: load --pretrained (unless resuming: the checkpoint has the weights),
    give the model its --head, and return (parameter groups or parameters for the optimizer,
    the TwoPhase schedule or None). ValueErrors name the flag and the problem."""
    from .models import Backbone
    pretrained = getattr(args, "pretrained", None)
    if pretrained is not None and not resuming:
        try:
            dropped = load_pretrained(model, pretrained)
        except ValueError as exc:
            raise ValueError(f"--pretrained {exc}") from None
        log(f"pretrained weights from {pretrained}" + (
            f"; dropped the head ({', '.join(dropped)}: another number of classes)"
            if dropped else ""))
    elif pretrained is None and isinstance(model, Backbone):
        log(f"model {model.name}: no --pretrained weights: trained from scratch (random "
            "initialisation)")
    replace_head(model, getattr(args, "head", "default"))
    if pretrained is None:
        return model.parameters(), None
    n_blocks = len(blocks(model))
    if args.unfreeze_blocks is not None and args.unfreeze_blocks > n_blocks:
        raise ValueError(f"--unfreeze-blocks {args.unfreeze_blocks}: {model.name} has "
                         f"{n_blocks} blocks")
    phases = TwoPhase(model, args.freeze_epochs, args.unfreeze_blocks, log)
    if args.freeze_epochs >= args.epochs:
        log(f"note: --freeze-epochs {args.freeze_epochs} >= --epochs {args.epochs}: the "
            "backbone stays frozen throughout")
    return parameter_groups(model, args.lr, args.finetune_lr_factor), phases
