"""A typed client for code servers: one method per RPC, transport errors translated once, here."""

from code_server.client.client import CodeServerClient, DefinitionsSnapshot, ServerInfo
from code_server.client.errors import (
    CodeServerError,
    CodeServerUnavailable,
    DefinitionNotFound,
    InvalidRequest,
    UserCodeError,
    UserCodeLoadFailed,
)

__all__ = [
    "CodeServerClient",
    "CodeServerError",
    "CodeServerUnavailable",
    "DefinitionNotFound",
    "DefinitionsSnapshot",
    "InvalidRequest",
    "ServerInfo",
    "UserCodeError",
    "UserCodeLoadFailed",
]
