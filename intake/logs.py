"""Logging set-up: lines a person can read, or one JSON object per line when asked."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", component: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{component} " if component else ""
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that narrate every session or job at INFO are quieted to warnings.
    for noisy in ("mail.log", "rq.worker", "rq.cron", "rq.scheduler", "waitress.queue", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Twilio's client logs every request's headers at INFO: a detail for DEBUG only.
    twilio_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger("twilio.http_client").setLevel(twilio_level)
