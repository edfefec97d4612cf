"""kbroker package."""
