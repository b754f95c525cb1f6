"""colab-keepalive: the desktop daemon that keeps a Colab job alive."""
__version__ = "0.1.0"
