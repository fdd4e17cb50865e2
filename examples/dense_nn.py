"""A dense network on the pixels (flatten, 1024, 256, 64, 16, 4, output)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from tinylesion import cli  # noqa: E402

if __name__ == "__main__":
    cli.main("dense")
