"""A lesion-segmentation script in PyTorch's idioms (tests/pytorch_scripts/unet_blobs.py: a
U-Net with ReflectionPad2d, InstanceNorm2d, ConvTranspose2d and skip connections, BCE plus
Dice, a report with quantile, median, histc and bucketize) trains with only its imports
naming tinylesion."""
from test_pytorch_habits_scripts import run_script


def test_unet_segmentation_script_trains(monkeypatch, capsys):
    namespace, dice = run_script("unet_blobs.py", ["--epochs", "3"], monkeypatch)
    out = capsys.readouterr().out
    assert out.count("epoch") == 3 and "dice median" in out, out
    assert dice > 0.8, out   # PyTorch's run of the same script: 0.868 (tinylesion: 0.867)
    histogram = out.split("histogram ")[1].split(";")[0]
    assert sum(float(v) for v in histogram.strip("[]").split(",")) == 40.0
    model = namespace["UNet"]()
    assert type(model.up2).__name__ == "ConvTranspose2d"
    assert [type(m).__name__ for m in model.down1] == ["ReflectionPad2d", "Conv2d",
                                                       "InstanceNorm2d", "LeakyReLU"]
