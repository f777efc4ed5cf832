"""The sounds real console calls play (`hamta-ivr prompts timing`): a listening call channel, and
each operation of ivr.prompts.timing placed on a fresh copy of the demo registry.

The prompt code sits below the flows and the registry (it never imports them): this is where
the two meet, so the timing is measured on the flows as they run, not on a copy of their script.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.app import Ivr
from ivr.call.api import CallerHungUp, DeviceName, Sound
from ivr.call.console import ConsoleCall, scripted_keys
from ivr.prompts import timing
from ivr.prompts.devices import device_sound
from ivr.prompts.persian import DIGITS_FOLDER, number_files
from ivr.prompts.timing import OPERATIONS, CallSounds, Heard, Operation
from ivr.registry.demo import DEMO_RETURNABLE, DemoTemplate, demo_template
from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.service import Registry


@dataclass
class ListeningCall(ConsoleCall):
    """A console call that records every sound it plays, as the FastAGI channel would play it
    from `sounds`: a device name only when its sound was built (else the flow reads the IMEI's
    ending), the pauses between digit groups. Hangs up when the IVR next waits for
    a key after the last scripted one: everything the script leads to has been said by then."""

    sounds: Path = Path()
    record: CallSounds = field(default_factory=CallSounds)

    def _hear(self, name: str) -> None:
        self.record.heard.append(Heard(name))

    async def stream(self, sound: Sound, escape: str) -> str | None:
        self._hear(sound.file)
        return await super().stream(sound, escape)

    async def say_number(self, value: int, escape: str) -> str | None:
        for file in number_files(value):
            self._hear(file)
        return await super().say_number(value, escape)

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        for digit in digits:
            self._hear(f"{DIGITS_FOLDER}/{digit}")
        return await super().say_digit_string(digits, escape, secret=secret)

    async def pause(self, seconds: float, escape: str) -> str | None:
        if self.record.heard:  # silence after the last sound (between digit groups)
            last = self.record.heard[-1]
            self.record.heard[-1] = Heard(last.name, last.gap_after + seconds)
        return await super().pause(seconds, escape)

    async def device_name(self, name: DeviceName, escape: str) -> tuple[bool, str | None]:
        file = device_sound(name.brand, name.model, self.sounds)
        if file is None:
            return False, None
        self._hear(file)
        return await super().device_name(name, escape)

    async def wait_digit(self, timeout: float) -> str | None:
        waits, said = self.record.waits, len(self.record.heard)
        if not waits or waits[-1] != said:
            waits.append(said)
        if not self.keys:
            self.hung_up = True
            raise CallerHungUp
        key = await super().wait_digit(timeout)
        if not self.keys:
            self.record.last_key_at = len(self.record.heard)
        return key


def add_one_device_subscriber(registry: Registry) -> None:
    """The subscriber with one device that timing's key scripts call as (timing.ONE_DEVICE)."""
    registry.portal.add_subscriber(timing.ONE_DEVICE, password=timing.ONE_DEVICE_PIN)
    brand, model = timing.ONE_DEVICE_NAME
    registry.portal.add_device(timing.ONE_DEVICE_IMEI, owner=timing.ONE_DEVICE, brand=brand,
                               model=model, status="registered",
                               activation_code=timing.ONE_DEVICE_CODE)


async def listen(operation: Operation, template: DemoTemplate, sounds: Path) -> CallSounds:
    """Place `operation`'s call on a fresh copy of the demo registry; the sounds it played."""
    copy = template.path.with_name(f"call-{id(operation)}.db")
    shutil.copyfile(template.path, copy)
    try:
        registry = Registry.open(f"sqlite:///{copy}", pepper=template.pepper,
                                 hash_params=TEST_ONLY_FAST)
        # SMS configured, every code the one the key scripts type (timing.SMS_CODE)
        registry.sim_codes.sender = lambda to, template, params: True
        registry.sim_codes.draw = lambda: timing.SMS_CODE
        numbers = _demo_numbers(registry)
        async with Ivr(registry) as ivr:
            if operation.before is not None:  # the other side's half, not measured
                caller, keys = operation.before
                await ivr.handle(ListeningCall(  # from the subscriber's own mobile line
                    caller_id=caller, caller_trusted=True,
                    keys=scripted_keys(keys.format(**numbers)),
                    out=io.StringIO(), sounds=sounds))
            call = ListeningCall(caller_id=operation.caller, caller_trusted=True,
                                 keys=scripted_keys(operation.keys.format(**numbers)),
                                 out=io.StringIO(), sounds=sounds)
            await ivr.handle(call)
        return call.record
    finally:
        copy.unlink(missing_ok=True)


def _demo_numbers(registry: Registry) -> dict[str, str]:
    """The demo's random numbers a key script may name (`{sale}`: the reference of the sale the
    demo's returner can return, ivr/registry/demo.py)."""
    [sale] = registry.portal.transfers(imei=DEMO_RETURNABLE)
    return {"sale": sale.reference}


def listen_all(sounds: Path, operations: Sequence[Operation] | None = None,
               ) -> dict[str, CallSounds]:
    """The sounds each operation's call plays (by operation name), one fresh registry each."""
    chosen = OPERATIONS if operations is None else operations
    with demo_template(add_one_device_subscriber) as template:
        return {op.name: asyncio.run(listen(op, template, sounds)) for op in chosen}
