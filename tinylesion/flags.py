"""Command-line flag types shared by the examples and the synthetic-data tool (no imports of ours)."""
import argparse


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
