"""A fake google-colab-cli (``colab``) 0.7.5 for tests: the commands keepalive uses, with the CLI's own
output lines, exit codes and failure messages (docs/colab-cli.md), backed by local folders and processes."""

from keepalive_sim.fake_colab.backend import FakeColab

__all__ = ["FakeColab"]
