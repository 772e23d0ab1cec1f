"""TLS for Partita's three gRPC connections, from PEM files, shared by every server and client.

The three connections are the client (CLI, Python client) to the control plane, the control plane
to its code servers, and a run worker to the control plane. All of them are configured the same
way: a server from its certificate and key (plus, for mutual TLS, the CA its clients' certificates
must come from); a client from the CA it trusts (plus, for mutual TLS, its own certificate and key).

A server re-reads its files when they change on disk (a cert-manager renewal, a rotated Secret):
``grpc.dynamic_ssl_server_credentials`` asks for the configuration at every new handshake, and the
files are read again only when their modification time or size changed, and only used once the
new certificate and key are seen to match (a rotation that has written the certificate but not yet
the key keeps serving the old pair). Connections already open keep their session.

A client reads its files once, when its channel is made: clients and workers are short-lived, and
the control plane's code-server channels reconnect with the files as they were at its start.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from code_server.errors import PartitaError

logger = logging.getLogger("partita.tls")

#: Client side (CLI, Python client, run workers): what the client trusts and presents.
CLIENT_CA_ENV = "PARTITA_TLS_CA"
CLIENT_CERT_ENV = "PARTITA_TLS_CERT"
CLIENT_KEY_ENV = "PARTITA_TLS_KEY"
CLIENT_SERVER_NAME_ENV = "PARTITA_TLS_SERVER_NAME"
#: Server side (``partita control-plane``, ``partita code-server``): kept apart from the client's
#: names so that a worker started from a server's environment never presents the server's pair.
SERVER_CERT_ENV = "PARTITA_SERVER_TLS_CERT"
SERVER_KEY_ENV = "PARTITA_SERVER_TLS_KEY"
SERVER_CLIENT_CA_ENV = "PARTITA_SERVER_TLS_CLIENT_CA"


class TlsConfigError(PartitaError):
    """A TLS setting is incomplete or names a file that cannot be used."""


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A server's certificate and key files, and for mutual TLS the CA its clients must present.

    Exists so that every Partita server turns the same three flags into credentials the same way,
    with rotation on disk handled once.
    """

    cert: Path
    key: Path
    #: When set, a client must present a certificate issued by this CA (mutual TLS).
    client_ca: Path | None = None

    @classmethod
    def from_settings(
        cls, cert: str | None, key: str | None, client_ca: str | None = None, *, flag: str = "--tls"
    ) -> ServerTls | None:
        """The settings given (None when neither a certificate nor a key is); both or neither."""
        if not cert and not key:
            if client_ca:
                raise TlsConfigError(
                    f"{_name(flag, 'client-ca')} needs {_name(flag, 'cert')} and {_name(flag, 'key')}: "
                    "mutual TLS is TLS first."
                )
            return None
        if not cert or not key:
            missing = _name(flag, "key" if cert else "cert")
            raise TlsConfigError(f"TLS needs a certificate and its key: {missing} is missing.")
        settings = cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)
        settings.check()
        return settings

    def check(self) -> None:
        """Fail now, naming the file, rather than at the first handshake."""
        _read_pem(self.cert, "server certificate")
        _read_pem(self.key, "server key")
        if self.client_ca is not None:
            _read_pem(self.client_ca, "client CA")
        _check_pair(self.cert, self.key)

    def credentials(self) -> grpc.ServerCredentials:
        """Credentials that pick up new files at the next handshake after they change."""
        source = _RotatingServerConfig(self)
        return grpc.dynamic_ssl_server_credentials(
            source.initial(),
            source.fetch,  # type: ignore[arg-type]  # grpc-stubs omit that None keeps the current one
            require_client_authentication=self.client_ca is not None,
        )


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client trusts (a CA file) and, for mutual TLS, the certificate it presents.

    Exists so that the CLI, the Python client, the control plane's code-server clients and run
    workers all build their channels from one set of settings, read from flags or ``PARTITA_TLS_*``.
    """

    #: The CA the server's certificate must come from; None trusts the system's roots.
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    #: The name to check the server's certificate against, when it differs from the address's host.
    server_name: str | None = None

    @classmethod
    def from_settings(
        cls,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        server_name: str | None = None,
        *,
        flag: str = "--tls",
        read_files: bool = True,
    ) -> ClientTls | None:
        """The settings given; None (plain text) when none of them is.

        ``read_files=False`` is for paths of another machine (a worker's pod): not read here.
        """
        if not (ca or cert or key or server_name):
            return None
        if bool(cert) != bool(key):
            missing = _name(flag, "key" if cert else "cert")
            raise TlsConfigError(f"A client certificate needs its key and the reverse: {missing} is missing.")
        settings = cls(
            ca=Path(ca) if ca else None,
            cert=Path(cert) if cert else None,
            key=Path(key) if key else None,
            server_name=server_name or None,
        )
        if read_files:
            settings.channel_credentials()  # read the files now, naming any that is unusable
        return settings

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ClientTls | None:
        """The ``PARTITA_TLS_*`` settings of a process (how run workers get theirs)."""
        return cls.from_settings(
            environ.get(CLIENT_CA_ENV),
            environ.get(CLIENT_CERT_ENV),
            environ.get(CLIENT_KEY_ENV),
            environ.get(CLIENT_SERVER_NAME_ENV),
            flag="$PARTITA_TLS",
        )

    def environment(self) -> dict[str, str]:
        """These settings as the ``PARTITA_TLS_*`` variables a worker reads (``from_environment``)."""
        values = {
            CLIENT_CA_ENV: self.ca,
            CLIENT_CERT_ENV: self.cert,
            CLIENT_KEY_ENV: self.key,
            CLIENT_SERVER_NAME_ENV: self.server_name,
        }
        return {name: str(value) for name, value in values.items() if value}

    def channel_credentials(self) -> grpc.ChannelCredentials:
        root = _read_pem(self.ca, "CA") if self.ca else None
        cert = _read_pem(self.cert, "client certificate") if self.cert else None
        key = _read_pem(self.key, "client key") if self.key else None
        return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)

    def channel_options(self) -> list[tuple[str, Any]]:
        if not self.server_name:
            return []
        return [("grpc.ssl_target_name_override", self.server_name)]


def open_channel(
    address: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A channel to ``address``: TLS with ``tls``, plain text without."""
    if tls is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, tls.channel_credentials(), options=[*options, *tls.channel_options()])


