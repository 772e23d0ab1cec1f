"""The token RPCs (CreateApiToken, ListApiTokens, RevokeApiToken) and WhoAmI, mixed into the
ControlPlane servicer; the interceptor has already checked that the caller may make them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc

from code_server.wire.timestamps import timestamp_to_proto
from control_plane.api.status import BadRequest, StatusOnError
from control_plane.api.validation import check_request
from control_plane.auth.authenticator import Authenticator
from control_plane.auth.identity import Role, current_identity
from control_plane.errors import ControlPlaneError
from control_plane.storage.api_tokens import ApiTokenRecord, ApiTokenStore
from partita.controlplane.v1 import auth_pb2

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}")
_MAX_EXPIRY = timedelta(days=3660)


class AuthenticationOff(ControlPlaneError):
    """This server was built without a token store or an authenticator (FAILED_PRECONDITION)."""


def role_to_proto(role: Role) -> auth_pb2.Role.ValueType:
    return auth_pb2.Role.Value(f"ROLE_{role.name}")


def role_from_proto(value: auth_pb2.Role.ValueType) -> Role | None:
    name = auth_pb2.Role.Name(value) if value in auth_pb2.Role.values() else ""
    return Role[name.removeprefix("ROLE_")] if name and name != "ROLE_UNSPECIFIED" else None


def api_token_to_proto(record: ApiTokenRecord) -> auth_pb2.ApiToken:
    message = auth_pb2.ApiToken(
        name=record.name,
        role=role_to_proto(record.role),
        locations=sorted(record.locations or ()),
        created_at=timestamp_to_proto(record.created_at),
    )
    for field, value in (
        ("expires_at", record.expires_at),
        ("revoked_at", record.revoked_at),
        ("last_used_at", record.last_used_at),
    ):
        if value is not None:
            getattr(message, field).CopyFrom(timestamp_to_proto(value))
    return message


class ApiTokenRpcs:
    """The RPCs over ``ApiTokenStore``; FAILED_PRECONDITION until ``attach_api_tokens``."""

    _api_tokens: ApiTokenStore | None = None
    _authenticator: Authenticator | None = None
    _token_clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    def attach_api_tokens(self, store: ApiTokenStore, authenticator: Authenticator) -> None:
        self._api_tokens = store
        self._authenticator = authenticator

    def CreateApiToken(
        self, request: auth_pb2.CreateApiTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CreateApiTokenResponse:
        with StatusOnError(context, "CreateApiToken"):
            check_request(request)
            if not _NAME.fullmatch(request.name):
                raise BadRequest(
                    f"name: {request.name[:100]!r} is not a token name: 1 to 100 letters, digits and "
                    "._@:- starting with a letter or digit."
                )
            role = role_from_proto(request.role)
            if role is None:
                raise BadRequest("role: required: viewer, operator or admin.")
            if any(not location or len(location) > 255 for location in request.locations):
                raise BadRequest("locations: each must be a code location name.")
            now = self._token_clock()
            expires_at = None
            if request.HasField("expires_in"):
                expires_in = request.expires_in.ToTimedelta()
                if not timedelta(0) < expires_in <= _MAX_EXPIRY:
                    raise BadRequest("expires_in: must be above 0 and at most 10 years.")
                expires_at = now + expires_in
            created = self._store().create(
                request.name, role, locations=list(request.locations) or None, expires_at=expires_at, now=now
            )
            return auth_pb2.CreateApiTokenResponse(
                token=created.token, api_token=api_token_to_proto(created.record)
            )

    def ListApiTokens(
        self, request: auth_pb2.ListApiTokensRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListApiTokensResponse:
        with StatusOnError(context, "ListApiTokens"):
            check_request(request)
            return auth_pb2.ListApiTokensResponse(
                api_tokens=[api_token_to_proto(record) for record in self._store().list()]
            )

    def RevokeApiToken(
        self, request: auth_pb2.RevokeApiTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RevokeApiTokenResponse:
        with StatusOnError(context, "RevokeApiToken"):
            check_request(request)
            record = self._store().revoke(request.name[:300], now=self._token_clock())
            if self._authenticator is not None:
                self._authenticator.forget(record.id)
            return auth_pb2.RevokeApiTokenResponse(api_token=api_token_to_proto(record))

    def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: grpc.ServicerContext
    ) -> auth_pb2.WhoAmIResponse:
        with StatusOnError(context, "WhoAmI"):
            identity = current_identity()
            if identity is None:
                raise AuthenticationOff("This server does not authenticate its callers.")
            return auth_pb2.WhoAmIResponse(
                name=identity.name,
                role=role_to_proto(identity.role),
                kind=identity.kind,
                locations=sorted(identity.locations or ()),
            )

    def _store(self) -> ApiTokenStore:
        if self._api_tokens is None:
            raise AuthenticationOff("This server keeps no API tokens.")
        return self._api_tokens
