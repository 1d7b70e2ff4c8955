"""anonchat: anonymous, end-to-end encrypted chat for the terminal."""

__version__ = "0.1.0"
