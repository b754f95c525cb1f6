"""A Colab stand-in on 127.0.0.1 and a Meshroom stand-in, for the demo and the tests."""
