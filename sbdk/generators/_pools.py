"""Value pools built once from Faker's locale data, then sampled by index with numpy.

Faker only provides these small lists (first and last names per country); rows are never made one by
one. The pools depend on nothing but the installed Faker version, so a seed alone fixes the data.
"""

from __future__ import annotations

import importlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

# country code -> (Faker locale, share of users)
COUNTRIES: dict[str, tuple[str, float]] = {
    "US": ("en_US", 0.34),
    "GB": ("en_GB", 0.12),
    "DE": ("de_DE", 0.10),
    "FR": ("fr_FR", 0.08),
    "IN": ("en_IN", 0.08),
    "BR": ("pt_BR", 0.07),
    "ES": ("es_ES", 0.06),
    "IT": ("it_IT", 0.06),
    "NL": ("nl_NL", 0.05),
    "SE": ("sv_SE", 0.04),
}
_NAMES_PER_COUNTRY = 300
# Real cities (Faker's are invented, e.g. "Ramoshaven", and building them costs a Faker per locale).
CITIES: dict[str, tuple[str, ...]] = {
    "US": (
        "New York",
        "Los Angeles",
        "Chicago",
        "Houston",
        "Phoenix",
        "Philadelphia",
        "San Antonio",
        "San Diego",
        "Dallas",
        "Austin",
        "Seattle",
        "Denver",
        "Boston",
        "Portland",
        "Atlanta",
    ),
    "GB": (
        "London",
        "Manchester",
        "Birmingham",
        "Leeds",
        "Glasgow",
        "Liverpool",
        "Bristol",
        "Edinburgh",
        "Sheffield",
        "Cardiff",
        "Belfast",
        "Nottingham",
    ),
    "DE": (
        "Berlin",
        "Hamburg",
        "München",
        "Köln",
        "Frankfurt am Main",
        "Stuttgart",
        "Düsseldorf",
        "Leipzig",
        "Dortmund",
        "Dresden",
        "Bremen",
        "Hannover",
    ),
    "FR": (
        "Paris",
        "Marseille",
        "Lyon",
        "Toulouse",
        "Nice",
        "Nantes",
        "Strasbourg",
        "Montpellier",
        "Bordeaux",
        "Lille",
        "Rennes",
    ),
    "IN": ("Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Chennai", "Kolkata", "Pune", "Ahmedabad", "Jaipur", "Lucknow"),
    "BR": (
        "São Paulo",
        "Rio de Janeiro",
        "Brasília",
        "Salvador",
        "Fortaleza",
        "Belo Horizonte",
        "Manaus",
        "Curitiba",
        "Recife",
        "Porto Alegre",
    ),
    "ES": ("Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga", "Bilbao", "Murcia", "Palma", "Alicante"),
    "IT": ("Roma", "Milano", "Napoli", "Torino", "Palermo", "Genova", "Bologna", "Firenze", "Bari", "Venezia"),
    "NL": (
        "Amsterdam",
        "Rotterdam",
        "Den Haag",
        "Utrecht",
        "Eindhoven",
        "Groningen",
        "Tilburg",
        "Almere",
        "Breda",
        "Nijmegen",
    ),
    "SE": (
        "Stockholm",
        "Göteborg",
        "Malmö",
        "Uppsala",
        "Västerås",
        "Örebro",
        "Linköping",
        "Helsingborg",
        "Jönköping",
        "Norrköping",
    ),
}
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me",
    "example.com", "example.org", "mail.com", "fastmail.com",
)  # fmt: skip


@dataclass(frozen=True)
class Pool:
    """A list of strings per country, concatenated, with each country's offset and size."""

    values: pa.Array
    slugs: pa.Array  # ASCII, lower-case form for emails and usernames
    offsets: np.ndarray
    sizes: np.ndarray

    def sample(self, country_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Indices into `values`: for each row, a uniform pick inside its country's list."""
        return self.offsets[country_idx] + (u * self.sizes[country_idx]).astype(np.int64)


@dataclass(frozen=True)
class Pools:
    country_codes: pa.Array
    country_weights: np.ndarray
    first_names: Pool
    last_names: Pool
    cities: Pool
    domains: pa.Array


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum()) or "user"


def _names(values, limit: int) -> list[str]:
    # Provider lists are tuples or weighted OrderedDicts; keep their published order, drop repeats.
    return list(dict.fromkeys(str(v) for v in values))[:limit]


def _pool(per_country: list[list[str]]) -> Pool:
    sizes = np.array([len(v) for v in per_country], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat = [value for values in per_country for value in values]
    return Pool(
        values=pa.array(flat, pa.string()),
        slugs=pa.array([_slug(v) for v in flat], pa.string()),
        offsets=offsets,
        sizes=sizes,
    )


@lru_cache(maxsize=1)
def pools() -> Pools:
    first, last = [], []
    for locale, _share in COUNTRIES.values():
        person = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first.append(_names(person.first_names, _NAMES_PER_COUNTRY))
        last_names = _names(person.last_names, _NAMES_PER_COUNTRY)
        if len(last_names) < 20:  # a few locales keep surnames elsewhere; fall back to English ones
            last_names = _names(
                importlib.import_module("faker.providers.person.en_US").Provider.last_names, _NAMES_PER_COUNTRY
            )
        last.append(last_names)
    weights = np.array([share for _locale, share in COUNTRIES.values()], dtype=np.float64)
    return Pools(
        country_codes=pa.array(list(COUNTRIES), pa.string()),
        country_weights=weights / weights.sum(),
        first_names=_pool(first),
        last_names=_pool(last),
        cities=_pool([list(CITIES[code]) for code in COUNTRIES]),
        domains=pa.array(EMAIL_DOMAINS, pa.string()),
    )


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with the given weights, vectorised (searchsorted on the cumulative sum)."""
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def categorical(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx))


def decimal_from_cents(cents: np.ndarray) -> pa.Array:
    """DECIMAL(12,2) from non-negative integer cents, without going through floats."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])
