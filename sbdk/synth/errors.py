"""The error synthesis raises when a table cannot be made as its spec says."""

from __future__ import annotations

from sbdk.errors import ExitCode, SbdkError


class SynthError(SbdkError):
    """A column's spec asks for what cannot be made (a unique boolean over 10 rows, a choice without values...).

    The fix is always in the spec (synth.yml or the sources YAML), so it exits like a ConfigError.
    """

    exit_code = ExitCode.CONFIG
