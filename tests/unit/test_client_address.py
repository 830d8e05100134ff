"""The client address behind trusted proxies: X-Forwarded-For is read only from a trusted
peer, from the right, and a value the client wrote itself is never taken for its own."""

from __future__ import annotations

import ipaddress
from unittest.mock import Mock

from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from recordings_service.client_address import client_address, same_origin

PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


def _request(peer: str, forwarded: str | None, **headers: str):  # type: ignore[no-untyped-def]
    transport = Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


def test_only_a_trusted_peer_is_believed() -> None:
    assert client_address(_request("203.0.113.5", "198.51.100.1"), PROXIES) == "203.0.113.5"
    assert client_address(_request("127.0.0.1", "198.51.100.1"), PROXIES) == "198.51.100.1"
    assert client_address(_request("127.0.0.1", None), PROXIES) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", "198.51.100.1"), ()) == "127.0.0.1"


def test_the_rightmost_untrusted_hop_is_the_client_not_what_it_wrote() -> None:
    # The client wrote 6.6.6.6 itself; the proxy appended the address it saw.
    assert client_address(_request("127.0.0.1", "6.6.6.6, 198.51.100.1"),
                          PROXIES) == "198.51.100.1"
    # Two proxies of ours: both skipped.
    assert client_address(_request("127.0.0.1", "198.51.100.1, 10.1.2.3"),
                          PROXIES) == "198.51.100.1"
    # A hop that is not an address: nothing beyond it is believed.
    assert client_address(_request("127.0.0.1", "198.51.100.1, junk"),
                          PROXIES) == "127.0.0.1"


@given(st.text(max_size=200))
def test_any_forwarded_header_gives_the_peer_or_an_address_it_names(value: str) -> None:
    try:
        request = _request("127.0.0.1", value)
    except ValueError:
        return  # not a header value aiohttp would have parsed
    found = client_address(request, PROXIES)
    assert found == "127.0.0.1" or (
        found is not None and found in {str(ipaddress.ip_address(h.strip()))
                                        for h in value.split(",") if _is_ip(h.strip())})


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_same_origin_needs_scheme_host_and_port() -> None:
    request = _request("127.0.0.1", None, Host="rec.example:8443")
    assert same_origin("http://rec.example:8443", request)
    assert not same_origin("https://rec.example:8443", request)
    assert not same_origin("http://rec.example:8444", request)
    assert not same_origin(None, request)
    behind_tls = _request("127.0.0.1", None, Host="rec.example", **{"X-Forwarded-Proto": "https"})
    assert same_origin("https://rec.example", behind_tls)
    assert not same_origin("http://rec.example", behind_tls)
