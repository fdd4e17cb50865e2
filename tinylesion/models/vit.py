"""Vision Transformers ViT-B/16, B/32 and L/16 (Dosovitskiy et al., 2021), with
torchvision's module names and layout."""
import math

import numpy as np

from .. import backend, nn
from ..functions import cat
from ..nn import init
from .backbone import Backbone
from .registry import register_model


class MLPBlock(nn.Sequential):
    """Linear to mlp_dim, GELU, dropout, linear back, dropout ("0" to "4" as torchvision);
    linear weights Xavier-uniform, biases N(0, 1e-6²)."""

    def __init__(self, dim, mlp_dim, dropout):
        super().__init__(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mlp_dim, dim), nn.Dropout(dropout))
        for layer in (self[0], self[3]):
            init.xavier_uniform_(layer.weight)
            init.normal_(layer.bias, std=1e-6)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + dropout(attention(ln_1(x))), then that plus
    mlp(ln_2(·)); LayerNorms with eps 1e-6."""

    def __init__(self, num_heads, dim, mlp_dim, dropout, attention_dropout):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, num_heads, dropout=attention_dropout,
                                                    batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, mlp_dim, dropout)

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = self.dropout(y) + x
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """The learned position embedding (N(0, 0.02²)) added to the tokens, dropout, the blocks
    (`layers.encoder_layer_0`, ...), a final LayerNorm `ln`."""

    def __init__(self, seq_length, num_layers, num_heads, dim, mlp_dim, dropout,
                 attention_dropout):
        super().__init__()
        self.pos_embedding = nn.Parameter(np.zeros((1, seq_length, dim), backend.DEFAULT_DTYPE))
        init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential()
        for i in range(num_layers):
            self.layers.add_module(f"encoder_layer_{i}", EncoderBlock(
                num_heads, dim, mlp_dim, dropout, attention_dropout))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        if tuple(x.shape[1:]) != tuple(self.pos_embedding.shape[1:]):
            raise ValueError(f"Encoder takes (N, {self.pos_embedding.shape[1]}, "
                             f"{self.pos_embedding.shape[2]}) tokens, got {tuple(x.shape)}")
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


# variant: (patch size, layers, heads, width, MLP width)
VIT_VARIANTS = {"vit_b_16": (16, 12, 12, 768, 3072), "vit_b_32": (32, 12, 12, 768, 3072),
                "vit_l_16": (16, 24, 16, 1024, 4096)}


class VisionTransformer(Backbone):
    """`conv_proj` cuts the image into patch_size × patch_size patches and embeds each
    (a convolution with that kernel and stride); a learned `class_token` is put before them;
    the `encoder` runs; `heads.head` classifies the class token's output. The input must be
    the model's image_size (the position embedding has one entry per patch), each side a
    multiple of the patch size."""
    head_keys = ("heads.head.weight", "heads.head.bias")
    min_size = 16     # the smallest patch; the multiple-of-the-patch check does the rest

    def __init__(self, name, patch_size, num_layers, num_heads, hidden_dim, mlp_dim,
                 num_classes, image_size, dropout=0.0, attention_dropout=0.0):
        super().__init__(name, num_classes, image_size,
                         dict(dropout=dropout, attention_dropout=attention_dropout))
        W, H = self.image_size
        if W % patch_size or H % patch_size:
            raise ValueError(f"{name}: image_size {W}x{H} must be a multiple of the patch "
                             f"size {patch_size} on each side")
        self.patch_size, self.hidden_dim = patch_size, hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, patch_size, stride=patch_size)
        fan_in = 3 * patch_size * patch_size
        init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1.0 / fan_in))
        init.zeros_(self.conv_proj.bias)
        self.class_token = nn.Parameter(np.zeros((1, 1, hidden_dim), backend.DEFAULT_DTYPE))
        patches = (W // patch_size) * (H // patch_size)
        self.encoder = Encoder(patches + 1, num_layers, num_heads, hidden_dim, mlp_dim,
                               dropout, attention_dropout)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(hidden_dim, self.out_features))
        init.zeros_(self.heads.head.weight)
        init.zeros_(self.heads.head.bias)

    def check_input(self, x):
        W, H = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, H, W):
            raise ValueError(f"{self.name} takes input (N, 3, {H}, {W}) (its image_size; "
                             f"build it with another image_size for others), got "
                             f"{tuple(x.shape)}")

    def forward(self, x):
        self.check_input(x)
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)   # (N, patches, hidden)
        token = self.class_token.expand(x.shape[0], 1, self.hidden_dim)
        out = self.encoder(cat([token, tokens], dim=1))
        return self.heads(out[:, 0])


def _vit(name):
    patch, layers, heads, width, mlp = VIT_VARIANTS[name]

    def build(num_classes=1000, image_size=(224, 224), dropout=0.0, attention_dropout=0.0):
        return VisionTransformer(name, patch, layers, heads, width, mlp, num_classes,
                                 image_size, dropout, attention_dropout)
    build.__name__ = name
    build.__doc__ = (f"{name}: {patch}x{patch} patches, {layers} blocks of {heads} heads, "
                     f"width {width}, MLP {mlp}, torchvision's layout.")
    return register_model(name, image_size=(224, 224), num_classes=1000)(build)


vit_b_16 = _vit("vit_b_16")
vit_b_32 = _vit("vit_b_32")
vit_l_16 = _vit("vit_l_16")
