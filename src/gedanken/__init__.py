"""gedanken: world models audited as simulators against exact physics ground truth."""

__version__ = "0.1.0"
