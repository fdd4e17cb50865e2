"""Train a CNN on HAM10000 (7 classes), or on a folder with one subfolder per class."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from tinylesion import cli  # noqa: E402

if __name__ == "__main__":
    cli.main("ham")
