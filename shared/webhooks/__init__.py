"""Webhooks: URLs a user registers, told of their jobs' and sweeps' state changes.

``targets`` checks a URL (http(s), never a loopback or private address unless allowed),
``outbox`` writes each event in the transaction of the change it reports, ``service`` is what
the API does with webhooks, ``delivery`` sends due deliveries, signed, with retries.
"""
