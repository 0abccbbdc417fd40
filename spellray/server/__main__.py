"""`python -m spellray.server --port N`: what `spell server start` runs in the background."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from spellray.server.app import create_app
from spellray.server.ray_capacity import outlive_the_gcs


def main() -> None:
    parser = argparse.ArgumentParser(description="the spellray server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--advertise-url", default=None,
                        help="the URL runners on other nodes reach this server at")
    args = parser.parse_args()
    outlive_the_gcs()  # before anything in this process makes a Ray GCS client
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(args.advertise_url or f"http://{args.host}:{args.port}",
                     listen_port=args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
