"""colab_side: the notebook half of colab-keepalive (standard library only).

It runs in Colab at every restart: ``colab_side.run(images=..., job=..., meshroom="2019.2")``.
"""
