"""A charity-side webhook receiver that tells opted-in donors, by SMS or a WeChat official
account's template message, that money they gave was paid out (docs/relay-to-sms-or-wechat.md).

It runs at the charity, not at the ledger: the ledger keeps no donor contact. The charity
keeps its own opt-in list, a CSV of `donation_id,channel,address` (channel `sms` with a
phone number, or `wechat` with the donor's openid for the charity's official account),
written only for donors who asked to be told. For each verified, final
`disbursement.recorded` it asks the ledger's public API which donations funded the
payout (GET /v1/disbursements/{id}) and sends each opted-in donor one short message that
names the donation ID and a link to its public page, nothing else.

    LEDGER_WEBHOOK_SECRET=whsec_... python scripts/webhook_relay.py \\
        --contacts optin.csv --ledger https://ledger.example.org --port 8088

Without --send-wechat it only prints what it would send (dry run); an SMS provider's API
plugs in the same way as `send_wechat`. Only the standard library and `standardwebhooks`
are needed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class Message:
    channel: str  # sms | wechat
    address: str  # a phone number or an openid, from the charity's own opt-in list
    text: str


def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The payload, if its signature and timestamp (within 5 minutes) check out; raises
    WebhookVerificationError otherwise. Always verify before reading anything."""
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    return payload


def load_contacts(path: Path) -> dict[str, list[tuple[str, str]]]:
    """donation ID -> [(channel, address)], from the charity's opt-in CSV."""
    contacts: dict[str, list[tuple[str, str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["channel"] in ("sms", "wechat"):
                contacts.setdefault(row["donation_id"].strip(), []).append(
                    (row["channel"], row["address"].strip())
                )
    return contacts


def messages(
    payload: dict[str, Any],
    contacts: dict[str, list[tuple[str, str]]],
    funded_by: Callable[[str], list[str]],
    ledger: str,
) -> list[Message]:
    """The messages one webhook asks for: for a final payout, one per opted-in donor whose
    donation funded it, naming only the donation ID (no amount, name or recipient)."""
    if payload.get("type") != "disbursement.recorded":
        return []
    disbursement = payload["data"]["record"]["disbursementId"]
    out = []
    for donation in funded_by(disbursement):
        for channel, address in contacts.get(donation, []):
            link = f"{ledger}/donations/{donation}"
            text = f"Your donation {donation} has been put to use. See where it went: {link}"
            out.append(Message(channel, address, text))
    return out


def public_funding(ledger: str) -> Callable[[str], list[str]]:
    """The donations that funded a disbursement, from the ledger's public API."""

    def funded_by(disbursement: str) -> list[str]:
        with urllib.request.urlopen(f"{ledger}/v1/disbursements/{disbursement}", timeout=10) as answer:
            return [part["donation_id"] for part in json.load(answer)["funded_by"]]

    return funded_by


def send_wechat(access_token: str, template_id: str) -> Callable[[Message], None]:
    """A WeChat official account's template message (the donor followed the account and
    agreed to be told; `address` is the openid the account knows them by)."""

    def send(message: Message) -> None:
        body = {
            "touser": message.address,
            "template_id": template_id,
            "data": {"first": {"value": message.text}},
        }
        request = urllib.request.Request(
            f"https://api.weixin.qq.com/cgi-bin/message/template/send?access_token={access_token}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    return send


def make_handler(
    secret: str,
    contacts: dict[str, list[tuple[str, str]]],
    funded_by: Callable[[str], list[str]],
    ledger: str,
    deliver: Callable[[Message], None],
) -> type[BaseHTTPRequestHandler]:
    seen: set[str] = set()  # webhook-ids handled: deliveries are at least once

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            try:
                payload = verify(secret, body, dict(self.headers.items()))
            except WebhookVerificationError:
                self.send_response(401)
                self.end_headers()
                return
            webhook_id = self.headers["webhook-id"]
            if webhook_id not in seen:  # a real relay keeps this in its database
                for message in messages(payload, contacts, funded_by, ledger):
                    deliver(message)
                seen.add(webhook_id)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # the request line would name nothing personal, but keep logs quiet

    return Handler


def dry_run(message: Message) -> None:
    print(f"would send by {message.channel}: {message.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--contacts", type=Path, required=True, help="the opt-in CSV: donation_id,channel,address"
    )
    parser.add_argument("--ledger", required=True, help="the ledger's public address")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument(
        "--send-wechat", action="store_true", help="send (WECHAT_ACCESS_TOKEN, WECHAT_TEMPLATE_ID)"
    )
    args = parser.parse_args()
    secret = os.environ.get("LEDGER_WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        sys.exit("set LEDGER_WEBHOOK_SECRET to the whsec_... secret the ledger showed when you registered")
    deliver: Callable[[Message], None] = dry_run
    if args.send_wechat:
        deliver = send_wechat(os.environ["WECHAT_ACCESS_TOKEN"], os.environ["WECHAT_TEMPLATE_ID"])
    handler = make_handler(
        secret, load_contacts(args.contacts), public_funding(args.ledger), args.ledger, deliver
    )
    ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