def handshake_hint(details: str, tls: ClientTls | None) -> str:
    """What to check when a call failed for what looks like a TLS problem; empty when it does not."""
    lowered = details.lower()
    if "handshake" in lowered or "ssl" in lowered or "certificate" in lowered:
        return (
            " The TLS handshake failed: check that the CA you trust (--tls-ca or $PARTITA_TLS_CA) "
            "issued the server's certificate, that its name matches the address (or "
            "--tls-server-name), and, where the server requires mutual TLS, that --tls-cert and "
            "--tls-key are a certificate its client CA issued."
        )
    if tls is None and "socket closed" in lowered:
        return " If the server serves TLS, trust its CA with --tls-ca (or $PARTITA_TLS_CA)."
    return ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to ``--host``) is reachable from this machine only."""
    host = host.strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


class _RotatingServerConfig:
    """The certificate configuration of a ``ServerTls``, read again when its files change."""

    def __init__(self, settings: ServerTls) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._stamp = self._current_stamp()

    def initial(self) -> grpc.ServerCertificateConfiguration:
        return self._load()

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC at each handshake: a new configuration, or None to keep the current one."""
        try:
            with self._lock:
                stamp = self._current_stamp()
                if stamp == self._stamp:
                    return None
                _check_pair(self._settings.cert, self._settings.key)
                configuration = self._load()
                self._stamp = stamp
            logger.info("TLS certificate %s changed on disk; serving the new one", self._settings.cert)
            return configuration
        except (OSError, TlsConfigError) as error:
            # Half-written rotation, most likely: keep serving the old pair and look again next time.
            logger.warning("Keeping the current TLS certificate: %s", error)
            return None

    def _current_stamp(self) -> tuple[tuple[int, int], ...]:
        paths = [self._settings.cert, self._settings.key]
        if self._settings.client_ca is not None:
            paths.append(self._settings.client_ca)
        stamps = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                stamps.append((-1, -1))
            else:
                stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        settings = self._settings
        pair = (_read_pem(settings.key, "server key"), _read_pem(settings.cert, "server certificate"))
        client_ca = _read_pem(settings.client_ca, "client CA") if settings.client_ca else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=client_ca)


def _name(flag: str, suffix: str) -> str:
    """``--tls`` + ``key`` -> ``--tls-key``; ``$PARTITA_TLS`` + ``key`` -> ``$PARTITA_TLS_KEY``."""
    if flag.startswith("$"):
        return f"{flag}_{suffix.replace('-', '_').upper()}"
    return f"{flag}-{suffix}"


def _read_pem(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"Cannot read the TLS {what} file {str(path)!r}: {error.strerror}.") from error
    if b"-----BEGIN " not in data:
        raise TlsConfigError(f"The TLS {what} file {str(path)!r} holds no PEM block (-----BEGIN ...).")
    return data


def _check_pair(cert: Path, key: Path) -> None:
    """Fail unless the key belongs to the certificate (gRPC would only say so at a handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(
            f"The TLS key {str(key)!r} does not go with the certificate {str(cert)!r} ({error})."
        ) from error


__all__ = [
    "CLIENT_CA_ENV",
    "CLIENT_CERT_ENV",
    "CLIENT_KEY_ENV",
    "CLIENT_SERVER_NAME_ENV",
    "SERVER_CERT_ENV",
    "SERVER_CLIENT_CA_ENV",
    "SERVER_KEY_ENV",
    "ClientTls",
    "ServerTls",
    "TlsConfigError",
    "handshake_hint",
    "is_loopback",
    "open_channel",
]
