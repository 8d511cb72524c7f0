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

import json
import os
import stat
from collections.abc import Mapping

from tickpipe.errors import ConfigError
from tickpipe.venues.trading import Credentials

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


def env_prefix(venue: str) -> str:
    """``TICKPIPE_<VENUE>`` (``binance-usdm`` -> ``TICKPIPE_BINANCE_USDM``): the venue key's
    environment variables start with it."""
    return "TICKPIPE_" + venue.upper().replace("-", "_")


def venue_credentials(
    venue: str,
    *,
    key: str | None = None,
    secret: str | None = None,
    passphrase: str | None = None,
    credentials_file: str | None = None,
    needs_passphrase: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """A real venue's API key, for its orders (issue 17), or None when none is set anywhere.

    From ``key=`` / ``secret=`` / ``passphrase=``, else ``TICKPIPE_<VENUE>_KEY``, ``_SECRET``,
    ``_PASSPHRASE`` (``binance-usdm`` -> ``TICKPIPE_BINANCE_USDM_KEY``), else
    ``credentials_file``: a JSON object ``{"key": ..., "secret": ..., "passphrase": ...}``
    readable by its owner only (mode 0600: a file others can read is refused, naming the file
    and its mode). A half-set key (no secret, or no passphrase where the venue needs one) is a
    ConfigError naming what is missing; no message ever holds a secret.
    """
    env = os.environ if environ is None else environ
    pre = env_prefix(venue)
    k = key if key is not None else env.get(pre + "_KEY")
    s = secret if secret is not None else env.get(pre + "_SECRET")
    p = passphrase if passphrase is not None else env.get(pre + "_PASSPHRASE")
    source = f"{pre}_KEY / {pre}_SECRET"
    if k is None and s is None and credentials_file is not None:
        k, s, p = _read_credentials_file(credentials_file)
        source = credentials_file
    if k is None and s is None:
        return None
    if not k or not s:
        missing = "key" if not k else "secret"
        raise ConfigError(f"{venue} credentials from {source}: the {missing} is missing or empty")
    if needs_passphrase and not p:
        raise ConfigError(
            f"{venue} credentials from {source}: {venue} also needs a passphrase "
            f'({pre}_PASSPHRASE or "passphrase" in the file)'
        )
    return Credentials(k, s, p or None)


def _read_credentials_file(path: str) -> tuple[str | None, str | None, str | None]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"credentials file {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"credentials file {path} has mode {stat.S_IMODE(st.st_mode):04o}: others can "
            "read it; make it 0600 (chmod 600) and try again"
        )
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read(65536))
    except (OSError, ValueError):
        raise ConfigError(
            f"credentials file {path} is not a JSON object with key and secret"
        ) from None
    if not isinstance(obj, dict):
        raise ConfigError(f"credentials file {path} is not a JSON object with key and secret")

    def text(name: str) -> str | None:
        v = obj.get(name)
        return v if isinstance(v, str) else None

    return text("key"), text("secret"), text("passphrase")
