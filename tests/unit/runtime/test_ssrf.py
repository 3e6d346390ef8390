import ipaddress

import pytest

from services.runtime.ssrf import UnsafeUrlError, check_webhook_url, is_public_address


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
