"""One run of a project: its plan, the runner, result values, reporters, the run lock and history."""
