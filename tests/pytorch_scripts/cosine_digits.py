"""A PyTorch script in the idioms of metric-learning code: a small CNN with GroupNorm, PReLU
and ELU, a cosine classifier against class prototypes kept in an nn.Embedding
(F.normalize, einsum), one-hot targets made with scatter_, class weights from bincount,
gradient norms with torch.norm, and a confusion matrix from bincount. On scikit-learn's 8x8
digits. Written as for PyTorch: only the import lines name tinylesion."""
import argparse

import numpy as np
from sklearn.datasets import load_digits

import tinylesion as torch
import tinylesion.nn as nn
import tinylesion.nn.functional as F
from tinylesion.utils.data import DataLoader, TensorDataset


class CosineNet(nn.Module):
    def __init__(self, num_classes=10, dim=16, scale=10.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.PReLU(8),
            nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.GroupNorm(4, 16), nn.ELU(),
            nn.Flatten(), nn.Linear(16 * 4 * 4, dim))
        self.prototypes = nn.Embedding(num_classes, dim)
        self.scale = scale

    def forward(self, x):
        z = F.normalize(self.features(x), dim=1)
        w = F.normalize(self.prototypes.weight, dim=1)
        return self.scale * torch.einsum("bd,cd->bc", z, w)


def data(train_count=1200):
    digits = load_digits()
    images = torch.tensor(digits.images[:, None] / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    return (TensorDataset(images[:train_count], labels[:train_count]),
            TensorDataset(images[train_count:], labels[train_count:]))


def soft_targets(labels, num_classes, smoothing):
    one_hot = torch.zeros(len(labels), num_classes).scatter_(1, labels.unsqueeze(1), 1.0)
    return one_hot * (1 - smoothing) + smoothing / num_classes


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    train_set, test_set = data()
    counts = torch.bincount(train_set.tensors[1], minlength=10)
    class_weights = counts.sum() / (10 * counts.float())
    model = CosineNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(train_set, batch_size=64, shuffle=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            log_probs = F.log_softmax(model(images), dim=1)
            per_sample = -(soft_targets(labels, 10, 0.1) * log_probs).sum(dim=1)
            loss = (per_sample * class_weights.index_select(0, labels)).mean()
            loss.backward()
            grad_norm = torch.norm(torch.stack([p.grad.norm(2) for p in model.parameters()]))
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}, gradient norm {grad_norm.item():.4f}")
    model.eval()
    images, labels = test_set.tensors
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    confusion = torch.bincount(labels * 10 + predicted, minlength=100).reshape(10, 10)
    accuracy = torch.einsum("ii", confusion).item() / len(labels)   # the trace
    wrong = (predicted != labels).nonzero(as_tuple=True)[0]
    print(f"test accuracy {accuracy:.3f}, {len(wrong)} wrong, classes predicted "
          f"{torch.unique(predicted).tolist()}")
    return accuracy


if __name__ == "__main__":
    main()
