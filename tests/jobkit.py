"""Test helpers around the sample job (see keepalive_sim.sample_job)."""

from keepalive_sim.sample_job import SampleJob as Job, make_images  # noqa: F401
