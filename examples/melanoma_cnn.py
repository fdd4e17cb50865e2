"""Melanoma vs. not melanoma on the DermMel layout, with AUROC, sensitivity and specificity."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from tinylesion import cli  # noqa: E402

if __name__ == "__main__":
    cli.main("melanoma")
