"""The server's routes, one module per group, each a `router(state)` that `create_app` includes.

These modules import FastAPI at their top: only `create_app` imports them, when the app is built.
"""
