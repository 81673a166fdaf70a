"""A small ONVIF camera on loopback that speaks the protocol on the wire, for the ONVIF
tests: no part of doorwarden is mocked, the client is onvif-zeep-async itself.

* `DiscoveryResponder`: a UDP socket answering WS-Discovery Probes with ProbeMatches
  (RelatesTo the probe's MessageID), plus scripted extra datagrams (noise, a hostile
  reply, a duplicate) sent before the match.
* `SoapCamera`: a stdlib HTTP server answering SOAP 1.2: GetSystemDateAndTime (no
  auth, as ONVIF allows), GetServices, GetCapabilities, GetDeviceInformation, GetProfiles,
  GetStreamUri, CreatePullPointSubscription, PullMessages (a long poll returning the
  NotificationMessages queued with `push`), Renew, Unsubscribe. WS-Security
  UsernameToken digests are checked (a wrong one is the camera's `ter:NotAuthorized`
  fault, HTTP 400). `go_down()` drops every connection (pulls in flight included) and
  stops listening; `come_back()` listens again on the same port with no subscriptions
  (a rebooted camera). `reply_override` replaces one operation's reply with raw bytes
  (malformed or hostile XML).

Operations not listed answer a SOAP fault (ter:ActionNotSupported), as cameras do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lxml import etree

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS = {
    "env": ENV,
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "tt": "http://www.onvif.org/ver10/schema",
    "tns1": "http://www.onvif.org/ver10/topics",
    "ter": "http://www.onvif.org/ver10/error",
}
XMLNS = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
NO_AUTH = {"GetSystemDateAndTime"}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class Profile:
    token: str
    name: str
    width: int
    height: int
    fps: int = 25
    encoding: str = "H264"
    path: str = ""
    stream: bool = True  # False: GetStreamUri refuses it (an audio or snapshot profile)


MAIN = Profile("prof0", "MainStream", 1920, 1080, 25, "H264", "/Streaming/Channels/101")
SUB = Profile("prof1", "SubStream", 640, 360, 15, "H264", "/Streaming/Channels/102")


def notification(topic: str, data: dict[str, str], *, operation: str = "Changed",
                 source: dict[str, str] | None = None) -> str:  # fmt: skip
    """One wsnt:NotificationMessage, as a camera sends it."""
    items = "".join(f'<tt:SimpleItem Name="{k}" Value="{v}"/>' for k, v in data.items())
    src = "".join(f'<tt:SimpleItem Name="{k}" Value="{v}"/>' for k, v in (source or {}).items())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        "<wsnt:NotificationMessage>"
        '<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
        f"{topic}</wsnt:Topic>"
        f'<wsnt:Message><tt:Message UtcTime="{now}" PropertyOperation="{operation}">'
        f"<tt:Source>{src}</tt:Source><tt:Data>{items}</tt:Data>"
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {XMLNS}><env:Header/>'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def fault(subcode: str, reason: str) -> bytes:
    return envelope(
        "<env:Fault><env:Code><env:Value>env:Sender</env:Value>"
        f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault>'
    )


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(duration: str, default: float) -> float:
    """PT10S, PT1.5S, PT1M -> seconds."""
    m = re.fullmatch(r"PT(?:(\d+)M)?(?:([\d.]+)S)?", duration.strip())
    if not m or not any(m.groups()):
        return default
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0)


@dataclass
class SoapCamera:
    username: str | None = "admin"
    password: str | None = "secret"
    profiles: list[Profile] = field(default_factory=lambda: [MAIN, SUB])
    manufacturer: str = "Acme"
    model: str = "DB-1"
    max_pull_wait_s: float = 5.0
    port: int = 0
    rtsp_port: int = 554
    calls: list[str] = field(default_factory=list)
    subscriptions: dict[str, float] = field(default_factory=dict)  # id -> termination
    created: int = 0
    unsubscribed: int = 0
    renewed: int = 0
    auth_failures: int = 0
    reply_override: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._queue: list[str] = []
        self._cond = threading.Condition()
        self._down = False
        self._server: ThreadingHTTPServer | None = None
        self._listen()

    # -- control -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *messages: str) -> None:
        """Queue NotificationMessages for the next PullMessages."""
        with self._cond:
            self._queue.extend(messages)
            self._cond.notify_all()

    def wait_subscribed(self, count: int = 1, timeout_s: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.created >= count and self.subscriptions:
                return True
            time.sleep(0.02)
        return False

    def go_down(self) -> None:
        with self._cond:
            self._down = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def come_back(self) -> None:
        with self._cond:
            self.subscriptions.clear()
            self._queue.clear()
            self._down = False
        self._listen()

    def close(self) -> None:
        self.go_down()

    def _listen(self) -> None:
        camera = self

        class Handler(_Handler):
            owner = camera

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    # -- SOAP --------------------------------------------------------------------------

    def answer(self, request: bytes, path: str) -> tuple[int, bytes | None]:
        """(HTTP status, body); body None: drop the connection without a reply."""
        try:
            root = etree.fromstring(request, parser=PARSER)
        except etree.XMLSyntaxError:
            return 400, fault("ter:WellFormed", "not XML")
        body = root.find(f"{{{ENV}}}Body")
        if body is None or len(body) == 0:
            return 400, fault("ter:WellFormed", "no body")
        op_el = body[0]
        op = etree.QName(op_el).localname
        self.calls.append(op)
        if op in self.reply_override:
            return 200, self.reply_override[op]
        if op not in NO_AUTH and not self._authorised(root):
            self.auth_failures += 1
            return 400, fault("ter:NotAuthorized", "Sender not Authorized")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            return 400, fault("ter:ActionNotSupported", f"{op} is not supported")
        return handler(op_el, path)

    def _authorised(self, root: Any) -> bool:
        if self.username is None:
            return True
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username")
        password = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        if user != self.username or password is None or self.password is None:
            return False
        if (password.get("Type") or "").endswith("#PasswordDigest"):
            digest = hashlib.sha1(  # noqa: S324 - WS-Security UsernameToken is SHA-1
                base64.b64decode(nonce) + created.encode() + self.password.encode()
            ).digest()
            return base64.b64encode(digest).decode() == (password.text or "")
        return password.text == self.password

    def _op_GetSystemDateAndTime(self, _el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        now = datetime.now(UTC)
        return 200, envelope(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}"
            f"</tt:Minute><tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>"
            f"{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day>"
            "</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _services(self) -> dict[str, str]:
        return {
            NS["tds"]: f"{self.base}/onvif/device_service",
            NS["trt"]: f"{self.base}/onvif/media_service",
            NS["tev"]: f"{self.base}/onvif/event_service",
        }

    def _op_GetServices(self, _el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        services = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{xaddr}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, xaddr in self._services().items()
        )
        return 200, envelope(f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>")

    def _op_GetCapabilities(self, _el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        s = self._services()
        return 200, envelope(
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{s[NS['tds']]}</tt:XAddr></tt:Device>"
            f"<tt:Events><tt:XAddr>{s[NS['tev']]}</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
            "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
            f"<tt:Media><tt:XAddr>{s[NS['trt']]}</tt:XAddr></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _op_GetDeviceInformation(self, _el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        return 200, envelope(
            f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{self.manufacturer}"
            f"</tds:Manufacturer><tds:Model>{self.model}</tds:Model><tds:FirmwareVersion>1.2.3"
            "</tds:FirmwareVersion><tds:SerialNumber>SN0001</tds:SerialNumber>"
            "<tds:HardwareId>HW-7</tds:HardwareId></tds:GetDeviceInformationResponse>"
        )

    def _op_GetProfiles(self, _el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        profiles = "".join(
            f'<trt:Profiles token="{p.token}" fixed="true"><tt:Name>{p.name}</tt:Name>'
            f'<tt:VideoEncoderConfiguration token="enc-{p.token}"><tt:Name>{p.name}</tt:Name>'
            f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{p.encoding}</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height>"
            "</tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl>"
            f"<tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1"
            "</tt:EncodingInterval><tt:BitrateLimit>2048</tt:BitrateLimit></tt:RateControl>"
            "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>"
            "</trt:Profiles>"
            for p in self.profiles
        )
        return 200, envelope(f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>")

    def _op_GetStreamUri(self, el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        token = el.findtext(f"{{{NS['trt']}}}ProfileToken")
        profile = next((p for p in self.profiles if p.token == token), None)
        if profile is None or not profile.stream:
            return 400, fault("ter:NoProfile", f"no stream for profile {token}")
        return 200, envelope(
            "<trt:GetStreamUriResponse><trt:MediaUri>"
            f"<tt:Uri>rtsp://127.0.0.1:{self.rtsp_port}{profile.path}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            "</trt:MediaUri></trt:GetStreamUriResponse>"
        )

    def _op_CreatePullPointSubscription(self, el: Any, _path: str) -> tuple[int, bytes]:  # noqa: N802
        now = datetime.now(UTC)
        wanted = el.findtext(f"{{{NS['tev']}}}InitialTerminationTime") or "PT60S"
        until = now + timedelta(seconds=_seconds(wanted, 60))
        sub = uuid.uuid4().hex[:12]
        with self._cond:
            self.subscriptions[sub] = until.timestamp()
            self.created += 1
        return 200, envelope(
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{self.base}/onvif/subscription/{sub}</wsa:Address>"
            f"</tev:SubscriptionReference><wsnt:CurrentTime>{_utc(now)}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{_utc(until)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    def _subscription(self, path: str) -> str | None:
        sub = path.rsplit("/", 1)[-1]
        return sub if sub in self.subscriptions else None

    def _op_PullMessages(self, el: Any, path: str) -> tuple[int, bytes | None]:  # noqa: N802
        if self._subscription(path) is None:
            return 400, fault("ter:InvalidArgVal", "no such subscription (ResourceUnknown)")
        wait = min(_seconds(el.findtext(f"{{{NS['tev']}}}Timeout") or "", 1), self.max_pull_wait_s)
        limit = int(el.findtext(f"{{{NS['tev']}}}MessageLimit") or 100)
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._down, timeout=wait)
            if self._down:
                return 0, None
            messages, self._queue = self._queue[:limit], self._queue[limit:]
        now = datetime.now(UTC)
        return 200, envelope(
            f"<tev:PullMessagesResponse><tev:CurrentTime>{_utc(now)}</tev:CurrentTime>"
            f"<tev:TerminationTime>{_utc(now + timedelta(seconds=60))}</tev:TerminationTime>"
            + "".join(messages)
            + "</tev:PullMessagesResponse>"
        )

    def _op_Renew(self, _el: Any, path: str) -> tuple[int, bytes]:  # noqa: N802
        sub = self._subscription(path)
        if sub is None:
            return 400, fault("ter:InvalidArgVal", "no such subscription")
        now = datetime.now(UTC)
        self.renewed += 1
        self.subscriptions[sub] = (now + timedelta(seconds=60)).timestamp()
        return 200, envelope(
            f"<wsnt:RenewResponse><wsnt:TerminationTime>{_utc(now + timedelta(seconds=60))}"
            f"</wsnt:TerminationTime><wsnt:CurrentTime>{_utc(now)}</wsnt:CurrentTime>"
            "</wsnt:RenewResponse>"
        )

    def _op_Unsubscribe(self, _el: Any, path: str) -> tuple[int, bytes]:  # noqa: N802
        sub = self._subscription(path)
        if sub is not None:
            del self.subscriptions[sub]
            self.unsubscribed += 1
        return 200, envelope("<wsnt:UnsubscribeResponse/>")


class _Handler(BaseHTTPRequestHandler):
    owner: SoapCamera
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = self.rfile.read(min(length, 1 << 20))
        status, body = self.owner.answer(request, self.path)
        if body is None:  # the camera went away mid-request
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- WS-Discovery ------------------------------------------------------------------------

WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSA04 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"


def probe_matches(relates_to: str, endpoint: str, xaddrs: list[str], scopes: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{ENV}" xmlns:a="{WSA04}" xmlns:d="{WSD}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Header>'
        "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>"
        f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID><a:RelatesTo>{relates_to}</a:RelatesTo>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        "</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference>"
        f"<a:Address>{endpoint}</a:Address></a:EndpointReference>"
        "<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
        f"<d:Scopes>{' '.join(scopes)}</d:Scopes><d:XAddrs>{' '.join(xaddrs)}</d:XAddrs>"
        "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></s:Body>"
        "</s:Envelope>"
    ).encode()


class DiscoveryResponder:
    """Answers each Probe for video transmitters: the `extra` datagrams first, then a
    ProbeMatches for each camera in `cameras` (endpoint, xaddrs, scopes)."""

    def __init__(self, cameras: list[tuple[str, list[str], list[str]]],
                 extra: list[bytes] | None = None) -> None:  # fmt: skip
        self.cameras = cameras
        self.extra = extra or []
        self.probes: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                root = etree.fromstring(data, parser=PARSER)
            except etree.XMLSyntaxError:
                continue
            if root.find(f".//{{{WSD}}}Probe") is None:
                continue
            self.probes.append(data)
            message_id = root.findtext(f".//{{{WSA04}}}MessageID") or ""
            for datagram in self.extra:
                self.sock.sendto(datagram, sender)
            for endpoint, xaddrs, scopes in self.cameras:
                self.sock.sendto(probe_matches(message_id, endpoint, xaddrs, scopes), sender)
