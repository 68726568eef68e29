"""Remote access: which errors are transient (retried) and which are not, back-off read at
call time."""

from __future__ import annotations

import pytest

from itscube.errors import DownloadError


def test_dns_failures_are_not_retried():
    from itscube.io.remote import is_transient

    class ClientConnectorDNSError(OSError):
        pass

    assert not is_transient(ClientConnectorDNSError("Cannot connect to host x:443"))
    assert not is_transient(OSError("[Errno -2] Name or service not known"))
    assert is_transient(ConnectionResetError("reset by peer"))
    assert is_transient(TimeoutError())


def test_backoff_settings_are_read_at_call_time(monkeypatch):
    from itscube import set_options
    from itscube.io import remote

    with set_options(backoff=1.0):
        slow = [remote.next_delay(3, TimeoutError(), "x") for _ in range(20)]
    with set_options(backoff=0.001):
        fast = [remote.next_delay(3, TimeoutError(), "x") for _ in range(20)]
    assert min(slow) >= 2.0 and max(fast) <= 0.006  # 4 x backoff, jitter 0.5..1.5


def test_retry_gives_up_after_the_last_attempt_and_never_retries_permanent_errors(monkeypatch):
    from itscube import set_options
    from itscube.io import remote

    set_options(retries=4)  # restored by the autouse fixture of conftest
    calls = []

    def flaky():
        calls.append(1)
        raise ConnectionResetError("reset by peer")

    with pytest.raises(DownloadError, match="after 4 attempts") as err:
        remote.retry(flaky, "chunk 0.0.0", sleep=lambda s: None)
    assert len(calls) == 4 and "re-run" not in str(err.value)
    calls.clear()

    def missing():
        calls.append(1)
        raise FileNotFoundError("no such key")

    with pytest.raises(FileNotFoundError):
        remote.retry(missing, "chunk", sleep=lambda s: None)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("https://cubes.nonexistent.invalid/x.zarr", {}),
        ("s3://its-live-data/x.zarr", {"ITSCUBE_S3_ENDPOINT": "http://s3.nonexistent.invalid:9"}),
    ],
)
@pytest.mark.parametrize("command", ["info", "strain"])
@pytest.mark.slow
def test_unreachable_hosts_fail_alike_over_s3_and_https(url, env, command, monkeypatch):
    """An unknown host is one line, exit code 3 over either protocol, quickly (no retries
    on DNS failures), and outside a download it promises no resume."""
    import time

    from tests.helpers import one_line_error, run_cli

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    t = time.perf_counter()
    r = run_cli(command, url)
    one_line_error(r, code=3, match="cannot be reached")
    assert "re-run" not in r.output
    assert time.perf_counter() - t < 60  # not 6 retries with back-off on each key
