"""The Hugging Face Hub as every area of the kit meets it: ids or paths, tokens, loading failures.
huggingface_hub is imported inside the functions, so importing this module stays free."""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from .errors import CifakeError, first_line

_OFFLINE_NOTE = "HF_HUB_OFFLINE=1"  # why the kit works offline: the user's setting, or an unreachable Hub

# File names that are never Hub repo ids, even when they do not exist (yet).
_FILE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".json")


def is_hub_id(source) -> bool:
    """True when `source` names a Hub repo (`name` or `owner/name`) rather than a local path: an existing path, or
    anything written like one (`.`, `/` or `~` first, a backslash, two `/`, an archive or JSON suffix), is not."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    text = str(source)
    if not text or Path(text).expanduser().exists():
        return False
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1 or text.endswith(_FILE_SUFFIXES):
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def load_failure(err: BaseException, source) -> str:
    """Why loading `source` (a local path or a Hub id) failed, in a few words for a message."""
    from huggingface_hub import constants

    detail = first_line(err)
    if Path(str(source)).expanduser().exists():
        return detail
    if constants.HF_HUB_OFFLINE:
        return f"the Hub is offline ({_OFFLINE_NOTE}) and there is no such folder"
    return f"there is no such folder, and the Hub could not provide it: {detail}"


@contextmanager
def loading(what: str, source, hint: str, verb: str = "load"):
    """Turn any failure inside the block into "Cannot load the model 'path' (<why>). <hint>", <why> by
    `load_failure`. CifakeErrors pass through."""
    try:
        yield
    except CifakeError:
        raise
    except Exception as err:  # libraries raise OSError, ValueError, HTTP and safetensors errors...
        raise CifakeError(f"Cannot {verb} {what} {str(source)!r} ({load_failure(err, source)}). {hint}") from err


def push_token(repo_id: str, token: str | None = None, example: str = "your-name/cifake") -> str:
    """Check that a push to `repo_id` can happen (valid id, online, logged in, a token the Hub takes for
    writing); return the token, from `token`, `HF_TOKEN` or `hf auth login`. It is never printed."""
    from huggingface_hub import constants, get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise CifakeError(f"{repo_id!r} is not a valid Hub repo id ({err}). Use the form {example}.") from err
    if constants.HF_HUB_OFFLINE:
        raise CifakeError(f"Cannot push: the Hub is offline ({_OFFLINE_NOTE}). Try again where it can be reached.")
    token = token or get_token()
    if token is None:
        raise CifakeError("Cannot push: not logged in to the Hugging Face Hub. Run `hf auth login` or set HF_TOKEN.")
    _check_token(token)
    return token


def _check_token(token: str) -> None:
    """CifakeError unless the Hub accepts `token` for writing: asked once (whoami), before any work, so a
    rejected token fails a push now, not after hours of training. The token is never printed."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        account = HfApi().whoami(token=token)
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status in (401, 403):
            raise CifakeError(f"Cannot push: the Hub rejects this token ({status}). Log in again with `hf auth login`, "
                              f"or set HF_TOKEN to a valid token with write access.") from None
        raise CifakeError(f"Cannot push: the Hub did not answer who this token belongs to ({status or err}). Try again "
                          f"later.") from None
    except Exception as err:  # no connection, DNS, TLS: httpx raises its own types
        raise CifakeError(f"Cannot push: the Hub cannot be reached ({type(err).__name__}). Try again where it can be.") from None
    role = ((account.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise CifakeError("Cannot push: this token is read-only. Create one with write access (huggingface.co/settings/"
                          "tokens) and log in with it: `hf auth login`, or set HF_TOKEN.")


def offline_unless_reachable(timeout: float = 3.0) -> str | None:
    """Work offline at once (this process and its children) when the Hub cannot be reached, instead of each
    request retrying for about 30 s; returns the reason, or None when it can be, offline mode is already on, or a
    proxy is configured (which a direct probe cannot judge). Call it before datasets, transformers or diffusers
    are imported: they read the mode when they load."""
    global _OFFLINE_NOTE
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or urllib.request.getproxies():  # a proxy (environment or system) answers instead
        return None
    endpoint = urlparse(constants.ENDPOINT)
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return None
    except TimeoutError:
        reason = f"{host}: no answer in {timeout:g} s"
    except OSError as err:
        reason = f"{host}: {err.strerror or type(err).__name__}"
    _OFFLINE_NOTE = f"cannot be reached: {reason}"
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    for module, name in (("datasets.config", "HF_HUB_OFFLINE"), ("diffusers.utils.hub_utils", "HF_HUB_OFFLINE")):
        if module in sys.modules:  # already imported: they keep their own copy of the mode
            setattr(sys.modules[module], name, True)
    return reason
