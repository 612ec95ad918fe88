"""aiokafka client options from ``source.kafka``: brokers, TLS and SASL, shared by every client.

Secrets stay :class:`pydantic.SecretStr` until this moment and are never logged.
"""
from __future__ import annotations

from aiokafka.helpers import create_ssl_context

from ..settings import KafkaSourceSettings


def client_options(settings: KafkaSourceSettings) -> dict:
    options: dict = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }  # request_timeout bounds our own calls only: a JoinGroup long-poll may rightly take longer
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile, certfile=settings.ssl_certfile,
                                                    keyfile=settings.ssl_keyfile)
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


def describe(settings: KafkaSourceSettings) -> str:
    """Where we connect, for logs and /readyz — without credentials."""
    auth = f", SASL {settings.sasl_mechanism or 'PLAIN'} as {settings.sasl_username}" \
        if settings.security_protocol.startswith("SASL") else ""
    return f"{settings.bootstrap_servers} ({settings.security_protocol}{auth})"
