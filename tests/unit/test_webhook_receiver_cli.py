"""`esim-gateway webhook-receiver` refuses a secret that would reject every delivery."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

from esim_gateway.cli import main
from esim_gateway.domain import new_secret


@pytest.mark.parametrize(
    "secret_args",
    [[], ["--secret", ""], ["--secret", "   "], ["--secret", "whsec_not base64!"]],
    ids=["missing", "empty", "blank", "not-base64"],
)
def test_the_receiver_without_a_usable_secret_exits_2_saying_where_to_get_one(
    secret_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    assert main(["webhook-receiver", *secret_args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "createWebhookEndpoint" in lines[0] and "rotateWebhookSecret" in lines[0]
    assert started == []


def test_the_receiver_with_an_endpoint_secret_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    assert main(["webhook-receiver", "--secret", new_secret(), "--port", "8299"]) == 0
    assert [options["port"] for options in started] == [8299]
    assert "webhook receiver: POST" in capsys.readouterr().err
