"""What the traveller needs: install instructions as data, and the shareable install links.

* `instructions`: ordered steps per platform and language, built only from what the
  provider sent (no I/O);
* `links`: capability tokens for `/install/<token>` (stored hashed, expiring, revocable);
* the page itself (server-rendered, works without JavaScript) is the edge's:
  `esim_gateway.http.install_page`.
"""
