"""cli mode: the daemon on Google's official Colab command-line client (google-colab-cli), no browser.

``runner`` calls the ``colab`` program and reads its answers, ``vm_code`` is what runs on the VM,
``drivemount`` mounts Drive under a pseudo-terminal, ``hands`` maps the CLI onto the page states the
supervisor knows, ``watch`` brings the heartbeat over ``colab download`` (and tells this run's end from an
earlier run's), ``release`` gives the runtime back for sure, ``adopt`` gives the CLI back the name of a
runtime it forgot, ``doctor`` reports on the CLI.
"""
