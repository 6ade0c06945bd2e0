"""Buying exactly once: the purchase driver and the loops that hand it work.

driver.py      PurchaseDriver: places, looks up, follows and watches an order
reconciler.py  finishes every order left in flight (a crash, a lost answer)
scheduler.py   places scheduled orders when they are due, on exactly one replica
"""
