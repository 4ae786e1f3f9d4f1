"""The phone door: a Twilio IVR under ``/voice``.

A caller is identified (caller ID, or registered number and PIN), checked against the same
entitlement rules as mail, chooses a severity (keys or speech), describes the problem in a
recording, and hears the request number; Severity 1 callers may be put through to the engineer
on call. Every call goes through the same intake pipeline as mail (:mod:`voice.calls`).

- :mod:`voice.blueprint`: the blueprint, the 503 while Twilio is not configured, the signature
  check (403) and the answer when storage fails;
- :mod:`voice.routes` and :mod:`voice.steps`: the menus, one transaction per webhook;
- :mod:`voice.callbacks`: status, recording and transcription callbacks, the engineer's
  whisper, and the fallback URL;
- :mod:`voice.twiml` and :mod:`voice.prompts`: what the caller hears;
- :mod:`voice.calls`, :mod:`voice.callers` and :mod:`voice.call_input`: the call's state and
  its row in the intake log, who is calling, what the caller's keys and words mean;
- :mod:`voice.call_outcomes` and :mod:`voice.call_processing`: the request opened while the
  caller listens, the pages, and the worker's half of a call (the job
  :func:`voice.call_processing.process_call`, which ``intake.jobs`` enqueues by name);
- :mod:`voice.sms_sender`: SMS through Twilio's Messages API, for the worker's outbox;
- :mod:`voice.player` and :mod:`voice.simulator`: a stand-in for Twilio that walks the IVR
  (``intake call simulate``, the tests and the benchmark).

The settings are read from ``current_app.extensions["intake"]``, where ``web.create_app`` puts
them; ``voice`` never imports ``web`` (``web`` imports ``voice``).
"""

from __future__ import annotations

from voice import callbacks, routes
from voice.blueprint import bp
from voice.context import twilio_configured
from voice.security import NOT_CONFIGURED

__all__ = ["NOT_CONFIGURED", "bp", "callbacks", "routes", "twilio_configured"]
