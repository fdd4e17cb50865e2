"""A PyTorch transfer-style training script over image files: ImageFolder for training, a
Dataset subclass reading a CSV of image paths with PIL for validation, transforms.Compose,
random_split, a device loop with model.train()/eval() and torch.no_grad(), a checkpoint of
model and optimizer state. Written as for PyTorch: only the import lines name tinylesion."""
import argparse
import csv
import os

from PIL import Image

import tinylesion as torch
import tinylesion.nn as nn
import tinylesion.vision as torchvision
from tinylesion.utils.data import DataLoader, Dataset, random_split
from tinylesion.vision import transforms


class CsvImages(Dataset):
    """Rows of `path,label` in a CSV file; images opened with PIL."""

    def __init__(self, csv_file, transform=None):
        with open(csv_file, newline="") as f:
            self.rows = [(row["path"], int(row["label"])) for row in csv.DictReader(f)]
        self.root = os.path.dirname(csv_file)
        self.transform = transform

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        path, label = self.rows[idx]
        image = Image.open(os.path.join(self.root, path)).convert("RGB")
        if self.transform:
            image = self.transform(image)
        return image, torch.tensor(label)


class SmallCNN(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def evaluate(model, loader, device, criterion):
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device)
            outputs = model(images)
            loss_sum += criterion(outputs, labels).item() * images.size(0)
            _, predicted = torch.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return loss_sum / total, correct / total


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="checkpoint.pth")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    train_tf = transforms.Compose([
        transforms.Resize(36), transforms.RandomCrop(32), transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(10), transforms.ColorJitter(brightness=0.1, contrast=0.1),
        transforms.ToTensor(), transforms.Normalize(mean, std)])
    eval_tf = transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32),
                                  transforms.ToTensor(), transforms.Normalize(mean, std)])

    full = torchvision.datasets.ImageFolder(os.path.join(args.data, "train"), transform=train_tf)
    n_val = int(0.2 * len(full))
    train_set, holdout = random_split(full, [len(full) - n_val, n_val],
                                      generator=torch.Generator().manual_seed(42))
    test_set = CsvImages(os.path.join(args.data, "test.csv"), transform=eval_tf)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              num_workers=args.workers, pin_memory=True, drop_last=True)
    holdout_loader = DataLoader(holdout, batch_size=args.batch_size, num_workers=args.workers)
    test_loader = DataLoader(test_set, batch_size=args.batch_size, shuffle=False)
    print(f"classes: {full.classes}; train {len(train_set)}, holdout {len(holdout)}, "
          f"test {len(test_set)}")

    model = SmallCNN(len(full.classes)).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                                weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    best = 0.0
    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
        scheduler.step()
        _, holdout_acc = evaluate(model, holdout_loader, device, criterion)
        print(f"epoch {epoch + 1}: train loss {running / len(train_loader):.4f}, "
              f"holdout accuracy {holdout_acc:.3f}")
        if holdout_acc >= best:
            best = holdout_acc
            torch.save({"epoch": epoch + 1, "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict(),
                        "classes": full.classes}, args.out)

    checkpoint = torch.load(args.out, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    test_loss, test_acc = evaluate(model, test_loader, device, criterion)
    print(f"test loss {test_loss:.4f}, test accuracy {test_acc:.3f} "
          f"(epoch {checkpoint['epoch']})")
    return test_acc


if __name__ == "__main__":
    main()
