"""SG-Ready through two relays on the Raspberry Pi's GPIO, with gpiozero.

SG-Ready (contacts 1:2): 1:0 state 1 blocked (OFF), 0:0 state 2 normal (NORMAL), 0:1 state 3
switch-on recommended (BOOST by default), 1:1 state 4 forced on (BOOST with ``boost_state = 4``).
ECO has no SG-Ready state. De-energised relays are NORMAL, so a crashed process, a reboot or a
removed board all fall back to the heat pump's own control, provided the relay board's polarity
matches the pin's boot pull (see ``docs/hardware.md`` and ``check-config``).

A change first releases the relays that must open, then energises the ones that must close, so
the contacts only ever pass through NORMAL on the way between two other states.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from atsd.config import Config
from atsd.core.modes import Mode
from atsd.devices.device import DeviceError, check_supported

log = logging.getLogger(__name__)

# BCM pins that the Pi's firmware pulls high at boot (0-8); 9-27 are pulled low.
BOOT_PULL_HIGH = frozenset(range(9))


def contacts(mode: Mode, boost_state: int) -> tuple[bool, bool]:
    """Relay 1 and relay 2 closed (True) for a mode."""
    if mode is Mode.OFF:
        return True, False
    if mode is Mode.NORMAL:
        return False, False
    if mode is Mode.BOOST:
        return (True, True) if boost_state == 4 else (False, True)
    raise DeviceError(f"SG-Ready has no state for {mode}")


class SgReadyRelays:
    def __init__(self, relay1_pin: int, relay2_pin: int, *, active_high: bool = True, boost_state: int = 3,
                 supported: tuple[Mode, ...] = (Mode.OFF, Mode.NORMAL, Mode.BOOST),
                 pin_factory: Any = None) -> None:
        self.name = f"sgready:GPIO{relay1_pin}+GPIO{relay2_pin}"
        self.pins = (relay1_pin, relay2_pin)
        self.active_high = active_high
        self.boost_state = boost_state
        self.supported = tuple(m for m in supported if m is not Mode.ECO)
        self.pin_factory = pin_factory
        self._relays: list[Any] = []
        self._current: Mode | None = None

    @property
    def current(self) -> Mode | None:
        return self._current

    async def __aenter__(self) -> Self:
        from gpiozero import DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError

        try:
            for pin in self.pins:
                self._relays.append(DigitalOutputDevice(pin, active_high=self.active_high, initial_value=False,
                                                        pin_factory=self.pin_factory))
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self._release()
            raise DeviceError(f"{self.name}: cannot claim the relay pins ({exc}); is another process using "
                              "them, and does this user have GPIO access (group gpio)?") from exc
        self._current = Mode.NORMAL
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def apply(self, mode: Mode) -> None:
        check_supported(self.name, mode, self.supported)
        if not self._relays:
            raise DeviceError(f"{self.name}: not open (use it as 'async with')")
        from gpiozero.exc import GPIOZeroError

        want = contacts(mode, self.boost_state)
        try:
            for relay, closed in zip(self._relays, want, strict=True):
                if not closed:
                    relay.off()
            for relay, closed in zip(self._relays, want, strict=True):
                if closed:
                    relay.on()
            got = tuple(bool(r.value) for r in self._relays)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self._current = None
            raise DeviceError(f"{self.name}: switching to {mode} failed ({exc})") from exc
        if got != want:
            self._current = None
            raise DeviceError(f"{self.name}: relays read back {got} after setting {mode} ({want})")
        self._current = mode

    async def close(self) -> None:
        if self._relays:
            try:
                await self.apply(Mode.NORMAL)
            except DeviceError as exc:
                log.error("%s: could not release the relays at exit: %s", self.name, exc)
        self._release()

    def _release(self) -> None:
        for r in self._relays:
            try:
                r.off()
                r.close()
            except Exception as exc:
                log.debug("closing relay failed: %s", exc)
        self._relays = []


def build_actuator(cfg: Config, links: object) -> SgReadyRelays:
    from atsd.devices.presets import actuator_modes

    a = cfg.actuator
    return SgReadyRelays(a.relay1_pin, a.relay2_pin, active_high=a.active_high, boost_state=a.boost_state,
                         supported=actuator_modes(cfg), pin_factory=getattr(links, "pin_factory", None))


def polarity_warnings(cfg: Config) -> list[str]:
    """Relay polarity vs each pin's boot pull: a mismatch energises a relay while the Pi boots."""
    a = cfg.actuator
    if a.kind != "sgready_gpio":
        return []
    out = []
    for label, pin in (("relay1_pin", a.relay1_pin), ("relay2_pin", a.relay2_pin)):
        if not 0 <= pin <= 27:
            out.append(f"[actuator] {label} = {pin} is not a header GPIO (BCM 0-27)")
            continue
        high = pin in BOOT_PULL_HIGH
        if a.active_high and high:
            out.append(f"[actuator] {label} = {pin} is pulled HIGH at boot, so an active-high relay board "
                       "closes its contact while the Pi boots (SG-Ready not NORMAL); use a pin in 9-27")
        if not a.active_high and not high:
            out.append(f"[actuator] {label} = {pin} is pulled LOW at boot, so an active-low relay board "
                       "(opto-isolated, JD-VCC) closes its contact while the Pi boots; use a pin in 0-8 "
                       "or an active-high board")
    if a.relay1_pin in (2, 3) or a.relay2_pin in (2, 3):
        out.append("[actuator] GPIO 2/3 carry I2C and have fixed pull-ups; avoid them for relays")
    return out
