"""A PyTorch script in the idioms of lesion-segmentation code: a two-level U-Net (reflection
padding, InstanceNorm2d, max pooling down, ConvTranspose2d up, skip connections joined by
torch.cat) trained with binary cross-entropy plus a soft Dice loss on synthetic 24x24 images of
dark elliptical blobs ("lesions") on textured skin; the report uses torch.quantile,
torch.median, torch.histc and torch.bucketize. Written as for PyTorch: only the import lines
name tinylesion."""
import argparse

import numpy as np

import tinylesion as torch
import tinylesion.nn as nn
import tinylesion.nn.functional as F
from tinylesion.utils.data import DataLoader, TensorDataset


def blobs(count, size=24, seed=0):
    """Images (count, 3, size, size) of a dark ellipse on noisy skin, and its masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((count, 3, size, size), np.float32)
    masks = np.empty((count, 1, size, size), np.float32)
    for i in range(count):
        cy, cx = rng.uniform(7, size - 7, 2)
        ry, rx = rng.uniform(3, 7, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dy * np.cos(angle) + dx * np.sin(angle)) / ry
        v = (-dy * np.sin(angle) + dx * np.cos(angle)) / rx
        mask = (u * u + v * v <= 1).astype(np.float32)
        skin = np.array([0.8, 0.6, 0.5])[:, None, None] + 0.2 * rng.standard_normal(
            (3, size, size))
        lesion = np.array([0.8, 0.6, 0.5])[:, None, None] * rng.uniform(0.5, 0.8)
        images[i] = skin * (1 - mask) + (lesion + 0.2 * rng.standard_normal((3, size, size))) * mask
        masks[i, 0] = mask
    return torch.tensor(images), torch.tensor(masks)


def block(c_in, c_out):
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3),
                         nn.InstanceNorm2d(c_out, affine=True), nn.LeakyReLU(0.1))


class UNet(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.down1, self.down2 = block(3, width), block(width, 2 * width)
        self.bottom = block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = block(2 * width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        b = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return self.head(u1)


def dice_per_image(probabilities, masks, eps=1.0):
    inter = (probabilities * masks).sum(dim=(1, 2, 3))
    total = probabilities.sum(dim=(1, 2, 3)) + masks.sum(dim=(1, 2, 3))
    return (2 * inter + eps) / (total + eps)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    train_images, train_masks = blobs(160, seed=0)
    test_images, test_masks = blobs(40, seed=1)
    model = UNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(train_images, train_masks), batch_size=16, shuffle=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, masks in loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = F.binary_cross_entropy_with_logits(logits, masks) + (
                1 - dice_per_image(torch.sigmoid(logits), masks)).mean()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        predicted = (model(test_images) > 0).float()
    dice = dice_per_image(predicted, test_masks, eps=1e-6)
    low, middle, high = torch.quantile(dice, torch.tensor([0.1, 0.5, 0.9])).tolist()
    areas = test_masks.sum(dim=(1, 2, 3))
    size_class = torch.bucketize(areas, torch.tensor([45.0, 80.0]))
    print(f"dice median {torch.median(dice).item():.3f}, deciles {low:.3f} {middle:.3f} "
          f"{high:.3f}; histogram {torch.histc(dice, bins=5, min=0, max=1).tolist()}; "
          f"lesions small/medium/large {torch.bincount(size_class, minlength=3).tolist()}")
    return dice.mean().item()


if __name__ == "__main__":
    main()
