"""The ticket endpoint, for clients that open the WebSocket with a ticket rather than their access
token (see realtime/tickets.py and realtime/bearer.py)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AccessTokenClaimsAuthentication
from realtime.tickets import ticket_issue


class TicketApi(APIView):
    # The token alone, no database: the ticket's redemption checks the user (active, and the
    # token's generation still current) before it opens anything (realtime/tickets.py). On the
    # hour thousands of these arrive at once, and a database read each made them queue for the
    # pool's connections until some answered 503.
    authentication_classes = [AccessTokenClaimsAuthentication]

    @extend_schema(
        tags=["realtime"],
        auth=[{"bearerAuth": []}],  # the same access token (accounts/schema.py), read from its claims
        request=None,
        responses={
            201: inline_serializer(
                "RealtimeTicket",
                {
                    "ticket": serializers.CharField(),
                    "expires_in": serializers.IntegerField(help_text="Seconds the ticket stays valid."),
                    "url": serializers.CharField(help_text="Where to connect: the WebSocket URL with the ticket."),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        """A single-use ticket that opens one WebSocket connection within a few seconds.

        Only for clients that cannot offer WebSocket subprotocols: others open the socket with
        the access token itself, offered as the subprotocol `bearer.<token>` beside
        `telehealth.v1` (docs/realtime.md, "Connecting")."""
        ticket = ticket_issue(user=request.user)
        return Response(
            {
                "ticket": ticket,
                "expires_in": settings.REALTIME_TICKET_TTL_SECONDS,
                "url": f"{settings.WEBSOCKET_PUBLIC_URL.rstrip('/')}/?ticket={ticket}",
            },
            status=status.HTTP_201_CREATED,
        )
