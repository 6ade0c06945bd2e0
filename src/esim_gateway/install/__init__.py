"""What the traveller needs: install instructions as data, and the shareable install page.

* `instructions`: ordered steps per platform and language, built only from what the
  provider sent (no I/O);
* `links`: capability tokens for `/install/<token>` (stored hashed, expiring, revocable);
* `page`: the page itself (server-rendered, works without JavaScript).
"""
