"""Why a broker closed a mutual-TLS session before CONNACK, when paho could not read it.

Under TLS 1.3 the client's handshake is done before the broker has checked the client's certificate, so
paho sends CONNECT at once; a broker that refuses the certificate sends its alert and closes. If CONNECT
reaches the broker after that close, the broker's kernel answers with a reset, and the client's kernel
drops what it had not yet read, the alert with it: paho sees "connection closed" and the reason is lost
(seen under load: tests/transport/test_mutual_tls.py). A refused certificate must not be retried as a
broker that is not ready, so the transport asks again: a fresh session that sends nothing and waits
for the broker's verdict, which then cannot be overtaken.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl

#: An ``ssl.SSLError``'s text for a TLS alert from the peer, e.g. "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert
#: unknown ca (_ssl.c:2580)" (paho logs the same text): the alert's words are the reason.
TLS_ALERT = re.compile(r"\[SSL: \w*ALERT\w*\] ([^(]+)")


def alert_of(error: BaseException) -> str | None:
    """The TLS alert ``error`` reports, or None if it is not one."""
    match = TLS_ALERT.search(str(error)) if isinstance(error, ssl.SSLError) else None
    return match.group(1).strip() if match else None


async def refusal_alert(host: str, port: int, context: ssl.SSLContext, *, wait: float) -> str | None:
    """The alert the broker at ``host:port`` ends a session of ``context`` with before the client sends a byte
    (a refused client certificate), or None: the session stayed open for ``wait`` s (the certificate is
    accepted: the earlier close had another cause) or could not be opened at all (the broker is away)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if context.check_hostname else None),
            wait)
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError: a refusal within the handshake (TLS 1.2)
        return alert_of(exc)
    try:
        await asyncio.wait_for(reader.read(1), wait)
    except (OSError, TimeoutError) as exc:
        return alert_of(exc)
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), wait)
    return None
