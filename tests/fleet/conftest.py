"""A Mosquitto with atsd's own ACL file (deploy/mosquitto/acl) and a password per house, on a free port.

``acl_broker`` (session scope) yields an :class:`AclBroker`: ``host``, ``port``, ``password(user)``
and ``restart()``. Users: ``fleet`` (the fleet service) and ``house-1`` .. ``house-12``.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MOSQUITTO, MosquittoBroker, free_port

REPO = Path(__file__).resolve().parents[2]
ACL = REPO / "deploy" / "mosquitto" / "acl"
USERS = ("fleet", "observer", *(f"house-{i}" for i in range(1, 13)))


@dataclass
class AclBroker:
    broker: MosquittoBroker

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @staticmethod
    def password(user: str) -> str:
        return f"pw-{user}"

    def restart(self) -> None:
        self.broker.restart()


@pytest.fixture(scope="session")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    passwd_tool = shutil.which("mosquitto_passwd")
    if MOSQUITTO is None or passwd_tool is None:
        pytest.skip("mosquitto and mosquitto_passwd are not installed (apt-get install mosquitto)")
    d = tmp_path_factory.mktemp("mosquitto-acl")
    passwd = d / "passwd"
    passwd.write_text("".join(f"{u}:{AclBroker.password(u)}\n" for u in USERS))
    subprocess.run([passwd_tool, "-U", str(passwd)], check=True, capture_output=True)  # hash them all in place
    acl = d / "acl"
    shutil.copy(ACL, acl)
    port = free_port()
    conf = d / "mosquitto.conf"
    # user: mosquitto started as root drops to "mosquitto", who could not read the pytest temp dir.
    conf.write_text(f"listener {port} 127.0.0.1\nuser {getpass.getuser()}\nallow_anonymous false\n"
                    f"password_file {passwd}\nacl_file {acl}\npersistence false\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n")
    broker = MosquittoBroker("127.0.0.1", port, conf, d / "mosquitto.log")
    broker.start()
    try:
        yield AclBroker(broker)
    finally:
        broker.stop()
