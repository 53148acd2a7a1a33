"""``deepbox inspect RUN``: serve the inspector's page for a run folder (``deepbox.inspect.server``)."""
from __future__ import annotations

import errno
import socket

from deepbox.cli.common import CLIError, say

__all__ = ["add_parsers", "cmd_inspect", "start_server", "DEFAULT_PORT", "HOST_HELP"]

DEFAULT_PORT = 8765
HOST_HELP = ("the address to listen on (default 127.0.0.1: this machine only). Another address, such as 0.0.0.0, "
             "exposes the page, and with it the run's images and the model's code, to every machine that can reach "
             "this one; use it deliberately")


def add_parsers(sub, common) -> None:
    p = sub.add_parser("inspect", parents=[common], help="serve a page that shows inside a run, live while it trains",
                       description="Serve a local web page for a run folder recorded with 'deepbox train --inspect' "
                                   "(or deepbox.inspect.Inspector / watch): curves, the layers' statistics and "
                                   "histograms, the gradient flow, filters, feature maps, the confusion matrix, and "
                                   "each layer's code. It prints the page's address; it opens a browser only with "
                                   "--open. Ctrl-C stops it.")
    p.add_argument("run", help="a run folder with inspector data (its inspect/ folder)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"the port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help=HOST_HELP)
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=cmd_inspect)


def start_server(run: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, live: bool = False):
    """Check the run folder and bind the server, or raise ``CLIError`` with a one-line reason."""
    from deepbox.inspect.server import InspectError, make_server

    if not 0 <= port <= 65535:
        raise CLIError(f"--port must be between 0 and 65535, got {port}")
    try:
        return make_server(run, host, port, live=live)
    except InspectError as e:
        raise CLIError(str(e)) from None
    except socket.gaierror as e:
        raise CLIError(f"--host {host!r} is not an address of this machine ({e.strerror})") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CLIError(f"port {port} on {host} is in use; choose another with --port (0 picks a free "
                           "one)") from None
        raise CLIError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def announce(server) -> None:
    say(f"inspector: {server.url}")
    if not server.loopback_only:
        say(f"inspector: listening on {server.server_address[0]}, reachable from other machines (--host)")


def cmd_inspect(args) -> int:
    server = start_server(args.run, args.host, args.port)
    announce(server)
    say("Ctrl-C stops it")
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("inspector: stopped")
    finally:
        server.close()
    return 0
