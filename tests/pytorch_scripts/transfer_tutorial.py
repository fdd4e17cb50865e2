"""A fine-tuning script in the shape most PyTorch users start from: train/ and val/ folders
read by ImageFolder with a transform per phase, resnet18 with its `fc` replaced for the
dataset's classes, SGD with momentum and StepLR, one loop over both phases under
torch.set_grad_enabled, running sums of `loss.item() * inputs.size(0)` and
`torch.sum(preds == labels.data)`, tensors printed through f-string formats, the best
weights kept with copy.deepcopy(model.state_dict()) and loaded back at the end, softmax
probabilities gathered with torch.cat. Only the import lines name tinylesion."""
import argparse
import copy
import os

import tinylesion as torch
import tinylesion.nn as nn
import tinylesion.optim as optim
from tinylesion.optim import lr_scheduler
from tinylesion.vision import datasets, models, transforms


def make_loaders(data_dir, size, batch_size, workers):
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    data_transforms = {
        "train": transforms.Compose([transforms.RandomResizedCrop(size),
                                     transforms.RandomHorizontalFlip(),
                                     transforms.ToTensor(), transforms.Normalize(mean, std)]),
        "val": transforms.Compose([transforms.Resize(size + size // 8),
                                   transforms.CenterCrop(size),
                                   transforms.ToTensor(), transforms.Normalize(mean, std)]),
    }
    image_datasets = {x: datasets.ImageFolder(os.path.join(data_dir, x), data_transforms[x])
                      for x in ["train", "val"]}
    dataloaders = {x: torch.utils.data.DataLoader(image_datasets[x], batch_size=batch_size,
                                                  shuffle=(x == "train"), num_workers=workers)
                   for x in ["train", "val"]}
    sizes = {x: len(image_datasets[x]) for x in ["train", "val"]}
    return dataloaders, sizes, image_datasets["train"].classes


def train_model(model, criterion, optimizer, scheduler, dataloaders, sizes, device,
                num_epochs):
    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    for epoch in range(num_epochs):
        print(f"Epoch {epoch}/{num_epochs - 1}")
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            running_loss = 0.0
            running_corrects = 0
            for inputs, labels in dataloaders[phase]:
                inputs = inputs.to(device)
                labels = labels.to(device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()
            epoch_loss = running_loss / sizes[phase]
            epoch_acc = running_corrects.double() / sizes[phase]
            print(f"{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}")
            if phase == "val" and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())
    print(f"Best val Acc: {best_acc:4f}")
    model.load_state_dict(best_model_wts)
    return model, best_acc


def main(argv=None):
    parser = argparse.ArgumentParser(description="fine-tune resnet18 on train/ and val/")
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    dataloaders, sizes, class_names = make_loaders(args.data, args.size, args.batch_size,
                                                   args.workers)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    model_ft = models.resnet18(weights=None)
    num_ftrs = model_ft.fc.in_features
    model_ft.fc = nn.Linear(num_ftrs, len(class_names))
    model_ft = model_ft.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer_ft = optim.SGD(model_ft.parameters(), lr=0.01, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)
    model_ft, best_acc = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler,
                                     dataloaders, sizes, device, args.epochs)
    model_ft.eval()
    probabilities, targets = [], []
    with torch.no_grad():
        for inputs, labels in dataloaders["val"]:
            probabilities.append(torch.nn.functional.softmax(model_ft(inputs.to(device)), 1))
            targets.append(labels)
    probabilities = torch.cat(probabilities).cpu()
    targets = torch.cat(targets)
    accuracy = (probabilities.argmax(dim=1) == targets).float().mean()
    print(f"classes {class_names}; final val accuracy {accuracy:.3f}")
    torch.save(model_ft.state_dict(), "model_ft.pth")
    return best_acc, accuracy


if __name__ == "__main__":
    main()
