"""synth: SYNTHIA-AL-style driving-video generator."""

__version__ = "0.1.0"
