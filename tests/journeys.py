"""The recorded stream of every default journey, shared by the in-process flow test
(``tests/flows``) and the same test on Apache Kafka (``tests/integration``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DAY", "default_journeys"]

DAY = 86400.0


def default_journeys(s: Callable[..., Any]) -> None:
    """Send, with ``s(customer, event_type, seconds_ago=0, topic="clickstream",
    **properties)``, the events after which each default journey is due."""
    s("j-welcome", "page_view", url="/")
    s("j-cart", "page_view", 5, url="/")
    s("j-cart", "add_to_cart", 4, product_id="p1", price=100.0, quantity=1)
    for i in range(3):  # three products, three categories: no strong interest yet
        s("j-browse", "product_view", 10 - i, product_id=f"b{i}", category=f"cat{i}")
    for i in range(3):  # three views in one category: a recommendation, in session
        s("j-reco", "product_view", 10 - i, product_id=f"r{i}", category="shoes")
    s("j-support", "login", 60)
    s("j-support", "outage_notice", 30, topic="service", status="major")
    for i in range(5):  # five orders in the last weeks, then a visit: loyalty
        s("j-loyal", "purchase", (40 - 5 * i) * DAY, order_value=20.0)
    s("j-loyal", "page_view", url="/")
    s("j-churn", "purchase", 95 * DAY, order_value=250.0)
    s("j-churn", "purchase", 90 * DAY, order_value=250.0)
    s("j-churn", "page_view", url="/")  # back after 90 days: a churn save
    s("j-xsell", "add_to_cart", 30, product_id="x", price=10.0)
    s("j-xsell", "purchase", 20, order_value=10.0)
    s("j-nps", "login", 2 * DAY)
    s("j-nps", "survey_response", topic="service", nps=3)
    s("j-loan", "login", 2 * DAY)
    s("j-loan", "profile_updated", 2 * DAY - 1, email="loan@example.com")
    for i in range(5):
        s("j-loan", "product_view", 10 - i, product_id=f"l{i}", category="finance.loans")
