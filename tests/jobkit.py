"""Test helpers around the sample job (see keepalive.simulator.sample_job)."""

from keepalive.simulator.sample_job import SampleJob as Job, make_images  # noqa: F401
