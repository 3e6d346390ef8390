import ipaddress

import pytest

from services.runtime.ssrf import (
    Resolver,
    UnsafeUrlError,
    check_webhook_destination,
    check_webhook_url,
    is_public_address,
    resolve_public,
    system_resolver,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tenderwatch",
        "https://hooks.example.com:8443/in?token=abc#frag",
        "https://203.0.114.7/in",
        "https://8.8.8.8/",
        "https://[2001:4860:4860::8888]/in",
        "HTTPS://Hooks.Example.COM/",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "must use https, not 'file'"),
        ("gopher://example.com/", "must use https, not 'gopher'"),
        ("hooks.example.com/in", "must use https, not 'no scheme'"),
        ("http://hooks.example.com/in", "must use https, not 'http' (plain http is accepted only in development)"),
        ("https://user:secret@hooks.example.com/", "contains a user name or password"),
        ("https://user@hooks.example.com/", "contains a user name or password"),
        ("https:///path-only", "has no host name"),
        ("https://127.0.0.1/", "host 127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/", "host 10.1.2.3 is a private address"),
        ("https://192.168.1.10:8080/", "host 192.168.1.10 is a private address"),
        ("https://172.16.0.1/", "host 172.16.0.1 is a private address"),
        ("https://100.64.0.1/", "host 100.64.0.1 is not globally reachable"),
        ("https://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is the cloud metadata service"),
        ("https://169.254.1.1/", "host 169.254.1.1 is a link-local address"),
        ("https://0.0.0.0/", "host 0.0.0.0 is unspecified"),
        ("https://224.0.0.1/", "host 224.0.0.1 is a multicast address"),
        ("https://240.0.0.1/", "host 240.0.0.1 is a private address"),
        ("https://[::1]/", "host ::1 is a loopback address"),
        ("https://[::]/", "host :: is unspecified"),
        ("https://[fd00::1]/", "host fd00::1 is a private address"),
        ("https://[fe80::1]/", "host fe80::1 is a link-local address"),
        ("https://[fe80::1%25eth0]/", "host fe80::1%eth0 is a scoped (zone) address"),
        ("https://[ff02::1]/", "host ff02::1 is a multicast address"),
        ("https://[::ffff:127.0.0.1]/", "host ::ffff:127.0.0.1 is an IPv6 form of 127.0.0.1, a loopback address"),
        ("https://[::ffff:169.254.169.254]/", "an IPv6 form of 169.254.169.254, the cloud metadata service"),
        ("https://[64:ff9b::a00:1]/", "an IPv6 form of 10.0.0.1, a private address"),
        ("https://[2002:7f00:1::]/", "an IPv6 form of 127.0.0.1, a loopback address"),
        ("https://2130706433/", "is an IPv4 address in shorthand or numeric form"),
        ("https://0x7f000001/", "is an IPv4 address in shorthand or numeric form"),
        ("https://127.1/", "is an IPv4 address in shorthand or numeric form"),
        ("https://0177.0.0.1/", "is an IPv4 address in shorthand or numeric form"),
        ("https://localhost:8000/", "is the local machine"),
        ("https://api.localhost./", "is the local machine"),
        ("https://hooks.example.com:99999/", "cannot be parsed"),
        ("https://hooks.example.com/a b", "contains spaces or control characters"),
        ("https://hooks.example.com/\r\nHost: evil", "contains spaces or control characters"),
        ("https://example.com/" + "a" * 2100, "at most 2048 are accepted"),
    ],
)
def test_unsafe_urls_are_refused_in_production(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrlError) as error:
        check_webhook_url(url, allow_private=False)
    assert message in str(error.value)


