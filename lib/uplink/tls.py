"""Mutual TLS 1.2 to the bank: the device's certificate and key and the issuer CA from the vault.

    ctx = context(vault)                       # once: the key is parsed into mbedTLS
    reader, writer = await connect(ctx, "bank.example", 8583)

The server is verified against the issuer CA only (CERT_REQUIRED; or the CAs of the issuer's
terminal parameters in its place, update.config) and by name
(server_hostname: the configured host name, also when the virtual handheld routes the socket
through its access point, board.route()). A certificate that does not verify, is expired or
names another host raises CertificateError with mbedTLS's reason; other handshake failures
raise TlsError. The handshake runs on the first write or read (the socket is non-blocking
under asyncio), so callers map errors from those with tls_error().
"""

import ssl

import asyncio

import board


class UplinkError(Exception):
    pass


class TlsError(UplinkError):
    """The TLS connection failed (handshake refused, alert, connection reset during it)."""


class CertificateError(TlsError):
    """The bank's certificate was refused: not from the issuer CA, expired, or another name."""


def context(vault):
    """The client context: device certificate and key, the issuer CA as the only trust anchor,
    or the CAs the issuer's terminal parameters name in its place (update.config.bank_cas:
    certificate rotation)."""
    import os

    from update import BANK_CA

    anchors = ()
    try:
        os.stat(BANK_CA)
        from update.config import bank_cas  # only on a unit whose issuer named the bank's CAs

        anchors = bank_cas()
    except OSError:
        pass
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cert = vault.device_secret("device.cert")
    key = vault.device_secret("device.key")
    ca = vault.device_secret("issuer.ca")
    try:
        # ssl takes bytes only: the copies go with the next collection; the bytearrays are wiped.
        ctx.load_cert_chain(bytes(cert), bytes(key))
        for anchor in anchors or (bytes(ca),):
            ctx.load_verify_locations(cadata=anchor)
    finally:
        for buf in (cert, key, ca):
            for i in range(len(buf)):
                buf[i] = 0
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def connect(ctx, host, port):
    """(reader, writer) of a TLS connection to the bank at host:port (by board.route())."""
    via_host, via_port = board.route(host, port)
    return await asyncio.open_connection(via_host, via_port, ssl=ctx, server_hostname=host)


# mbedTLS's codes for a connection that went away, which say nothing of the bank's identity: a
# host that is down behind a proxy or an access point accepts the connection and closes it
# during the handshake. The owner must see "the bank does not answer", not "not trusted".
_GONE = (-0x7280, -0x0050, -0x004C, -0x004E)  # SSL_CONN_EOF, NET_CONN_RESET, NET_RECV/SEND_FAILED


def tls_error(e):
    """The typed error for an exception out of a TLS socket, or None if it is not TLS's (the
    connection lost, as a network failure is). mbedTLS reports a refused certificate as
    ValueError with the verification's reason, and other failures as OSError with a negative
    (mbedTLS) code."""
    args = list(e.args)
    first = args.pop(0) if args else None
    if isinstance(e, ValueError) and isinstance(first, str):
        return CertificateError("bank certificate refused: " + first.strip())
    if isinstance(e, OSError) and isinstance(first, int) and first < 0 and first not in _GONE:
        return TlsError("TLS failed: %s" % (args[0] if args else first))
    return None
