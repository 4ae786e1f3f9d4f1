"""The words the caller hears: short sentences that name the keys to press.

Kept apart from the TwiML so the wording can be read, reviewed and changed in one place.
"""

from __future__ import annotations

from intake.rota import Rota

WELCOME = "Thank you for calling the support desk."
ASK_PHONE = (
    "Please enter your registered phone number, with the country code, followed by the hash key."
)
ASK_PIN = "Please enter your PIN, followed by the hash key."
PIN_NEEDED = "For this, please confirm who you are with the PIN of your registered phone number."
NO_MATCH = "The phone number and PIN you entered do not match our records. Please try again."
ASK_CATEGORY = (
    "Is your problem about the platform or about a recording? "
    "For the platform, press 1 or say platform. For a recording, press 2 or say recording. "
    "For anything else, press 3."
)
MENU = (
    "Please choose the severity of your problem. "
    "For severity 1, service down and you cannot continue work, press 1 or say severity one. "
    "For severity 2, a severe loss of service with no workaround, press 2. "
    "For severity 3, a minor loss of service, press 3. "
    "For severity 4, a question or information, press 4. "
    "To hear the status of an existing request, press 9."
)
# Spoken meanings: short forms of the policy's, for the ear.
MEANINGS = {
    1: "service down, you cannot continue work",
    2: "a severe loss of service with no workaround",
    3: "a minor loss of service",
    4: "a question or information",
}
ASK_REQUEST_NUMBER = "Please enter the request number, digits only, followed by the hash key."
ASK_DESCRIPTION = (
    "After the tone, please describe the problem: what happens, since when, and what you "
    "were doing. You have up to two minutes. Press the hash key or hang up when you are done."
)
EMPTY_RECORDING = "We did not hear a description. Let us try once more."
NOT_UNDERSTOOD = "Sorry, we did not understand that."
NO_INPUT = "We did not get an answer."
NOT_A_CHOICE = "That is not one of the choices."
CHOOSE_AGAIN = "Let us choose the severity again."
OFFER_ENGINEER = "To be connected to the engineer on call now, press 1."
CONNECTING = "Connecting you to the engineer on call. Please hold."
NEXT_ENGINEER = "The engineer could not take the call. Trying the next engineer on call."
CONFIRMATIONS_SENT = "You will also receive the number by text message and by email."
GOODBYE = "Thank you for calling. Goodbye."
SILENT = "We could not get your answer. Please call again when you are ready. Goodbye."
WHISPER_ACCEPT = "Press 1 to accept the call."
NOT_ACCEPTED = "The call was not accepted. Goodbye."
FALLBACK = (
    "We are sorry: our system has a problem right now. After the tone, please say your name, "
    "your company and your phone number, and describe the problem. We will call you back."
)
FALLBACK_THANKS = "Thank you. Your message is recorded. Goodbye."


def spell(number: str) -> str:
    """A request number read out one character at a time: "S R, 0, 0, 0, 1, 2, 3"."""
    letters, _, digits = number.partition("-")
    return ", ".join([" ".join(letters), *digits])


def confirm_severity(severity: int) -> str:
    meaning = f"Severity 1 means: {MEANINGS[1]}. " if severity == 1 else ""
    return f"{meaning}To confirm severity {severity}, press 1. To choose again, press 2."


def understood(severity: int) -> str:
    return f"We understood severity {severity}."


def chosen(severity: int) -> str:
    return f"You chose severity {severity}."


def request_number(number: str) -> str:
    return f"Your request number is {spell(number)}. Again: {spell(number)}."


def no_request_number() -> str:
    return "Your request is registered. Its number will reach you by text message and by email."


def status_report(number: str, severity: int, status: str) -> str:
    spoken_status = status.replace("_", " ")
    return f"Request {spell(number)} has severity {severity}. Its status is: {spoken_status}."


def no_such_request(digits: str) -> str:
    spoken = ", ".join(digits) if digits else "that you entered"
    return f"We found no request of your company with the number {spoken}."


def unidentified(rota: Rota) -> str:
    other = (
        f"For anything that is not technical, please call {spell_phone(rota.non_technical_number)}."
        if rota.non_technical_number
        else "For anything that is not technical, please contact your account manager."
    )
    return (
        "We are sorry, we could not identify you. If you have forgotten your PIN, or it is "
        "locked after wrong entries, please ask your company's technical contact for help. "
        f"{other} Goodbye."
    )


def spell_phone(e164: str) -> str:
    return "plus " + ", ".join(e164.lstrip("+"))


def engineers_paged(number: str | None) -> str:
    which = f"Your request {spell(number)}" if number else "Your request"
    return (
        f"No engineer could take the call right now. {which} is logged, and the engineers on "
        "call have been paged: one will call you back as soon as possible. Goodbye."
    )


def whisper(number: str, caller: str, customer: str) -> str:
    about = f", about request {spell(number)}" if number else ""
    return f"Severity 1 call from {caller} of {customer}{about}."


REFUSALS = {
    "inactive_contact": (
        "Your registration as a contact of {customer} is no longer active. Please ask your "
        "company's technical contact to reinstate it, or to report the problem. Goodbye."
    ),
    "outside_support_period": (
        "The support period of {customer} is not active today. Please ask your account "
        "manager to renew it. Goodbye."
    ),
    "category_not_allowed": (
        "End users may report platform and recording problems only. Please ask your "
        "company's technical contact to report this problem. Goodbye."
    ),
}


def refused(reason: str, customer: str) -> str:
    template = REFUSALS.get(reason, "We cannot take a request from you by phone. Goodbye.")
    return template.format(customer=customer)
