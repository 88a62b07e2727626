"""VoxBento clients, one module per surface, written from /work/shared/voxbento-contract.md only.

They work against a real VoxBento deployment and the reference target alike, never import the
reference portal, and never import locust or gevent (Locust users wrap them; see ``reporting``).

- ``errors``       the typed error tree (one class per failure phase), URL redaction
- ``html``         the one HTML reader: pages parsed with the stdlib parser, elements found by tag and attributes
- ``reporting``    the ``report(...)`` callable shape (Locust's ``events.request.fire`` keywords)
- ``http``         ``PortalHttp``: base URL, redirects off, X-Forwarded-For, status checks, reporting
- ``cookies``      cookie names (contract 3.1) and Cookie headers for WebSockets
- ``identifiers``  slugs, language codes, booth ids and MediaMTX paths (contract 2)
- ``media_urls``   WHIP/WHEP URL building as the browser does it (contract 5.5)
- ``tokens``       ``TokenMinter``: JWTs from the target's secret (contract 3.1)
- ``booth_state``  the booth state object (contract 5.4)
- ``admin``        ``AdminClient``: login, wizard/classic forms, invites, join code, pages (contract 4, App. B)
- ``booth_api``    ``BoothApi``: the `/api/...` booth JSON routes (contract 3.5, 4.2, 5.5, 7)
- ``interpreter``  ``InterpreterClient``: invite join, lobby, booth page (contract 3.4, 5.1)
- ``listener``     ``ListenerClient``: listener page and audio-delay poll (contract 6.1, 6.2)
- ``ws_base``      WebSocket machinery: state machine, reader, timestamps, round trips
- ``booth_ws``     ``BoothSocket``: `/ws/booth/{booth_id}` (contract 5.3)
- ``captions_ws``  ``CaptionSocket``: `/ws/captions/{booth_id}` (contract 6.3)
- ``users``        ``UserClient``: `/register` and `/login` forms, outcomes as Enums (contract 3.3, 10)
- ``health``       ``healthz``: `GET /healthz`, a liveness signal only, and how a VoxBento is recognised (contract 9.2)
- ``media_api``    ``MediaControlApi``: reads of the MediaMTX Control API, path lists and configurations (contract 12.2)
"""

from .admin import AdminClient, EventSetup, RoomSetup
from .booth_api import BoothApi, CreatedBooth, WhipGrant
from .booth_state import BoothState, HandoffState, IngestStatus, Participant
from .booth_ws import BoothSocket
from .captions_ws import Caption, CaptionSocket
from .errors import (
    AuthRejected,
    BoothErrorReply,
    BoothMismatch,
    ClientError,
    CredentialsUnavailable,
    HandshakeRejected,
    MalformedResponse,
    NotFound,
    RateLimited,
    ReadBackError,
    ReplyTimeout,
    RequestTimeout,
    SocketClosed,
    SocketError,
    TargetUnreachable,
    TransportError,
    UnexpectedStatus,
)
from .http import PortalHttp
from .identifiers import BoothRef
from .interpreter import BoothPage, InterpreterClient
from .listener import ListenerClient, ListenerPage
from .media_api import MediaControlApi
from .tokens import TokenMinter
from .users import LoginOutcome, RegisterOutcome, UserClient
from .ws_base import SocketState

__all__ = [
    "AdminClient", "AuthRejected", "BoothApi", "BoothErrorReply", "BoothMismatch", "BoothPage", "BoothRef", "BoothSocket", "BoothState",
    "Caption", "CaptionSocket", "ClientError", "CreatedBooth", "CredentialsUnavailable", "EventSetup", "HandoffState",
    "HandshakeRejected", "IngestStatus", "InterpreterClient", "ListenerClient", "ListenerPage", "MalformedResponse", "MediaControlApi",
    "NotFound", "Participant", "PortalHttp", "RateLimited", "ReadBackError", "ReplyTimeout", "RequestTimeout", "RoomSetup",
    "SocketClosed", "SocketError", "SocketState", "TargetUnreachable", "TokenMinter", "TransportError", "UnexpectedStatus",
    "LoginOutcome", "RegisterOutcome", "UserClient", "WhipGrant",
]
