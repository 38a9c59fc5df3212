"""`sbdk ui`: one local page to see runs, lineage, tests and data (FastAPI, assets from the package)."""