def test_plain_http_and_ipv4_mapped_loopback_from_the_brief() -> None:
    with pytest.raises(UnsafeUrlError, match="must use https"):
        check_webhook_url("http://[::ffff:127.0.0.1]/", allow_private=False)
    check_webhook_url("http://[::ffff:127.0.0.1]/", allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost:9000/", "https://10.0.0.5/", "http://[::1]:8000/"]
)
def test_development_allows_http_and_private_targets(url: str) -> None:
    check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://2130706433/", "shorthand or numeric form"),  # numeric forms are never a host name
        ("file:///etc/passwd", "must use https, not 'file'"),
        ("http://user:pw@localhost/", "contains a user name or password"),
    ],
)
def test_development_still_refuses_what_is_never_a_webhook(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrlError) as error:
        check_webhook_url(url, allow_private=True)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("203.0.114.7", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("192.0.2.1", False),  # documentation range
        ("198.18.0.1", False),  # benchmarking range
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:a00:1::", False),
        ("2001:db8::1", False),
        ("fe80::1%eth0", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "the cloud metadata service"),
        ("169.254.0.1", "a link-local address"),
        ("100.64.0.1", "not globally reachable"),
        ("100.127.255.254", "not globally reachable"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "a private address"),  # "this network"
        ("224.0.0.251", "a multicast address"),
        ("240.0.0.1", "a private address"),  # reserved class E
        ("255.255.255.255", "a private address"),
        ("192.0.0.8", "an IETF protocol assignment"),
        ("192.88.99.1", "a 6to4 relay anycast address"),
        ("::1", "a loopback address"),
        ("::", "unspecified"),
        ("fc00::1", "a private address"),  # unique local
        ("fd12:3456:789a::1", "a private address"),
        ("fe80::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"),
        ("::ffff:10.1.2.3", "an IPv6 form of 10.1.2.3, a private address"),
        ("::ffff:169.254.169.254", "an IPv6 form of 169.254.169.254, the cloud metadata service"),
        ("::ffff:100.64.0.1", "an IPv6 form of 100.64.0.1, not globally reachable"),
        ("2002:c0a8:101::1", "an IPv6 form of 192.168.1.1, a private address"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, the cloud metadata service"),  # NAT64
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a private address"),  # Teredo
        ("::7f00:1", "a reserved address"),  # IPv4-compatible, deprecated
        ("2001:db8::1", "a private address"),  # documentation
    ],
)
async def test_every_address_class_that_is_not_public_is_refused_with_its_reason(address: str, reason: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(UnsafeUrlError) as error:
        await resolve_public("hooks.example.com", 443, allow_private=False, resolver=_answers(address))
    assert str(error.value) == (
        f"hooks.example.com resolves to {ipaddress.ip_address(address)}, {reason}: "
        "only public addresses receive webhooks"
    )


def _answers(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 443)
        return list(addresses)

    return resolve


async def test_public_answers_come_back_in_order_without_repeats() -> None:
    resolver = _answers("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34", "::ffff:8.8.8.8")
    addresses = await resolve_public("hooks.example.com", 443, allow_private=False, resolver=resolver)
    assert [str(a) for a in addresses] == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:808:808"]


@pytest.mark.parametrize(
    "answers",
    [
        ("93.184.216.34", "127.0.0.1"),
        ("10.0.0.7", "93.184.216.34"),
        ("2606:2800:220:1:248:1893:25c8:1946", "fd00::1"),
        ("93.184.216.34", "::ffff:192.168.0.1"),
    ],
)
async def test_a_name_answering_public_and_private_addresses_is_refused_not_filtered(answers: tuple[str, str]) -> None:
    with pytest.raises(UnsafeUrlError, match="only public addresses receive webhooks"):
        await resolve_public("hooks.example.com", 443, allow_private=False, resolver=_answers(*answers))


async def test_private_answers_are_accepted_only_when_private_targets_are_allowed() -> None:
    resolver = _answers("127.0.0.1", "::1")
    addresses = await resolve_public("hooks.example.com", 443, allow_private=True, resolver=resolver)
    assert [str(a) for a in addresses] == ["127.0.0.1", "::1"]


async def test_a_name_without_address_is_an_os_error() -> None:
    with pytest.raises(OSError, match="resolves to no address"):
        await resolve_public("hooks.example.com", 443, allow_private=False, resolver=_answers())


async def test_registration_checks_the_url_then_every_address_of_its_host() -> None:
    ok = await check_webhook_destination(
        "https://hooks.example.com/in", allow_private=False, resolver=_answers("93.184.216.34")
    )
    assert [str(a) for a in ok] == ["93.184.216.34"]
    with pytest.raises(UnsafeUrlError, match=r"resolves to 169\.254\.169\.254, the cloud metadata service"):
        await check_webhook_destination(
            "https://hooks.example.com/in", allow_private=False, resolver=_answers("169.254.169.254")
        )
    with pytest.raises(UnsafeUrlError, match="must use https"):
        await check_webhook_destination(
            "http://hooks.example.com/in", allow_private=False, resolver=_answers("93.184.216.34")
        )


async def test_registration_in_development_does_not_resolve() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("resolved although private targets are allowed")

    assert await check_webhook_destination("http://localhost:9000/", allow_private=True, resolver=never) == []


async def test_the_system_resolver_answers_for_an_address_literal() -> None:
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
