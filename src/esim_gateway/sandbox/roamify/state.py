"""The Roamify simulator's state: balance, orders, eSIMs, usage, webhook deliveries.

Everything is in memory and driven by the injected `clock` (Unix seconds), so tests move
time by swapping the clock. Knobs for tests and operators:

* `install(iccid)`: the traveller installed the profile (status INSTALLED, usage starts
  to grow by `MB_PER_HOUR_IN_USE` per clock hour);
* `consume(iccid, mb)`: the traveller used `mb` MB now; crossing 25/50/75/90/100 % of
  the allowance fires an `esim`/`usage` webhook;
* `set_status(iccid, status)`: any lifecycle status (ACTIVATED, INACTIVE, DELETED,
  REVOKED, EXPIRED, ...), with its `esim`/`status` webhook;
* `credit(amount)`: the partner topped up the prepaid balance (`partner`/`top_up`).

Money is `Decimal` here and a JSON number on the wire. Webhooks go through `emit`, which
the sandbox factory wires to its `WebhookSender`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from esim_gateway.sandbox._kit import hidden_until, is_visible
from esim_gateway.sandbox.roamify.catalog import RoamifyCatalog

__all__ = [
    "ESIM_STATUSES",
    "MB_PER_HOUR_IN_USE",
    "SMDP",
    "RoamifyEsim",
    "RoamifyOrder",
    "RoamifyState",
    "package_mb",
]

SMDP = "lpa.sandbox.roamify.example"
MB_PER_HOUR_IN_USE = 40.0
#: how long an issued profile stays installable (the seed sample: about a year)
PROFILE_LIFETIME = 365 * 86400
USAGE_MARKS = (25, 50, 75, 90, 100)
#: low-balance alerts fire below the threshold and at 75/50/25 % of it (providers.md 1.6)
BALANCE_MARKS = (100, 75, 50, 25)
#: list filter statuses (1.5) plus the webhook-only ones
ESIM_STATUSES = frozenset(
    {"NEW", "READY", "INSTALLED", "ACTIVATED", "INACTIVE", "DELETED", "REVOKED", "EXPIRED"}
    | {"UNKNOWN"}
)
INF = float("inf")


def package_mb(package: dict[str, Any]) -> float:
    """The package's data allowance in MB (inf when unlimited); the catalog says MB or GB."""
    if package["isUnlimited"]:
        return INF
    amount = float(package["dataAmount"])
    return amount * 1024 if package.get("dataUnit") == "GB" else amount


def _luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str((10 - total % 10) % 10)


@dataclass
class RoamifyEsim:
    id: str
    package_id: str
    order_id: str
    reference_id: str | None
    created_at: int
    updated_at: int
    #: "" until /apply generated the profile (the sandbox's choice, see app.py)
    iccid: str = ""
    status: str = "NEW"
    activation_code: str = ""
    pin: str = ""
    puk: str = ""
    expired_at: int | None = None
    start_date: str | None = None
    allowed_mb: float = 0.0
    consumed_mb: float = 0.0
    installed_at: float | None = None
    days: int = 0
    #: where usage is reported from (the package's first covered country)
    location: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    usage_marks: set[int] = field(default_factory=set)
    #: (status, unix seconds) in order, for GET /api/esim/event(s)
    status_log: list[tuple[str, int]] = field(default_factory=list)
    #: YYYY-MM-DD -> MB used that day through `consume`
    daily_mb: dict[str, float] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        return bool(self.iccid)


@dataclass
class RoamifyOrder:
    id: str
    reference_id: str | None
    status: str
    total: Decimal
    created_at: int
    updated_at: int
    esim_ids: list[str]
    item_package_ids: list[str]
    kind: str = "order"  # order | topup | instant
    #: a read-lag fault: lookups miss this order until then (monotonic seconds)
    hidden_until: float | None = None

    @property
    def visible(self) -> bool:
        return is_visible(self.hidden_until)


