"""One line for a failed libvirt connection: the transport, the endpoint, what failed."""

from __future__ import annotations

import pytest

from ulm.transport import describe, endpoint, transport

# Messages as libvirt 9 gives them on the lab (tests/lab/test_secure_lab.py makes them for real).
SSH_CHANGED = ("Cannot recv data: @@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!"
               "     @\n@@@@@@@@\nOffending ED25519 key in /etc/ssh/ssh_known_hosts:1\n"
               "Host key verification failed.: Connection reset by peer")


@pytest.mark.parametrize(("uri", "message", "what"), [
    ("qemu+ssh://root@10.0.0.1/system?keyfile=/k",
     "Cannot recv data: root@10.0.0.1: Permission denied (publickey).: Connection reset by peer",
     "the key was refused"),
    ("qemu+ssh://root@10.0.0.1/system", SSH_CHANGED, "the host key differs"),
    ("qemu+ssh://root@10.0.0.1/system",
     "Cannot recv data: No ED25519 host key is known for 10.0.0.1 and you have requested strict "
     "checking.\nHost key verification failed.: Connection reset by peer",
     "the host key is not in known_hosts"),
    ("qemu+tls://10.0.0.1/system?pkipath=/p",
     "authentication failed: Failed to verify peer's certificate", "is not trusted"),
    ("qemu+tls://10.0.0.1/system",
     "Unable to read TLS confirmation: Input/output error", "does not accept our client"),
    ("qemu+tls://10.0.0.1/system",
     "Cannot read CA certificate '/p/cacert.pem': No such file or directory",
     "missing or unreadable: /p/cacert.pem"),
    ("qemu+tls://10.0.0.1/system", "Our own certificate /p/clientcert.pem failed validation "
     "against /p/cacert.pem: The certificate hasn't got a known issuer.",
     "our client certificate is not signed"),
    ("qemu+tcp://10.0.0.1/system",
     "unable to connect to server at '10.0.0.1:16509': Connection refused",
     "libvirtd is not listening"),
])
def test_each_usual_failure_gets_its_meaning(uri: str, message: str, what: str) -> None:
    line = describe(uri, message)
    assert "\n" not in line and what in line
    assert line.startswith(f"cannot connect over {transport(uri)} to {endpoint(uri)}: ")
    assert "@@@" not in line  # ssh's banner stays out


def test_the_endpoint_has_no_query_and_no_password() -> None:
    assert endpoint("qemu+ssh://ulm@hv1:2222/system?keyfile=/etc/ulm/id") == \
        "qemu+ssh://ulm@hv1:2222"
    line = describe("qemu+tcp://admin:hunter22@hv1/system", "something odd\nhappened")
    assert "hunter22" not in line and line.endswith("something odd happened")


def test_plain_qemu_to_a_host_is_tls() -> None:
    assert transport("qemu://hv1/system") == "tls"
    assert transport("qemu:///system") == "local"
    assert transport("qemu+libssh2://hv1/system") == "libssh2"


def test_tls_uris_ask_for_a_tls_migration_stream() -> None:
    from ulm.drivers.libvirt import _tls
    assert _tls("qemu+tls://hv1/system") and _tls("qemu://hv1/system")
    assert not _tls("qemu+ssh://root@hv1/system") and not _tls("qemu+tcp://hv1/system")
    assert not _tls("qemu:///system")
