"""`make test` runs the PostgreSQL tests wherever a local server answers, not only where
ESIM_GATEWAY_TEST_POSTGRES_URL is set; where none answers they skip, except in CI
(`CI=true`), where they fail."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import POSTGRES_VARIABLE, find_postgres_url, missing


def test_the_variable_wins() -> None:
    url = "postgresql+asyncpg://u@db.internal:5433/x"
    assert find_postgres_url({POSTGRES_VARIABLE: url}, ("127.0.0.1", 1)) == url


def test_a_server_answering_on_the_port_is_found() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert find_postgres_url({}, ("127.0.0.1", port)) == (
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
        )


def test_nothing_answering_means_no_postgres() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert find_postgres_url({POSTGRES_VARIABLE: ""}, ("127.0.0.1", port)) is None


def test_off_turns_the_search_off() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = ("127.0.0.1", listener.getsockname()[1])
        assert find_postgres_url({POSTGRES_VARIABLE: "off"}, address) is None


def outcome(reason: str, environ: dict[str, str]) -> type[BaseException]:
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as raised:
        missing(reason, environ)
    assert reason in str(raised.value)
    return raised.type


def test_a_missing_database_skips_outside_ci() -> None:
    assert outcome("no PostgreSQL", {}) is pytest.skip.Exception
    assert outcome("no PostgreSQL", {"CI": "false"}) is pytest.skip.Exception


@pytest.mark.parametrize("value", ["true", "1", "TRUE", "yes"])
def test_a_missing_database_fails_in_ci(value: str) -> None:
    assert outcome("no PostgreSQL", {"CI": value}) is pytest.fail.Exception
