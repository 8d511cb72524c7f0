import pytest
from picows import WSError

from tickpipe.client.supervisor import classify
from tickpipe.errors import AuthError, StreamError


@pytest.mark.parametrize(
    "exc",
    [ConnectionRefusedError(), ConnectionResetError(), TimeoutError(), StreamError("x"), WSError()],
)
def test_network_failures_are_retried(exc: BaseException) -> None:
    assert classify(exc) == "retry"


def test_auth_refusal_is_fatal() -> None:
    assert classify(AuthError("bad key")) == "fatal"


def test_anything_else_is_a_bug_and_surfaces() -> None:
    with pytest.raises(KeyError):
        classify(KeyError("bug"))
