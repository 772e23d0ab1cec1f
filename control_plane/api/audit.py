"""``ListAuditEvents``: the audit log over the API, with its filters and pages (the servicer calls ``list_audit_events``)."""

from __future__ import annotations

from code_server.wire.timestamps import timestamp_to_proto
from control_plane.api.paging import decode_page_token, page_size, paged
from control_plane.audit import AuditEvent, AuditFilter
from control_plane.service import ControlPlaneService
from partita.controlplane.v1 import audit_pb2


def list_audit_events(
    service: ControlPlaneService, request: audit_pb2.ListAuditEventsRequest
) -> audit_pb2.ListAuditEventsResponse:
    """One page of the audit log, newest first, and the next page's token."""
    size = page_size(request.page_size)
    where = AuditFilter(
        identity_name=request.identity_name if request.HasField("identity_name") else None,
        rpc=request.rpc if request.HasField("rpc") else None,
        target_kind=request.target_kind if request.HasField("target_kind") else None,
        target_id=request.target_id if request.HasField("target_id") else None,
    )
    events = service.list_audit_events(
        where=where, limit=size + 1, before=decode_page_token(request.page_token)
    )
    page, token = paged(events, size, lambda event: (event.at, event.id))
    return audit_pb2.ListAuditEventsResponse(
        events=[audit_event_to_proto(event) for event in page], next_page_token=token
    )


def audit_event_to_proto(event: AuditEvent) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        event_id=event.id,
        time=timestamp_to_proto(event.at),
        identity_name=event.identity_name,
        identity_kind=event.identity_kind,
        role=event.role,
        peer=event.peer,
        rpc=event.rpc,
        target_kind=event.target_kind or "",
        target_id=event.target_id or "",
        location_name=event.location or "",
        summary=event.summary,
        status_code=event.status,
        error_message=event.error or "",
    )
