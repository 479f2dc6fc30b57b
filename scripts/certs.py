"""A test CA, the broker's certificate and one certificate per MQTT client (CN = client id), for
Mosquitto with mutual TLS; see ``forge_mqtt.pki`` for the file layout and docs/security.md.

    .venv/bin/python scripts/certs.py create certs/ edge-1 edge-2 analytics-0 --expired edge-1
    .venv/bin/python scripts/certs.py issue certs/ edge-1      # rotation: a new key and certificate
    .venv/bin/python scripts/certs.py revoke certs/ edge-1     # list it in certs/crl.pem, then SIGHUP the broker
    .venv/bin/python scripts/certs.py crl certs/               # re-sign the CRL before it expires
"""

from __future__ import annotations

from forge_mqtt.pki import main

if __name__ == "__main__":
    raise SystemExit(main())
