"""cupyx.scipy of the stand-in: the special functions tinylesion uses."""
