"""torchvision.datasets' folder datasets (ImageFolder, DatasetFolder); nothing downloads."""
import os

from PIL import Image

from ..utils.data import Dataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename, extensions):
    """True when filename ends (case-insensitively) with one of extensions."""
    ext = extensions if isinstance(extensions, str) else tuple(extensions)
    return filename.lower().endswith(ext)


def is_image_file(filename):
    """True for the usual image extensions."""
    return has_file_allowed_extension(filename, IMG_EXTENSIONS)


def pil_loader(path):
    """Open an image file as an RGB PIL image (read whole, the file closed)."""
    with open(path, "rb") as f:
        image = Image.open(f)
        return image.convert("RGB")


default_loader = pil_loader


def find_classes(directory):
    """(sorted class folder names, {name: index}) of the folders directly in `directory`."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"dataset root {directory} does not exist or is not a folder")
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(directory, class_to_idx=None, extensions=None, is_valid_file=None,
                 allow_empty=False):
    """[(path, class index)] of the files under each class folder (walked in sorted order,
    symbolic links followed) that have one of `extensions` or pass is_valid_file(path)."""
    directory = os.path.expanduser(os.fspath(directory))
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at the "
                         "same time")
    if extensions is not None:
        def is_valid_file(path):
            return has_file_allowed_extension(path, extensions)
    samples, empty = [], []
    for name in sorted(class_to_idx):
        index = class_to_idx[name]
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            continue
        count = 0
        for root, _, files in sorted(os.walk(folder, followlinks=True)):
            for fname in sorted(files):
                path = os.path.join(root, fname)
                if is_valid_file(path):
                    samples.append((path, index))
                    count += 1
        if count == 0:
            empty.append(name)
    if empty and not allow_empty:
        allowed = "" if extensions is None else \
            f" Supported extensions are: {extensions if isinstance(extensions, str) else ', '.join(extensions)}"
        raise FileNotFoundError(f"Found no valid file for the classes {', '.join(sorted(empty))}"
                                f" in {directory}.{allowed}")
    return samples


class DatasetFolder(Dataset):
    """Samples from root/<class>/<...>/<file>: (loader(path) transformed, class index).

    classes (sorted folder names), class_to_idx, samples [(path, index)] and targets as
    torchvision's; the files are listed once, at construction.
    """

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None,
                 is_valid_file=None, allow_empty=False):
        self.root = os.fspath(root)
        self.loader = loader
        self.extensions = extensions
        self.transform = transform
        self.target_transform = target_transform
        self.classes, self.class_to_idx = self.find_classes(self.root)
        self.samples = self.make_dataset(self.root, self.class_to_idx, extensions,
                                         is_valid_file, allow_empty)
        self.targets = [index for _, index in self.samples]

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        """The (path, class index) list; override to list files another way."""
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory):
        """(classes, class_to_idx); override to name classes another way."""
        return find_classes(directory)

    def __getitem__(self, index):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self):
        return len(self.samples)

    def __repr__(self):
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}")


class ImageFolder(DatasetFolder):
    """DatasetFolder of image files (IMG_EXTENSIONS) opened as RGB PIL images."""

    def __init__(self, root, transform=None, target_transform=None, loader=default_loader,
                 is_valid_file=None, allow_empty=False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None,
                         transform=transform, target_transform=target_transform,
                         is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples


# torchvision datasets that fetch their files from the internet: tinylesion never downloads.
DOWNLOADING = ("MNIST", "FashionMNIST", "KMNIST", "EMNIST", "QMNIST", "CIFAR10", "CIFAR100",
               "SVHN", "STL10", "ImageNet", "CelebA", "Caltech101", "Caltech256", "Flowers102",
               "Food101", "OxfordIIITPet", "StanfordCars", "VOCDetection", "VOCSegmentation",
               "CocoDetection", "Places365", "INaturalist", "DTD", "EuroSAT", "GTSRB",
               "FGVCAircraft", "Country211", "PCAM", "SUN397", "LFWPeople", "Omniglot")


def _refusing(name):
    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"tinylesion.vision.datasets.{name} is not available: tinylesion "
                           "never downloads data; pass local files (class folders through "
                           "ImageFolder, or your own Dataset subclass)")
    return type(name, (Dataset,), {"__init__": __init__,
                                   "__doc__": f"{name}: refused (it would download)."})


def __getattr__(name):
    if name in DOWNLOADING:
        return _refusing(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
