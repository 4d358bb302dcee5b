"""The ticket endpoint that opens the WebSocket (see realtime/tickets.py for why tickets)."""

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.tickets import ticket_issue


class TicketApi(APIView):
    def perform_authentication(self, request: Request) -> None:
        """The access token's user is all this endpoint reads from the database; the rest (its
        rate limits, the ticket) is Redis. So the pooled connection goes back to the pool as soon
        as the user is read, not when the response is done: on the hour, thousands of these run at
        once, and a connection held through the Redis work and the rendering (or while its thread
        waits for the interpreter) is one the next request waits for, until its 503."""
        super().perform_authentication(request)
        if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
            connection.close()  # with a pool, close() returns the connection to it

    @extend_schema(
        tags=["realtime"],
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
        """A single-use ticket that opens one WebSocket connection within a few seconds."""
        ticket = ticket_issue(user=request.user)
        return Response(
            {
                "ticket": ticket,
                "expires_in": settings.REALTIME_TICKET_TTL_SECONDS,
                "url": f"{settings.WEBSOCKET_PUBLIC_URL.rstrip('/')}/?ticket={ticket}",
            },
            status=status.HTTP_201_CREATED,
        )
