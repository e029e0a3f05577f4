"""Settings from the environment: invalid values are a configuration error naming the variable."""

from __future__ import annotations

import pytest

from bus.errors import ConfigurationError
from bus.settings import load_settings
from govbus.cli import main


@pytest.fixture(autouse=True)
def _fresh_settings() -> object:
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


@pytest.mark.parametrize("prefix", ["bad prefix.", "a/b.", "x" * 101, "\u00e9."])
def test_a_topic_prefix_kafka_cannot_use_is_refused(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """A GOVBUS_TOPIC_PREFIX with characters no Kafka topic name holds is refused, naming the variable."""
    monkeypatch.setenv("GOVBUS_TOPIC_PREFIX", prefix)
    with pytest.raises(ConfigurationError, match="GOVBUS_TOPIC_PREFIX"):
        load_settings()


def test_an_invalid_setting_is_a_cli_message_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """govbus with an invalid setting prints one error line naming it on stderr and exits 1, no traceback."""
    monkeypatch.setenv("GOVBUS_TOPIC_PARTITIONS", "0")
    assert main(["lag"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("govbus: error: invalid settings: GOVBUS_TOPIC_PARTITIONS")
    assert "Traceback" not in err
