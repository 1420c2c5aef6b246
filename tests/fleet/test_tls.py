"""Per-device client certificates over TLS (deploy/mosquitto/mosquitto.conf, option b): CN = device_id.

Mosquitto with ``require_certificate`` and ``use_identity_as_username`` and atsd's ACL file: a house
with its own certificate publishes under its id only, and the fleet service (certificate CN=fleet,
configured through ``[mqtt] tls``, ``ca_file``, ``cert_file``, ``key_file``) sees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from atsd import messages
from atsd.config import Config, FleetConfig, MqttConfig
from atsd.fleet.service import FleetService
from tests.conftest import MOSQUITTO, MosquittoBroker, free_port
from tests.fleet.conftest import ACL

OPENSSL = shutil.which("openssl")


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def _cert(d: Path, name: str, cn: str, *, server: bool = False) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt", cwd=d)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MosquittoBroker, Path]]:
    if MOSQUITTO is None or OPENSSL is None:
        pytest.skip("mosquitto and openssl are needed")
    d = tmp_path_factory.mktemp("mosquitto-tls")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    _openssl("req", "-new", "-x509", "-key", "ca.key", "-subj", "/CN=atsd test CA", "-days", "2", "-out", "ca.crt", cwd=d)
    _cert(d, "broker", "localhost", server=True)
    for who in ("house-1", "fleet"):
        _cert(d, who, who)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nuser {getpass.getuser()}\ncafile {d / 'ca.crt'}\n"
                    f"certfile {d / 'broker.crt'}\nkeyfile {d / 'broker.key'}\nrequire_certificate true\n"
                    f"use_identity_as_username true\nacl_file {ACL}\npersistence false\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n")
    broker = MosquittoBroker("127.0.0.1", port, conf, d / "mosquitto.log")
    broker.start()
    try:
        yield broker, d
    finally:
        broker.stop()


async def test_a_house_with_its_own_certificate_is_seen_only_under_its_id(tls_broker: tuple[MosquittoBroker, Path]):
    broker, d = tls_broker
    mqtt = MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, tls=True, ca_file=d / "ca.crt",
                      cert_file=d / "fleet.crt", key_file=d / "fleet.key", client_id="fleet-tls")
    cfg = dataclasses.replace(Config(), mqtt=mqtt, fleet=FleetConfig(port=0, token="t"))
    tls = aiomqtt.TLSParameters(ca_certs=str(d / "ca.crt"), certfile=str(d / "house-1.crt"),
                                keyfile=str(d / "house-1.key"))
    async with FleetService(cfg) as svc:
        assert await svc.link.wait_connected(5.0), svc.link.last_error
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="house-1-tls", tls_params=tls) as house:
            await house.publish("atsd/house-2/status", messages.dumps({"v": 1, "device_id": "house-2"}), qos=1)
            await house.publish("atsd/house-1/status", messages.dumps({"v": 1, "device_id": "house-1"}), qos=1)
            for _ in range(250):
                if "house-1" in svc.view.houses:
                    break
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert set(svc.view.houses) == {"house-1"}


async def test_a_client_without_a_certificate_is_refused(tls_broker: tuple[MosquittoBroker, Path]):
    broker, d = tls_broker
    tls = aiomqtt.TLSParameters(ca_certs=str(d / "ca.crt"))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="anon", tls_params=tls, timeout=1):
            pass
