"""The edge: everything that speaks HTTP to the gateway's own clients.

    endpoint.py      the /graphql endpoint: one request in, one answer out
    protocol.py      GraphQL over HTTP: what a request may carry, how an answer is sent
    caching.py       HTTP caching of GET answers
    persisted.py     automatic persisted queries and trusted documents
    view.py          the Strawberry view: WebSocket subscriptions, GraphiQL, fallbacks
    routing.py       the Starlette app that answers /graphql before its router
    auth.py          who is calling (API keys, JWT)
    graphiql.py      the GraphiQL page and its assets
    install_page.py  the eSIM install page (/install/<token>)
    replay.py        an ASGI `receive` for a body already read

Imported only by the composition root (`app`, `cli`) and, for `replay`, the sandbox.
"""
