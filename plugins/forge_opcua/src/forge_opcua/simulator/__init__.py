"""The simulated PLC: machine models (model.py) served by an asyncua server (server.py)."""
