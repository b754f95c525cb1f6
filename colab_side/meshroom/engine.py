"""Meshroom as an engine of the runner: a release installed once per Drive, a graph saved once, chunks computed one by one.

The graph (``project.mg``) is saved by Meshroom at the first session and kept on Drive; every later
session computes from that file, so the job's units never change under it. A chunk is computed with
``meshroom_compute --node N --iteration I``: the files it added to the node's folder are what the
runner makes durable. ``SUCCESS`` status files are what Meshroom needs of a finished node whose
files are gone (``Graph.dfsToProcess`` stops there), which is what makes pruning possible.
"""

from __future__ import annotations

import time
from pathlib import Path

from colab_side import heartbeat as hb
from colab_side.engine import DONE, ERROR, STOPPED, Host, Outcome, Stop
from colab_side.meshroom import cache as meshroom_cache
from colab_side.meshroom import chunk_log, commands, estimates, install, versions
from colab_side.meshroom.graph import Graph, GraphError, Node, load as load_graph, parse as parse_graph


class MeshroomEngine:
    name = "meshroom"
    needs_gpu = True  # DepthMap is CUDA only

    def __init__(self, settings):
        self.settings = settings
        try:
            self.version = versions.get(settings.meshroom)
        except ValueError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "pass meshroom= one of the known versions") from None
        try:
            for text in settings.params:  # their form, before the install; names are checked against the graph
                commands.parse_param(text)
        except commands.OptionsError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "correct the param setting") from None
        self.exe_dir: Path | None = None
        self.project: Path | None = None

    # --- install and plan ----------------------------------------------------------------------------

    def install(self, host: Host) -> None:
        started = time.monotonic()
        try:
            archive = install.ensure_archive(host.layout.install_dir, self.version, self.settings.meshroom_url,
                                             host.drive, log=host.journal.log)
            self.exe_dir = install.extract(archive, host.local, self.version, host.drive)
        except install.InstallError as exc:
            raise Stop(hb.BLOCKED, hb.BAD_INPUT, str(exc), "check meshroom_url and the network, then Run all") from None
        host.journal.event("install", version=self.version.version, seconds=round(time.monotonic() - started, 2))

    def plan(self, host: Host) -> Graph:
        project = host.layout.project
        text = host.drive.read_bytes(project)
        if text is None:
            local = host.local / "project.mg"
            self._save_graph(host, local)
            try:
                saved = load_graph(local)
            except GraphError as exc:
                raise Stop(hb.FAILED, hb.CODE_ERROR, f"Meshroom saved an unusable graph: {exc}",
                           "check the Meshroom version and the images") from None
            host.lease.check()
            host.drive.copy_file(local, project)
            host.journal.event("graph_saved", nodes=len(saved.nodes))
            text = local.read_bytes()
        try:
            graph = parse_graph(text.decode("utf-8"), str(project))
        except (GraphError, UnicodeDecodeError) as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc).splitlines()[0],
                       f"delete {project} (the store is kept) so that the next session saves the graph again") from None
        self.project = host.local / "project.mg"
        self.project.write_bytes(text)
        return graph

    def _save_graph(self, host: Host, local: Path) -> None:
        """Meshroom saves the configured graph; the user's node and attribute names are checked first."""
        s = self.settings
        try:
            options = commands.PipelineOptions.read(s.pipeline, s.params, s.overrides)
        except commands.OptionsError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "correct the pipeline, param or overrides setting") from None

        def save(project: Path, chosen: commands.PipelineOptions) -> int:
            return host.execute(commands.save_command(self.version, self.exe_dir, s.images, project,
                                                      host.local / "cache", host.local / "publish", chosen, host.local))

        if options.requested:
            probe = host.local / "probe.mg"
            save(probe, options.pipeline_only())
            try:
                problems = commands.unknown_names(load_graph(probe), options.requested)
            except GraphError:
                problems = []  # the graph cannot be saved at all: the save below reports it
            if problems:
                raise Stop(hb.FAILED, hb.BAD_INPUT, "; ".join(problems),
                           "use a node and input attribute named above, then Run all")
        if save(local, options) != 0 and options.requested:
            raise Stop(hb.FAILED, hb.BAD_INPUT, f"Meshroom {self.version.version} refused the parameter values "
                       "(its message is in logs/)", "check each value's type (numbers; true/false, or 0/1 on 2021.1 "
                       "whose booleans take only 0/1), then Run all")

    def adopt(self, host: Host, graph: Graph, seed_cache: Path) -> None:
        """Take over the finished nodes of a seed-style cache (``meshroom_photogrammetry --cache``).

        Only whole nodes are adopted: a seed cache does not say which files each chunk wrote.
        """
        adopted = 0
        for name in graph.order():
            node = graph.nodes[name]
            if host.store.node_durable(node) or not meshroom_cache.node_done(node, seed_cache):
                continue
            files = [rel for rel in meshroom_cache.snapshot(node.internal_folder(seed_cache))
                     if not meshroom_cache.is_meta(rel)]
            for chunk in range(node.chunk_count):
                meta = [node.status_file(seed_cache, chunk).name.replace("status", kind) for kind in meshroom_cache.META_FILES]
                present = [m for m in meta if (node.internal_folder(seed_cache) / m).exists()]
                host.store.add_chunk(node, chunk, seed_cache, present + (files if chunk == 0 else []), host.beat.session)
            adopted += 1
            host.journal.event("adopt", node=name, chunks=node.chunk_count)
        if not adopted:
            host.journal.log(f"no finished node of this graph found in {seed_cache} (other images or Meshroom version?)")

    # --- computing ---------------------------------------------------------------------------------

    def prepare(self, graph: Graph, cache: Path) -> None:
        for node in graph.nodes.values():
            meshroom_cache.reset_interrupted(node, cache)

    def mark_done(self, node: Node, chunk: int, cache: Path) -> None:
        meshroom_cache.write_success_status(node, chunk, cache)

    def run_unit(self, host: Host, graph: Graph, node: Node, chunk: int, cache: Path) -> Outcome:
        folder = node.internal_folder(cache)
        before = meshroom_cache.snapshot(folder)
        iteration = chunk if node.block_size else None
        command = commands.compute_command(self.version, self.exe_dir, self.project, cache, node.name, iteration)
        # meshroom_compute is silent while the chunk runs: watch the clock and the chunk's own log file
        watch = chunk_log.ChunkWatch(chunk_log.log_file(node, cache, chunk), self.settings.heartbeat_seconds,
                                     lambda elapsed, line: host.tick(node.name, elapsed, line))
        with watch:
            code = host.execute(command)
        status = meshroom_cache.read_status(node.status_file(cache, chunk))
        if code == 0 and status == meshroom_cache.DONE:
            after = meshroom_cache.snapshot(folder)
            return Outcome(DONE, tuple(rel for rel, sig in after.items() if before.get(rel) != sig), code, status)
        if status == meshroom_cache.ERROR:
            return Outcome(ERROR, (), code, status, tuple(self._log_tail(node, cache, chunk)))
        return Outcome(STOPPED, (), code, str(status))

    @staticmethod
    def _log_tail(node: Node, cache: Path, chunk: int, lines: int = 10) -> list[str]:
        try:
            return chunk_log.log_file(node, cache, chunk).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def snapshot(self, folder: Path) -> dict:
        return meshroom_cache.snapshot(folder)

    # --- the result and the figures ----------------------------------------------------------------

    def result_files(self, graph: Graph, cache: Path) -> dict:
        return meshroom_cache.publish_files(graph, cache)

    def describe_result(self, graph: Graph) -> str:
        return ", ".join(f"{node}.{attr}" for node, attr in graph.published_outputs()) or "no output at all"

    def estimated_chunk_seconds(self, graph: Graph, images: int) -> dict:
        model = estimates.load()
        return {name: estimates.figure(model["seconds"], node.node_type, images) / node.chunk_count
                for name, node in graph.nodes.items()}


def make(settings) -> MeshroomEngine:
    return MeshroomEngine(settings)
