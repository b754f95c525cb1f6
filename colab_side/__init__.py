"""colab_side: the notebook half of colab-keepalive (standard library only).

In a Colab cell, at every restart::

    import colab_side
    colab_side.run(images="/content/drive/MyDrive/images", job="castle", meshroom="2019.2")

It mounts Drive, installs Meshroom once per Drive, resumes the job from Drive, writes the
heartbeat that the daemon on the PC watches, and says when the job is done or failed.
"""

from colab_side.runner import run

__all__ = ["run"]
