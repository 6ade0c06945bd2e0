"""Outbound webhooks: the events the gateway sends to operators' receivers.

    signing.py     Standard Webhooks signatures (v1, HMAC-SHA256), sign and verify
    urls.py        which receiver URLs are allowed (https, no private addresses in live mode)
    dispatcher.py  the background loop that delivers the ledger's outbox, with retries
    receiver.py    a tiny verifying receiver for the sandbox (`esim-gateway webhook-receiver`)

The outbox itself lives in the ledger (`esim_gateway.ledger.outbox`), and so do the event
names and payloads (`esim_gateway.ledger.outbound_events`): a message is written in the
same transaction as the state change it announces.
"""