@dataclass
class RoamifyState:
    catalog: RoamifyCatalog
    balance: Decimal
    clock: Callable[[], float]
    low_balance_threshold: Decimal = Decimal("100")
    orders: dict[str, RoamifyOrder] = field(default_factory=dict)
    esims: dict[str, RoamifyEsim] = field(default_factory=dict)
    by_iccid: dict[str, str] = field(default_factory=dict)
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: set by the factory: queues a webhook event (category, type, data)
    emit: Callable[[str, str, dict[str, Any]], None] = lambda *_: None
    _iccid_counter: int = 0

    def now(self) -> int:
        return int(self.clock())

    # -- persistence (sandbox/persistence.py) ---------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every record, as JSON data (the catalog is rebuilt from its seed)."""
        return {
            "balance": str(self.balance),
            "low_balance_threshold": str(self.low_balance_threshold),
            "iccid_counter": self._iccid_counter,
            # lists, not maps: creation order is meaning (the newest order by reference)
            "orders": [
                {**asdict(o), "total": str(o.total), "hidden_until": None}
                for o in self.orders.values()
            ],
            "esims": [
                {
                    **asdict(e),
                    "allowed_mb": "inf" if e.allowed_mb == INF else e.allowed_mb,
                    "usage_marks": sorted(e.usage_marks),
                }
                for e in self.esims.values()
            ],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """The records of a `snapshot()`; everything is read before anything is replaced."""
        orders = [RoamifyOrder(**{**o, "total": Decimal(o["total"])}) for o in data["orders"]]
        esims = [
            RoamifyEsim(
                **{
                    **e,
                    "allowed_mb": float(e["allowed_mb"]),
                    "usage_marks": set(e["usage_marks"]),
                    "status_log": [(status, at) for status, at in e["status_log"]],
                }
            )
            for e in data["esims"]
        ]
        self.balance = Decimal(data["balance"])
        self.low_balance_threshold = Decimal(data["low_balance_threshold"])
        self._iccid_counter = int(data["iccid_counter"])
        self.orders = {o.id: o for o in orders}
        self.esims = {e.id: e for e in esims}
        self.by_iccid = {e.iccid: e.id for e in esims if e.applied}

    def today(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    # -- balance ------------------------------------------------------------------

    def _balance_event(self, kind: str, percentage: int) -> None:
        self.emit(
            "partner",
            kind,
            {
                "timestamp": self.now(),
                "balance": float(self.balance),
                "threshold": float(self.low_balance_threshold),
                "threshold_percentage": percentage,
                "currency": "USD",
            },
        )

    def _charge(self, amount: Decimal) -> None:
        before = self.balance
        self.balance -= amount
        for mark in BALANCE_MARKS:
            level = self.low_balance_threshold * mark / 100
            if before >= level > self.balance:
                self._balance_event("low_balance", mark)

    def refuse_for_balance(self) -> None:
        """An order could not be paid: `partner`/`insufficient_balance`."""
        self._balance_event("insufficient_balance", 0)

    def credit(self, amount: Decimal) -> None:
        """Knob: the partner topped up the prepaid balance."""
        self.balance += amount
        self._balance_event("top_up", 100)

    # -- orders -------------------------------------------------------------------

    def order_total(self, items: list[tuple[str, int]]) -> Decimal:
        return sum(
            (Decimal(str(self.catalog.packages[p][0]["price"])) * q for p, q in items), Decimal(0)
        )

    def new_order(
        self, items: list[tuple[str, int]], reference_id: str | None, kind: str = "order"
    ) -> RoamifyOrder:
        """Create and pay an order: one eSIM (status NEW, no profile yet) per unit."""
        now = self.now()
        order = RoamifyOrder(
            str(uuid.uuid4()),
            reference_id,
            "COMPLETED",
            Decimal(0),
            now,
            now,
            [],
            [],
            kind,
            hidden_until(),
        )
        for package_id, quantity in items:
            package, group = self.catalog.packages[package_id]
            for _ in range(quantity):
                esim = RoamifyEsim(
                    str(uuid.uuid4()),
                    package_id,
                    order.id,
                    reference_id,
                    now,
                    now,
                    days=int(package["day"]),
                    location=str(group["signals"][0]["code"]) if group["signals"] else "",
                    status_log=[("NEW", now)],
                )
                self.esims[esim.id] = esim
                order.esim_ids.append(esim.id)
                order.item_package_ids.append(package_id)
        order.total = self.order_total(items)
        self.orders[order.id] = order
        self._charge(order.total)
        return order

    def newest_order(self, reference_id: str) -> RoamifyOrder | None:
        """Orders are kept in creation order; references may repeat."""
        found = [o for o in self.orders.values() if o.reference_id == reference_id and o.visible]
        return found[-1] if found else None

    # -- eSIMs --------------------------------------------------------------------

    def _next_iccid(self) -> str:
        """19 digits: 89 (telecom) 40 + 14 digits + a Luhn check digit."""
        self._iccid_counter += 1
        body = f"8940{secrets.randbelow(10**7):07d}{self._iccid_counter:07d}"
        return body + _luhn_digit(body)

    def apply(self, esim: RoamifyEsim, start_date: str | None = None) -> RoamifyEsim:
        """Generate the profile (NEW -> READY); applying twice changes nothing."""
        if esim.applied:
            return esim
        package, _ = self.catalog.packages[esim.package_id]
        now = self.now()
        esim.iccid = self._next_iccid()
        while esim.iccid in self.by_iccid:
            esim.iccid = self._next_iccid()
        esim.activation_code = secrets.token_hex(12).upper()
        esim.pin = f"{secrets.randbelow(10**4):04d}"
        esim.puk = f"{secrets.randbelow(10**8):08d}"
        esim.expired_at = now + PROFILE_LIFETIME
        esim.start_date = start_date
        esim.allowed_mb = package_mb(package)
        esim.history.append(self._history(package, "esim", now))
        self.by_iccid[esim.iccid] = esim.id
        self._set_status(esim, "READY")
        return esim

    def _history(self, package: dict[str, Any], kind: str, now: int) -> dict[str, Any]:
        return {
            "packageId": package["packageId"],
            "package": package["package"],
            "type": kind,
            "price": package["price"],
            "currency": "USD",
            "createdAt": now,
            "updatedAt": now,
        }

    def plan_window(self, esim: RoamifyEsim) -> tuple[int | None, int | None]:
        """(start, end) of the plan: from installation for `days` days."""
        if esim.installed_at is None:
            return None, None
        start = int(esim.installed_at)
        return start, start + esim.days * 86400

    def _set_status(self, esim: RoamifyEsim, status: str) -> None:
        now = self.now()
        esim.status = status
        esim.updated_at = now
        esim.status_log.append((status, now))
        start, end = self.plan_window(esim)
        self.emit(
            "esim",
            "status",
            {
                "timestamp": now,
                "iccid": esim.iccid,
                "esim_id": esim.id,
                "reference_id": esim.reference_id,
                "start": start,
                "end": end,
                "status": status,
            },
        )

    def refresh(self, esim: RoamifyEsim) -> RoamifyEsim:
        """Expire an eSIM whose plan ended (by the injected clock) when it is read."""
        _, end = self.plan_window(esim)
        if end is not None and self.clock() >= end and esim.status in ("INSTALLED", "ACTIVATED"):
            self._set_status(esim, "EXPIRED")
        return esim

    def esim_by_iccid(self, iccid: str) -> RoamifyEsim | None:
        esim_id = self.by_iccid.get(iccid)
        return self.refresh(self.esims[esim_id]) if esim_id else None

    def esim_by_id(self, esim_id: str) -> RoamifyEsim | None:
        esim = self.esims.get(esim_id)
        return self.refresh(esim) if esim is not None else None

    def _applied(self, iccid: str) -> RoamifyEsim:
        esim = self.esim_by_iccid(iccid)
        if esim is None:
            raise KeyError(iccid)
        return esim

    def install(self, iccid: str) -> None:
        """Knob: the traveller installed the eSIM; its plan starts and data use grows."""
        esim = self._applied(iccid)
        esim.installed_at = self.clock()
        esim.status_log.append(("DOWNLOADED", self.now()))
        self._set_status(esim, "INSTALLED")

    def set_status(self, iccid: str, status: str) -> None:
        """Knob: move an eSIM to any lifecycle status, with its webhook."""
        if status not in ESIM_STATUSES:
            raise ValueError(f"unknown eSIM status {status!r}")
        self._set_status(self._applied(iccid), status)

    # -- usage --------------------------------------------------------------------

    def grown_mb(self, esim: RoamifyEsim) -> float:
        """Data used by the passing of (clock) time since installation."""
        if esim.installed_at is None:
            return 0.0
        return max(0.0, self.clock() - esim.installed_at) / 3600 * MB_PER_HOUR_IN_USE

    def used_mb(self, esim: RoamifyEsim) -> float:
        return min(esim.consumed_mb + self.grown_mb(esim), esim.allowed_mb)

    def daily_usage(self, esim: RoamifyEsim) -> list[dict[str, Any]]:
        """`dataUsages[]` in MB, oldest first; time-driven use counts for today."""
        days = dict(esim.daily_mb)
        grown = self.grown_mb(esim)
        if grown:
            days[self.today()] = days.get(self.today(), 0.0) + grown
        return [
            {"date": day, "usage": round(mb, 2), "location": esim.location}
            for day, mb in sorted(days.items())
            if mb
        ]

    def consume(self, iccid: str, mb: float) -> None:
        """Knob: use `mb` MB now; crossing 25/50/75/90/100 % fires usage webhooks."""
        esim = self._applied(iccid)
        esim.consumed_mb += mb
        esim.daily_mb[self.today()] = esim.daily_mb.get(self.today(), 0.0) + mb
        esim.updated_at = self.now()
        self._usage_marks(esim)

    def _usage_marks(self, esim: RoamifyEsim) -> None:
        if esim.allowed_mb == INF:
            return
        share = self.used_mb(esim) / esim.allowed_mb * 100 if esim.allowed_mb else 100.0
        for mark in USAGE_MARKS:
            if share >= mark and mark not in esim.usage_marks:
                esim.usage_marks.add(mark)
                self.emit("esim", "usage", self.usage_event(esim))

    def usage_event(self, esim: RoamifyEsim) -> dict[str, Any]:
        """The `esim`/`usage` webhook's data (providers.md 1.6); data in MB."""
        package, _ = self.catalog.packages[esim.package_id]
        used = self.used_mb(esim)
        unlimited = esim.allowed_mb == INF
        start, end = self.plan_window(esim)
        return {
            "timestamp": self.now(),
            "iccid": esim.iccid,
            "esim_id": esim.id,
            "reference_id": esim.reference_id,
            "start": start,
            "end": end,
            "status": esim.status,
            "package_id": package["packageId"],
            "package_name": package["package"],
            "data_units": "MB",
            "voice_units": "minutes",
            "sms_units": "sms",
            "usage_data": {
                "isUnlimited": unlimited,
                "allowed_data": -1 if unlimited else round(esim.allowed_mb, 2),
                "remaining_data": -1 if unlimited else round(esim.allowed_mb - used, 2),
                "allowed_sms": 0,
                "remaining_sms": 0,
                "allowed_voice": 0,
                "remaining_voice": 0,
            },
            "usage_list": [
                {"date": u["date"], "data_used": u["usage"], "location": u["location"]}
                for u in self.daily_usage(esim)
            ],
        }

    # -- top-ups ------------------------------------------------------------------

    def topup(
        self, esim: RoamifyEsim, package: dict[str, Any], reference_id: str | None
    ) -> RoamifyOrder:
        """Pay a top-up order: more data (same plan), more days, a later expiry."""
        now = self.now()
        order = RoamifyOrder(
            str(uuid.uuid4()),
            reference_id,
            "COMPLETED",
            Decimal(str(package["price"])),
            now,
            now,
            [esim.id],
            [package["packageId"]],
            "topup",
        )
        self.orders[order.id] = order
        self._charge(order.total)
        esim.allowed_mb += package_mb(package)
        esim.days += int(package["day"])
        if esim.expired_at is not None:
            esim.expired_at += int(package["day"]) * 86400
        esim.updated_at = now
        esim.history.append(self._history(package, "topup", now))
        if esim.allowed_mb != INF:
            share = self.used_mb(esim) / esim.allowed_mb * 100
            esim.usage_marks = {m for m in esim.usage_marks if m <= share}
        return order
