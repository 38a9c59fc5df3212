"""Load, layer and validate a project's settings.

Layers, lowest first: built-in defaults < sbdk_config.json < the project's .env < SBDK_* environment
variables (nested keys with `__`, e.g. SBDK_DATA_VOLUME__USERS=500). Secrets (SBDK_WEBHOOK_SECRET,
SBDK_TARGETS__<NAME>__PASSWORD) come only from the last two, verbatim.

- `model`: the frozen values everything else receives (`Settings`, ...) and the constants.
- `loader`: `load_settings` and `find_config`.
- `layering`: the layers merged by Dynaconf (the only module that imports it).
- `validation`: every rule, once, with pydantic; one ConfigError listing every problem.
- `volume`: the data volume rules, shared with `sbdk init` and `sbdk dev`'s options.

`data_profile` (funnel, rhythm, retention, countries, prices) shapes the data; its mappings and lists
are replaced whole by whichever layer gives them, never merged into the defaults.

Dynaconf and pydantic are imported only while settings load, so importing this package is cheap.
"""

from sbdk.settings.layering import read_dotenv
from sbdk.settings.loader import find_config, load_settings
from sbdk.settings.model import (
    CONFIG_FILENAME,
    COUNTRY_CODES,
    DEFAULTS,
    DEV_TARGET,
    EARLIEST_AS_OF,
    ENV_PREFIX,
    MAX_BACKUPS_KEPT,
    MAX_ROWS_PER_TABLE,
    MAX_SEED,
    NOTIFY_EVENTS,
    SECRET_KEYS,
    TARGET_TYPES,
    Backups,
    DataProfile,
    DataVolume,
    Funnel,
    NotifyTarget,
    ProjectPaths,
    Retention,
    Retries,
    Settings,
    Target,
    Tracking,
    Webhooks,
)
from sbdk.settings.volume import resolve_volume

__all__ = [
    "CONFIG_FILENAME",
    "COUNTRY_CODES",
    "DEFAULTS",
    "DEV_TARGET",
    "EARLIEST_AS_OF",
    "ENV_PREFIX",
    "MAX_BACKUPS_KEPT",
    "MAX_ROWS_PER_TABLE",
    "MAX_SEED",
    "NOTIFY_EVENTS",
    "SECRET_KEYS",
    "TARGET_TYPES",
    "Backups",
    "DataProfile",
    "DataVolume",
    "Funnel",
    "NotifyTarget",
    "ProjectPaths",
    "Retention",
    "Retries",
    "Settings",
    "Target",
    "Tracking",
    "Webhooks",
    "find_config",
    "load_settings",
    "read_dotenv",
    "resolve_volume",
]
