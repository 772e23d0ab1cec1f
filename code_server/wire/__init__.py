"""Conversion between SDK objects and the ``partita.common.v1`` messages, at the edge only.

Planners, daemons and the SDK never touch protobuf objects; servers and clients call these.
"""
