"""`sbdk mcp`: the project over the Model Context Protocol, for coding agents (issue #18).

Every tool is a thin call into the read model, `sbdk.view.ProjectView`, which `sbdk ui` serves too.
"""

from sbdk.mcp_server.server import build_server, serve_stdio

__all__ = ["build_server", "serve_stdio"]
