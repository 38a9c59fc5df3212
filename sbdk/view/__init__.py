"""One read model of a project (catalog, lineage, runs, data, query) for the page and the MCP server."""

from sbdk.view.project import ProjectView

__all__ = ["ProjectView"]
