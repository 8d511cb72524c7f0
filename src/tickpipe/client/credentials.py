"""Where the client's key and secret come from: arguments, else the environment, else the demo.

The rule (VTS/1 keys come in pairs):

- ``key=`` / ``secret=`` given to :class:`tickpipe.Client` win; a part not given is taken from
  ``TICKPIPE_KEY`` / ``TICKPIPE_SECRET``;
- the public demo pair (``demo`` / ``demo-secret``) is used only when *neither* part is given
  anywhere;
- a half-set pair is a :class:`~tickpipe.errors.ConfigError` naming the missing part. (Before,
  ``TICKPIPE_KEY`` without ``TICKPIPE_SECRET`` silently signed the user's key with the public
  demo secret.) An empty value is an error too.

No secret is ever put in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tickpipe.errors import ConfigError

DEFAULT_KEY = "demo"
DEFAULT_SECRET = "demo-secret"
KEY_ENV = "TICKPIPE_KEY"
SECRET_ENV = "TICKPIPE_SECRET"


def resolve_credentials(
    key: str | None, secret: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """``(key, secret)`` by the rule above; ConfigError naming what is missing or empty."""
    env = os.environ if environ is None else environ
    k = key if key is not None else env.get(KEY_ENV)
    s = secret if secret is not None else env.get(SECRET_ENV)
    if k is None and s is None:
        return DEFAULT_KEY, DEFAULT_SECRET
    if k is None:
        given = "secret=" if secret is not None else SECRET_ENV
        raise ConfigError(
            f"a secret is set ({given}) but no key: set key= or {KEY_ENV} too "
            "(or neither part, for the demo pair)"
        )
    if s is None:
        given = "key=" if key is not None else KEY_ENV
        raise ConfigError(
            f"a key is set ({given}) but no secret: set secret= or {SECRET_ENV} too "
            "(or neither part, for the demo pair); the demo secret is never used for another key"
        )
    if not k or not s:
        raise ConfigError("key and secret must be non-empty")
    return k, s
