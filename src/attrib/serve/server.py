"""Running the explorer: uvicorn on a host and port, the address said on stdout.

``explorer_app(paths, model=...)`` opens the runs and loads the model; ``serve(app, ...)``
runs uvicorn until interrupted. Binding another address than the loopback one warns: anyone
who can reach it can read the runs and run the model.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from attrib.core.errors import AttribWarning

__all__ = ["NOT_LOOPBACK", "explorer_app", "is_loopback", "serve"]

NOT_LOOPBACK = (
    "attrib serve listens on {host}, not only on this machine: anyone who can reach it can "
    "read the served runs and run the model on their inputs. Use --host 127.0.0.1 unless "
    "that is what you want."
)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def explorer_app(
    paths: Sequence[str],
    *,
    model: str | None = None,
    weights: str | None = None,
    labels: str | None = None,
    device: str = "cpu",
    host: str = "127.0.0.1",
    settings: dict[str, Any] | None = None,
) -> Any:
    """The explorer's app over the runs in ``paths`` and, with ``model``, a loaded model
    (``attrib.runs.models.load_model``: the command line's model specs)."""
    from attrib.serve.app import create_app
    from attrib.serve.live import Live
    from attrib.serve.served import open_served, served_names

    runs = [open_served(p, n) for p, n in zip(paths, served_names(list(paths)), strict=True)]
    live: Live | None = None
    if model is not None and _text_model(model):
        from attrib.core.errors import SettingError
        from attrib.serve.live_text import TextLive
        from attrib.text.loading import load_text_model

        if weights is not None:
            raise SettingError("--weights", "nothing for a text model", weights, "")

        live = TextLive(load_text_model(model, argument="--model"), model, settings)
    elif model is not None:
        from attrib.runs.models import load_model

        live = Live(load_model(model, weights, device=device, labels=labels), settings)
    return create_app(runs, live, host=host, allowed_hosts=None if is_loopback(host) else ["*"])


def _text_model(spec: str) -> bool:
    """The shipped text classifier's names (``demo`` is the image demo, as for attrib run),
    or a folder of a Hugging Face model (its ``config.json``)."""
    import os

    from attrib.runs.models import DEMO_MODELS
    from attrib.text.loading import TEXT_MODELS

    if os.path.isfile(os.path.join(spec, "config.json")):
        return True
    return spec in TEXT_MODELS and spec not in DEMO_MODELS


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    say: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    say = say or (lambda text: print(text, flush=True))
    if not is_loopback(host):
        warnings.warn(NOT_LOOPBACK.format(host=host), AttribWarning, stacklevel=2)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    started = server.startup

    async def startup(sockets: Any = None) -> None:
        await started(sockets=sockets)
        if server.started:
            say(f"serving on {url}")
            if open_browser:
                import webbrowser

                webbrowser.open(url)

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles the signal itself
        pass
    if not server.started:
        sys.exit(1)
