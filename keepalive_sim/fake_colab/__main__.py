"""``python -m keepalive_sim.fake_colab``: the fake ``colab`` program."""

import sys

from keepalive_sim.fake_colab.cli import main

sys.exit(main())
