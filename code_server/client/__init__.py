"""A typed client for code servers: one method per RPC, transport errors translated once, here."""

from code_server.client.client import CodeServerClient, CodeServerDeadlines, DefinitionsSnapshot, ServerInfo
from code_server.client.errors import (
    CodeServerError,
    CodeServerUnavailable,
    DefinitionNotFound,
    InvalidAnswer,
    InvalidDefinitions,
    InvalidRequest,
    UndecodableAnswer,
    UserCodeError,
    UserCodeLoadFailed,
)

__all__ = [
    "CodeServerClient",
    "CodeServerDeadlines",
    "CodeServerError",
    "CodeServerUnavailable",
    "DefinitionNotFound",
    "DefinitionsSnapshot",
    "InvalidAnswer",
    "InvalidDefinitions",
    "InvalidRequest",
    "ServerInfo",
    "UndecodableAnswer",
    "UserCodeError",
    "UserCodeLoadFailed",
]
