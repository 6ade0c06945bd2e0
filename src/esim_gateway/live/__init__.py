"""Live updates: the topic broker behind subscriptions (`broker.py`).

Imports nothing of the gateway; the ledger's listeners, the webhook processor and the
subscriptions reach it through `Services.broker`.
"""
