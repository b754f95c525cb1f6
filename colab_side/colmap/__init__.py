"""COLMAP, through its Python bindings pycolmap, as an engine of the runner (docs/colmap.md)."""
