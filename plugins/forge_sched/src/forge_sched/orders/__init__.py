"""Orders for ``sched.order_scheduler``: storage, the scheduling service, the REST API."""
