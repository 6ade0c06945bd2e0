"""The SimplifyTrip simulator's state: wallet, orders, eSIMs, SIM cards, return requests."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from esim_gateway.sandbox._kit import hidden_until, is_visible
from esim_gateway.sandbox.simplifytrip.catalog import RECHARGE_ICCIDS, SimplifyTripCatalog

__all__ = ["SimplifyTripState", "StEsim", "StItem", "StOrder", "StReturn", "iso"]

SMDP = "SECSMSMINIAPP.SANDBOX.SIMPLIFYTRIP.EXAMPLE"
RETURN_FEE = 15_000


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class StEsim:
    iccid: str
    activation_code: str
    pin: str
    puk: str
    sku: str
    order_id: str
    item_id: str
    installed_at: float | None = None
    consumed_mb: float = 0.0
    return_status: str = "NONE"

    @property
    def lpa(self) -> str:
        return f"LPA:1${SMDP}${self.activation_code}"


@dataclass
class StItem:
    id: str
    sub_track_id: str
    sku: str
    quantity: int
    price: int
    type: str
    status: str
    iccids: list[str] = field(default_factory=list)
    quantity_returned: int = 0


@dataclass
class StOrder:
    id: str
    track_id: str
    created_at: float
    status: str
    items: list[StItem]
    updated_at: float = 0.0
    confirmed_at: float | None = None
    delivering_at: float | None = None
    canceled_at: float | None = None
    succeeded_at: float | None = None
    error: str | None = None
    reason: str | None = None
    refund_amount: int = 0
    returns: list[str] = field(default_factory=list)
    due_at: float | None = None
    #: a read-lag fault: lookups miss this order until then (monotonic seconds)
    hidden_until: float | None = field(default_factory=hidden_until)

    @property
    def total(self) -> int:
        return sum(i.price * i.quantity for i in self.items)


@dataclass
class StReturn:
    id: str
    return_track_id: str
    order_id: str
    created_at: float
    reason: str | None
    items: list[dict[str, Any]]
    refund_fee: int
    refund_amount: int
    status: str = "REQUESTED"
    refunding_at: float | None = None
    completed_at: float | None = None
    canceled_at: float | None = None
    rejected_at: float | None = None
    rejection_reason: str | None = None
    extra_fee: int = 0


@dataclass
class SimplifyTripState:
    catalog: SimplifyTripCatalog
    wallet: int
    clock: Callable[[], float]
    fulfil_delay: float
    orders: dict[str, StOrder] = field(default_factory=dict)
    by_track: dict[str, str] = field(default_factory=dict)
    esims: dict[str, StEsim] = field(default_factory=dict)
    sims: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, StReturn] = field(default_factory=dict)
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: answer POST /orders with the older 200 shape (no status fields)
    legacy_create_status: bool = False
    emit: Callable[[str, dict[str, Any]], None] = lambda *_: None
    _fail_next: str | None = None
    _counter: int = 0

    def __post_init__(self) -> None:
        for iccid in RECHARGE_ICCIDS:
            self.sims[iccid] = {
                "iccid": iccid,
                "sku": None,
                "days": 0,
                "mb": 0.0,
                "started": None,
                "order_id": None,
                "item_id": None,
            }

    # -- persistence (sandbox/persistence.py) ---------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every record, as JSON data (the catalog is rebuilt from its seed)."""
        return {
            "wallet": self.wallet,
            "counter": self._counter,
            "orders": [{**asdict(o), "hidden_until": None} for o in self.orders.values()],
            "esims": [asdict(e) for e in self.esims.values()],
            "sims": list(self.sims.values()),
            "returns": [asdict(r) for r in self.returns.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """The records of a `snapshot()`; everything is read before anything is replaced.
        An order still PROCESSING keeps its due time: a read after it fulfils the order,
        and the sandbox re-arms its timer (`SimplifyTripSandbox.resume`)."""
        orders = [
            StOrder(**{**o, "items": [StItem(**i) for i in o["items"]]}) for o in data["orders"]
        ]
        esims = [StEsim(**e) for e in data["esims"]]
        returns = [StReturn(**r) for r in data["returns"]]
        sims = {str(s["iccid"]): dict(s) for s in data["sims"]}
        self.wallet = int(data["wallet"])
        self._counter = int(data["counter"])
        self.orders = {o.id: o for o in orders}
        self.by_track = {o.track_id: o.id for o in orders}
        self.esims = {e.iccid: e for e in esims}
        self.sims = {**self.sims, **sims}
        self.returns = {r.id: r for r in returns}

    def next_id(self, digits: int = 15) -> str:
        self._counter += 1
        return f"{secrets.randbelow(10 ** (digits - 6)):0{digits - 6}d}{self._counter:06d}"

    def find_order(self, key: str) -> StOrder | None:
        """An order by id or trackId, as lookups see it (a read-lag fault hides it for a
        while; `by_track` still refuses a second order with the same trackId)."""
        order = self.orders.get(key)
        if order is None and key in self.by_track:
            order = self.orders[self.by_track[key]]
        return order if order is not None and is_visible(order.hidden_until) else None

    # -- knobs --------------------------------------------------------------------

    def fail_next_order(self, reason: str = "Supplier is out of stock") -> None:
        self._fail_next = reason

    def take_failure(self) -> str | None:
        reason, self._fail_next = self._fail_next, None
        return reason

    def install(self, iccid: str) -> None:
        self.esims[iccid].installed_at = self.clock()

    def consume(self, iccid: str, mb: float) -> None:
        if iccid in self.esims:
            self.esims[iccid].consumed_mb += mb
        else:
            self.sims[iccid]["mb"] += mb

    # -- lifecycle ----------------------------------------------------------------

    def fulfil(self, order: StOrder) -> None:
        """PROCESSING -> SUCCESS with eSIM profiles, or -> ERROR (knob)."""
        if order.status != "PROCESSING":
            return
        now = self.clock()
        reason = self.take_failure() if order.error is None else order.error
        if reason:
            order.status, order.error, order.updated_at = "ERROR", reason, now
            for item in order.items:
                item.status = "ERROR"
            self.wallet += order.total  # a failed order is not charged
            self.emit("PURCHASE_ORDER_FAIL", self.event_data(order))
            return
        for item in order.items:
            for _ in range(item.quantity):
                iccid = f"898120039168{secrets.randbelow(10**8):08d}"
                esim = StEsim(
                    iccid,
                    secrets.token_hex(16).upper(),
                    f"{secrets.randbelow(10**4):04d}",
                    f"{secrets.randbelow(10**8):08d}",
                    item.sku,
                    order.id,
                    item.id,
                )
                self.esims[iccid] = esim
                item.iccids.append(iccid)
            item.status = "SUCCESS"
        order.status, order.succeeded_at, order.updated_at = "SUCCESS", now, now
        self.emit("PURCHASE_ORDER_SUCCESS", self.event_data(order))

    def advance_sim_order(self, order_id: str) -> None:
        """Knob: a physical SIM order moves NEW -> CONFIRMED -> DELIVERING -> SUCCESS."""
        order = self.orders[order_id]
        steps = {"NEW": "CONFIRMED", "CONFIRMED": "DELIVERING", "DELIVERING": "SUCCESS"}
        if order.status not in steps:
            return
        now = self.clock()
        order.status = steps[order.status]
        order.updated_at = now
        setattr(
            order,
            {"CONFIRMED": "confirmed_at", "DELIVERING": "delivering_at", "SUCCESS": "succeeded_at"}[
                order.status
            ],
            now,
        )
        for item in order.items:
            item.status = order.status
        self.emit("PURCHASE_ORDER_UPDATE", self.event_data(order, with_esims=False))

    def event_data(self, order: StOrder, *, with_esims: bool = True) -> dict[str, Any]:
        items = []
        for item in order.items:
            entry: dict[str, Any] = {
                "subOrderId": item.id,
                "subTrackId": item.sub_track_id,
                "sku": item.sku,
                "quantity": item.quantity,
                "type": item.type,
                "status": item.status,
            }
            if with_esims:
                entry["eSims"] = [self.esim_json(self.esims[i], full=False) for i in item.iccids]
            items.append(entry)
        return {
            "orderId": order.id,
            "trackId": order.track_id,
            "status": order.status,
            "items": items,
        }

    def esim_json(self, esim: StEsim, *, full: bool = True) -> dict[str, Any]:
        data = {
            "qrCodeContent": esim.lpa,
            "qrCodeImg": f"https://files.sandbox.simplifytrip.example/qr/{esim.iccid}.png",
            "iccid": esim.iccid,
            "planAPN": "plus.4g",
            "smdpAddress": SMDP,
            "pin": esim.pin,
            "puk": esim.puk,
            "activationCode": esim.activation_code,
        }
        if full:
            data["returnStatus"] = esim.return_status
        return data

    def advance_return(
        self, return_id: str, to: str = "COMPLETED", rejection_reason: str | None = None
    ) -> StReturn:
        """Knob: a reviewer moves a return request on (REFUNDING, COMPLETED, REJECTED)."""
        request = self.returns[return_id]
        now = self.clock()
        order = self.orders[request.order_id]
        request.status = to
        if to == "REFUNDING":
            request.refunding_at = now
        elif to == "REJECTED":
            request.rejected_at, request.rejection_reason = now, rejection_reason or "Used"
            self._release(request)
        elif to == "COMPLETED":
            request.completed_at = now
            order.refund_amount += request.refund_amount
            self.wallet += request.refund_amount
            for item in request.items:
                for iccid in item.get("iccids", []):
                    if iccid in self.esims:
                        self.esims[iccid].return_status = "RETURNED"
                for own in order.items:
                    if own.id == item["subOrderId"]:
                        own.quantity_returned += len(item.get("iccids", [])) or int(
                            item.get("quantity") or 0
                        )
        order.updated_at = now
        self.emit("RETURN_ORDER_UPDATE", self.return_event(request))
        return request

    def _release(self, request: StReturn) -> None:
        for item in request.items:
            for iccid in item.get("iccids", []):
                if iccid in self.esims:
                    self.esims[iccid].return_status = "NONE"

    def return_event(self, request: StReturn) -> dict[str, Any]:
        order = self.orders[request.order_id]
        return {
            "returnId": request.id,
            "returnTrackId": request.return_track_id,
            "orderId": order.id,
            "orderTrackId": order.track_id,
            "createdAt": iso(request.created_at),
            "reason": request.reason,
            "returnType": return_type(order, request),
            "refundFee": request.refund_fee,
            "extraFee": request.extra_fee,
            "refundAmount": request.refund_amount,
            "items": [
                {
                    "orderItemId": i["subOrderId"],
                    "subOrderTrackId": i["subOrderTrackId"],
                    "spu": i["spu"],
                    "sku": i["sku"],
                    "type": i["type"],
                    "returnType": i["returnType"],
                    "iccids": i.get("iccids", []),
                    "quantity": i.get("quantity"),
                }
                for i in request.items
            ],
            "status": request.status,
            "mode": "TEST_MODE",
        }


def return_type(order: StOrder, request: StReturn) -> str:
    total = sum(i.quantity for i in order.items)
    returned = sum(len(i.get("iccids", [])) or int(i.get("quantity") or 0) for i in request.items)
    return "FULL" if returned >= total else "PARTIAL"
