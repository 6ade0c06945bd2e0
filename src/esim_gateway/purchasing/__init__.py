"""Buying exactly once: the purchase driver and the loops that hand it work.

driver.py      PurchaseDriver: one task and one lease per order, running the parts below
states.py      the purchase state table: every move between steps, and why
placing.py     sending a purchase, and what each kind of answer means
lookups.py     an unknown outcome: lookups by reference with backoff, resend or give up
records.py     adopting orders found, reporting duplicates, writing moves
following.py   a placed order, until it settles (Roamify's apply retried on its own)
watching.py    a reference watched after a resend or a give-up
pacing.py      the driver's knobs and waits
reconciler.py  finishes every order left in flight (a crash, a lost answer)
scheduler.py   places scheduled orders when they are due, on exactly one replica
"""
