"""The answer to placing an ad-hoc call (``POST calls/initiate/`` and the socket's
``call.initiate``): the call, as every call endpoint answers it, and the caller's ICE servers."""

from typing import Any

from rest_framework import serializers

from video_calls.models import Call
from video_calls.serializers import CallSerializer, IceServerSerializer
from video_calls.services.adhoc import PlacedCall


class CallPlacedSerializer(CallSerializer):
    """The ringing call with the caller's ICE servers: named as in the join payload, so a client
    reads them the same way from the caller's initiate and the callee's accept."""

    ice_servers = IceServerSerializer(many=True, read_only=True)
    ice_expires_at = serializers.DateTimeField(read_only=True)

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "ice_servers", "ice_expires_at"]


def placed_call_payload(placed: PlacedCall, call: Call) -> dict[str, Any]:
    """``call`` is ``placed.call`` read again with its participants."""
    call.ice_servers = placed.ice.ice_servers
    call.ice_expires_at = placed.ice.expires_at
    return CallPlacedSerializer(call).data
