"""Flag types and the one-line-error parser of the examples and tools (no imports of ours)."""
import argparse


class UsageError(Exception):
    """A problem with the command line or the data folder, reported in one line (exit 2)."""


def int_at_least(low):
    """An argparse type: an integer >= low, else a one-line ArgumentTypeError."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def folder_path(text):
    """An argparse type: a non-empty folder path (an empty one would quietly mean the current
    folder), else a one-line ArgumentTypeError."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder path, got an empty string")
    return text


folder_path.__name__ = "folder path"


def choice(name, choices, aliases=None):
    """An argparse type: one of choices in any letter case (aliases map other words to them),
    else a one-line ArgumentTypeError listing the choices."""
    def parse(text):
        value = (aliases or {}).get(text.lower(), text.lower())
        if value not in choices:
            raise argparse.ArgumentTypeError(f"choose {name} from {', '.join(choices)}; "
                                             f"got {text!r}")
        return value
    parse.__name__ = name
    return parse


DEVICE = choice("a device", ("cpu", "gpu", "auto"), {"cuda": "gpu"})


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: 'prog: error: ...' and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def image_size(text):
    """'WxH' → (width, height)."""
    parts = text.lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 100x75, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return w, h
