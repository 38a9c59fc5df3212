"""How the synthetic product behaves: who signs up when, who comes back, and the sessions they have.

One `World` per load feeds the three generators, so that their tables tell one story:

- **Signups** fall on days weighted by growth (`monthly_growth`), the weekday (`weekly`) and holidays,
  at hours drawn from `hourly`; user ids follow signup order.
- **Users** keep their traits (activity, whether they ever come back, country) for good: traits are
  drawn per user id, so a heavy user stays heavy in every load and every incremental day.
- **Sessions** happen on a day with an intensity of activity(user) x retention(days since signup) x
  weekday x holiday, and start at an hour drawn from `hourly`. Each session tells one story: a landing,
  some browsing, and for some a funnel tail (product view, add_to_cart, checkout, purchase) with the
  `funnel` step rates. A session lies within one UTC day, after its user's signup, with its order.
- **Orders** are the purchases: one per purchase event, minutes after it, in the same session.

A full load creates `users` users and exactly `events` events over the history days. An incremental
load creates one day: its signups and its sessions at the level of the loaded recent days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from sbdk.generators import MICROS_PER_DAY, locked_cached_property, rng
from sbdk.generators._pools import weighted_choice
from sbdk.settings.model import DataProfile

HOUR = 3_600_000_000
SECOND = 1_000_000
# Streams of random numbers (see sbdk.generators.rng), one per kind of draw.
STREAM_TRAITS, STREAM_SIGNUP_DAYS, STREAM_STORIES, STREAM_VISITS = 11, 12, 13, 14
TRAIT_BLOCK = 65_536  # traits are drawn per block of user ids, so any id's traits are cheap to find
ACTIVITY_SIGMA = 1.3  # log-normal spread of activity: about a fifth of users make most sessions
SIGNUP_DAY_WEIGHT = 3.0  # the signup day is busier than any later day (the first visits)
RECENT_DAYS = 28  # an incremental day's volume follows the level of this many loaded days
# The story of a session.
LOGIN_SHARE = 0.3  # sessions that start with a login rather than a page view
BROWSE_MEAN = 2.5  # browsing events (page_view, click, search) between the landing and the tail
LOGOUT_SHARE = 0.1  # sessions without a cart that end with a logout
REMOVE_SHARE = 0.3  # carts abandoned before checkout that end with remove_from_cart
GAP_SECONDS = 45.0  # mean time between two events of a session
ORDER_DELAY_SECONDS = 20.0  # mean time from the purchase event to the order row (at most 4 minutes)
MAX_ORDER_DELAY_SECONDS = 240.0

# Event types, and each tail a session can end with (codes into EVENT_TYPES, -1 = none).
EVENT_TYPES = (
    "page_view", "click", "search", "login", "logout",
    "add_to_cart", "remove_from_cart", "checkout", "purchase",
)  # fmt: skip
PAGE_VIEW, CLICK, SEARCH, LOGIN, LOGOUT, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE = range(9)
TAIL_NONE, TAIL_LOGOUT, TAIL_CART, TAIL_CART_REMOVED, TAIL_CHECKOUT, TAIL_PURCHASE = range(6)
TAILS = np.array(
    [
        [-1, -1, -1, -1],
        [LOGOUT, -1, -1, -1],
        [PAGE_VIEW, ADD_TO_CART, -1, -1],
        [PAGE_VIEW, ADD_TO_CART, REMOVE_FROM_CART, -1],
        [PAGE_VIEW, ADD_TO_CART, CHECKOUT, -1],
        [PAGE_VIEW, ADD_TO_CART, CHECKOUT, PURCHASE],
    ],
    dtype=np.int8,
)
TAIL_LENGTHS = (TAILS >= 0).sum(axis=1).astype(np.int32)
# The shortest session that can end with each tail (a landing, then the tail).
_MIN_LENGTHS = 1 + TAIL_LENGTHS


def day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - date(1970, 1, 1)).days


@dataclass(frozen=True)
class Days:
    """The days of a load: the history began on `first`; this load makes the days start..stop-1."""

    first: date
    start: date
    stop: date

    @property
    def last(self) -> date:
        return self.stop - timedelta(days=1)

    @property
    def numbers(self) -> np.ndarray:
        return np.arange(day_number(self.start), day_number(self.stop), dtype=np.int64)

    @property
    def end_micros(self) -> int:
        """µs since the epoch of midnight UTC after the last day: every generated moment lies before it."""
        return day_number(self.stop) * MICROS_PER_DAY


@dataclass(frozen=True)
class Traits:
    """Per user (index i: the i-th id asked for): how active, whether they come back, where they live."""

    activity: np.ndarray  # float64, mean about 2.3, log-normal
    returns: np.ndarray  # bool: False for the users seen only on their signup day
    country: np.ndarray  # int64 index into profile.countries


def traits(seed: int, profile: DataProfile, first_id: int, count: int) -> Traits:
    """The traits of user ids first_id..first_id+count-1: the same for an id in every load."""
    if count <= 0:
        return Traits(np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64))
    first_block = (first_id - 1) // TRAIT_BLOCK
    last_block = (first_id + count - 2) // TRAIT_BLOCK
    activity, returns, country = [], [], []
    shares = np.array([share for _code, share in profile.countries], dtype=np.float64)
    cdf = np.cumsum(shares) / shares.sum()
    for block in range(first_block, last_block + 1):
        r = rng(seed, STREAM_TRAITS, block)
        activity.append(r.lognormal(0.0, ACTIVITY_SIGMA, TRAIT_BLOCK))
        returns.append(r.random(TRAIT_BLOCK) >= profile.retention.never_return)
        country.append(np.minimum(np.searchsorted(cdf, r.random(TRAIT_BLOCK), side="right"), len(cdf) - 1))
    offset = (first_id - 1) - first_block * TRAIT_BLOCK
    window = slice(offset, offset + count)
    return Traits(np.concatenate(activity)[window], np.concatenate(returns)[window], np.concatenate(country)[window])


class Rhythm:
    """The profile's calendar: weekday and holiday factors, signup growth, retention by day since signup."""

    def __init__(self, profile: DataProfile, first: date) -> None:
        self.profile = profile
        self.first = day_number(first)
        weekly = np.array(profile.weekly, dtype=np.float64)
        self.weekly = weekly / weekly.mean()
        hourly = np.array(profile.hourly, dtype=np.float64)
        self.hourly = hourly / hourly.sum()
        self.holidays = {(month, day): factor for month, day, factor in profile.holidays}

    def traffic(self, days: np.ndarray) -> np.ndarray:
        """How busy each day is: its weekday's factor times its holiday's (1 on ordinary days)."""
        factor = self.weekly[(days + 3) % 7]  # 1970-01-01 was a Thursday; Monday is 0
        if self.holidays:
            as_dates = days.astype("datetime64[D]")
            months = as_dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
            day_of_month = (as_dates - as_dates.astype("datetime64[M]")).astype(np.int64) + 1
            for (month, day), multiplier in self.holidays.items():
                factor = np.where((months == month) & (day_of_month == day), factor * multiplier, factor)
        return factor

    def signup_weight(self, days: np.ndarray) -> np.ndarray:
        """Relative number of signups per day: compound monthly growth since the first day, and traffic."""
        months = (days - self.first) / 30.4375
        return (1.0 + self.profile.monthly_growth) ** months * self.traffic(days)

    def retention(self, since_signup: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """Relative activity on the k-th day after signup (0 = the signup day); 0 for k < 0 and, after
        day 0, for users who never come back."""
        kept = self.profile.retention
        k = np.asarray(since_signup)
        later = kept.long_term + (1.0 - kept.long_term) * 0.5 ** ((k - 1) / kept.half_life_days)
        value = np.where(k == 0, SIGNUP_DAY_WEIGHT, np.where(returns, later, 0.0))
        return np.where(k < 0, 0.0, value)

    def cumulative_retention(self, days: int) -> np.ndarray:
        """Retention of a returning user summed over days 0..k, for k = 0..days-1."""
        return np.cumsum(self.retention(np.arange(days), np.ones(days, dtype=bool)))

    def hours(self, r: np.random.Generator, count: int) -> np.ndarray:
        """µs after midnight for `count` moments, at hours drawn from the hourly profile."""
        hour = weighted_choice(r, self.hourly, count)
        return hour * HOUR + (r.random(count) * HOUR).astype(np.int64)


@dataclass
class Sessions:
    """Sessions of one load in time order; index i is session first_session_id + i."""

    user: np.ndarray  # int64 user id
    start: np.ndarray  # int64 µs since epoch
    duration: np.ndarray  # int64 µs from the first to the last event
    order_delay: np.ndarray  # int64 µs from the purchase event to the order (used when tail is a purchase)
    browse: np.ndarray  # int32 browsing events between the landing and the tail
    tail: np.ndarray  # int8 TAIL_* code
    landing_login: np.ndarray  # bool: the first event is a login
    device: np.ndarray  # int8 index into events.DEVICES
    category: np.ndarray  # int16 index into profile.prices: the product of the cart (if any)

    @locked_cached_property
    def lengths(self) -> np.ndarray:
        return 1 + self.browse + TAIL_LENGTHS[self.tail]

    def __len__(self) -> int:
        return len(self.start)


@dataclass
class World:
    """Everything one load needs to make users, events and orders that agree with each other.

    A full load (`events` given) makes `users` users and exactly `events` events over days.start..stop-1.
    An incremental load (`events` None) makes one day: `known_signups` are the users loaded so far
    (user i+1 at index i; -1 for an id that is not loaded), `recent_sessions` the sessions per loaded
    day before it, and `new_users` says whether the day brings new signups (raw_users is appended too).
    """

    seed: int
    profile: DataProfile
    days: Days
    users: int = 0
    events: int | None = None
    known_signups: np.ndarray | None = None
    recent_sessions: dict[date, int] = field(default_factory=dict)
    new_users: bool = True
    first_ids: dict[str, int] = field(default_factory=dict)

    def first_id(self, column: str) -> int:
        return int(self.first_ids.get(column, 1))

    @property
    def incremental(self) -> bool:
        return self.events is None

    @locked_cached_property
    def rhythm(self) -> Rhythm:
        return Rhythm(self.profile, self.days.first)

    @locked_cached_property
    def _key(self) -> int:
        """Tells the random streams of one load from another's (each incremental day differs)."""
        return day_number(self.days.start) * 2 + (1 if self.incremental else 0)

    # -- users ------------------------------------------------------------------------------------

    @locked_cached_property
    def new_signups(self) -> np.ndarray:
        """Signup times (sorted) of the users this load creates, ids first_id("user_id") onwards."""
        r = rng(self.seed, STREAM_SIGNUP_DAYS, self._key)
        if not self.new_users:
            count = 0
        elif self.incremental:
            count = self._new_user_count(r)
        else:
            count = self.users
        days = self.days.numbers
        if count == 0 or not len(days):
            return np.zeros(0, dtype=np.int64)
        day = days[weighted_choice(r, self.rhythm.signup_weight(days), count)]
        return np.sort(day * MICROS_PER_DAY + self.rhythm.hours(r, count))

    def _new_user_count(self, r: np.random.Generator) -> int:
        """Signups on an incremental day: the loaded users' count scaled by that day's share of growth."""
        if self.known_signups is None:
            return 0
        known = int((self.known_signups >= 0).sum())
        before = np.arange(self.rhythm.first, day_number(self.days.start), dtype=np.int64)
        if not known or not len(before):
            return 0
        weights = self.rhythm.signup_weight(np.concatenate([before, self.days.numbers]))
        expected = known * weights[len(before) :].sum() / weights[: len(before)].sum()
        return int(r.poisson(expected))

    @locked_cached_property
    def signups(self) -> np.ndarray:
        """Signup time of every user sessions may belong to (user i+1 at index i; -1: no such user)."""
        if self.known_signups is None:
            return self.new_signups
        return np.concatenate([self.known_signups, self.new_signups])

    @locked_cached_property
    def user_traits(self) -> Traits:
        return traits(self.seed, self.profile, 1, len(self.signups))

    # -- sessions ---------------------------------------------------------------------------------

    @locked_cached_property
    def sessions(self) -> Sessions:
        r = rng(self.seed, STREAM_STORIES, self._key)
        if self.events is not None:
            tail, browse = self._stories_for_events(r, self.events)
        else:
            tail, browse = self._stories(r, self._incremental_session_count(r))
        return self._place(tail, browse)

    def _stories(self, r: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Tail and browsing length of `count` sessions, with the funnel's step rates."""
        funnel = self.profile.funnel
        cart = r.random(count) < funnel.add_to_cart
        checkout = cart & (r.random(count) < funnel.checkout)
        purchase = checkout & (r.random(count) < funnel.purchase)
        side = r.random(count)
        tail = np.full(count, TAIL_NONE, dtype=np.int8)
        tail[side < LOGOUT_SHARE] = TAIL_LOGOUT
        tail[cart] = np.where(side[cart] < REMOVE_SHARE, TAIL_CART_REMOVED, TAIL_CART)
        tail[checkout] = TAIL_CHECKOUT
        tail[purchase] = TAIL_PURCHASE
        browse = (r.geometric(1.0 / (1.0 + BROWSE_MEAN), count) - 1).astype(np.int32)
        return tail, browse

    def _stories_for_events(self, r: np.random.Generator, events: int) -> tuple[np.ndarray, np.ndarray]:
        """Stories whose lengths add up to exactly `events`: the last one is cut short to fit."""
        if events == 0:
            return np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.int32)
        mean_length = 1 + BROWSE_MEAN + float(TAIL_LENGTHS.mean())
        tails, browses, total = [], [], 0
        while total < events:
            tail, browse = self._stories(r, int((events - total) / mean_length * 1.1) + 16)
            tails.append(tail)
            browses.append(browse)
            total += int((1 + browse + TAIL_LENGTHS[tail]).sum())
        tail, browse = np.concatenate(tails), np.concatenate(browses)
        ends = np.cumsum(1 + browse + TAIL_LENGTHS[tail])
        count = int(np.searchsorted(ends, events)) + 1
        tail, browse = tail[:count].copy(), browse[:count].copy()
        room = events - (int(ends[count - 2]) if count > 1 else 0)  # events left for the last session
        if room < _MIN_LENGTHS[tail[-1]]:
            tail[-1] = TAIL_NONE
        browse[-1] = room - 1 - TAIL_LENGTHS[tail[-1]]
        return tail, browse

    @locked_cached_property
    def _activity(self) -> np.ndarray:
        """Each user's activity; 0 for an id that is not loaded."""
        return self.user_traits.activity * (self.signups >= 0)

    @locked_cached_property
    def _signup_days(self) -> np.ndarray:
        return np.where(self.signups >= 0, self.signups // MICROS_PER_DAY, np.iinfo(np.int64).max // 4)

    def _day_level(self, day: int) -> float:
        """The expected sessions of `day`, up to one factor shared by every day: activity x retention of
        each user, times the day's traffic factor (except on a user's signup day: see _pick_users_and_days)."""
        since = day - self._signup_days
        each = self._activity * self.rhythm.retention(since, self.user_traits.returns)
        traffic = float(self.rhythm.traffic(np.array([day]))[0])
        return float(each[since == 0].sum()) + traffic * float(each[since > 0].sum())

    def _incremental_session_count(self, r: np.random.Generator) -> int:
        """Sessions of an incremental day: as many per unit of intensity as in the recent loaded days."""
        start = day_number(self.days.start)
        recent = [day for day in range(start - RECENT_DAYS, start) if day >= self.rhythm.first]
        if not recent:
            return 0
        seen = sum(self.recent_sessions.get(date(1970, 1, 1) + timedelta(days=day), 0) for day in recent)
        level = sum(self._day_level(day) for day in recent)
        if seen == 0 or level == 0:
            return 0
        return int(r.poisson(seen / level * self._day_level(start)))

    def _place(self, tail: np.ndarray, browse: np.ndarray) -> Sessions:
        """Who has each session, when; then sorted by start time."""
        count = len(tail)
        r = rng(self.seed, STREAM_VISITS, self._key)
        user_idx, day = self._pick_users_and_days(r, count)
        day_start = day * MICROS_PER_DAY
        signup = self.signups[user_idx] if count else np.zeros(0, dtype=np.int64)
        start = day_start + self.rhythm.hours(r, count)
        # On the signup day, a session starts after the signup.
        early = start <= signup
        start[early] = (
            signup[early]
            + 1
            + (r.random(int(early.sum())) * (day_start[early] + MICROS_PER_DAY - 2 - signup[early])).astype(np.int64)
        )
        lengths = 1 + browse + TAIL_LENGTHS[tail]
        duration = (r.gamma(np.maximum(lengths - 1, 1), GAP_SECONDS, count) * SECOND).astype(np.int64)
        duration[lengths == 1] = 0
        delay = (
            np.minimum(SECOND + r.exponential(ORDER_DELAY_SECONDS, count) * SECOND, MAX_ORDER_DELAY_SECONDS * SECOND)
        ).astype(np.int64)
        delay[tail != TAIL_PURCHASE] = 0
        # The whole session and its order fit in its day: move it earlier, never before the signup,
        # and when even that is too late (a signup just before midnight), make it shorter.
        day_end = day_start + MICROS_PER_DAY - 1
        latest = day_end - duration - delay
        floor = np.maximum(day_start, signup + 1)
        start = np.maximum(np.minimum(start, latest), floor)
        over = start + duration + delay > day_end
        if over.any():
            room = (day_end[over] - start[over]).astype(np.float64)
            shrink = room / np.maximum(duration[over] + delay[over], 1)
            duration[over] = (duration[over] * shrink).astype(np.int64)
            delay[over] = (delay[over] * shrink).astype(np.int64)
        device = weighted_choice(r, DEVICE_WEIGHTS, count).astype(np.int8)
        category = weighted_choice(r, _category_weights(self.profile), count).astype(np.int16)
        order = np.argsort(start, kind="stable")
        return Sessions(
            user=(user_idx + 1)[order],
            start=start[order],
            duration=duration[order],
            order_delay=delay[order],
            browse=browse[order],
            tail=tail[order],
            landing_login=(r.random(count) < LOGIN_SHARE)[order],
            device=device[order],
            category=category[order],
        )

    def _pick_users_and_days(self, r: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """For each session, its user (index) and day, drawn with the intensity of activity x retention
        x traffic over the load's days (rejection sampling for the traffic factor)."""
        if count == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if not len(self.signups) or not (self.signups >= 0).any():
            raise ValueError("sessions need at least one user")
        first, stop = day_number(self.days.start), day_number(self.days.stop)
        signup_day = self._signup_days
        # A user's sessions fall on the load's days from their signup day on.
        begin = np.maximum(signup_day, first)
        span = stop - begin  # days open to the user (<= 0: signed up after the load's days)
        cumulative = self.rhythm.cumulative_retention(max(stop - int(signup_day.min()), 1) + 1)
        skipped = begin - signup_day  # days since signup at the load's first day
        returns = self.user_traits.returns
        before = np.where(skipped > 0, cumulative[np.clip(skipped - 1, 0, len(cumulative) - 1)], 0.0)
        upto = cumulative[np.clip(skipped + span - 1, 0, len(cumulative) - 1)]
        mass = np.where(returns, upto - before, np.where(skipped == 0, SIGNUP_DAY_WEIGHT, 0.0))
        mass = np.where(span > 0, mass, 0.0) * self._activity
        if mass.sum() <= 0:
            raise ValueError("no user is active on the days to generate")
        cdf = np.cumsum(mass)
        cdf /= cdf[-1]
        users = np.empty(count, dtype=np.int64)
        days = np.empty(count, dtype=np.int64)
        days_all = np.arange(first, stop, dtype=np.int64)
        traffic = self.rhythm.traffic(days_all)
        top = float(traffic.max())
        pending = np.arange(count)
        while len(pending):
            n = len(pending)
            # Sorted needles make the search over every user's weight cache-friendly (several times
            # faster at a million users); the stories are independent of the order, so nothing is lost.
            u = np.minimum(np.searchsorted(cdf, np.sort(r.random(n)), side="right"), len(cdf) - 1)
            # The day: inverse of the user's cumulative retention over their open days.
            target = before[u] + r.random(n) * (upto[u] - before[u])
            since = np.searchsorted(cumulative, target, side="right")
            since = np.where(returns[u], np.clip(since, skipped[u], skipped[u] + span[u] - 1), 0)
            day = signup_day[u] + since
            # Signups already follow the traffic of their day: a session on its user's signup day
            # takes an ordinary day's factor (1), or busy days would count twice for new users.
            keep = r.random(n) * top < np.where(since == 0, 1.0, traffic[day - first])
            users[pending[keep]] = u[keep]
            days[pending[keep]] = day[keep]
            pending = pending[~keep]
        return users, days


DEVICES = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS = np.array([0.50, 0.42, 0.08])


def _category_weights(profile: DataProfile) -> np.ndarray:
    """Carts favour no category: each is as likely (prices differ, so revenue does)."""
    return np.ones(len(profile.prices), dtype=np.float64)
