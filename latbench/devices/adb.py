"""A thin, strict wrapper around the real ``adb`` command line.

Only documented adb invocations are used: ``adb devices``, ``adb -s SERIAL push LOCAL REMOTE``
and ``adb -s SERIAL shell CMD``. Every call runs with a timeout; transient transport failures
(device offline, closed connection, connection reset, protocol fault) are retried a few times;
the states a person must fix (adb missing, no device attached, device unauthorized, several devices
and no serial) raise AdbError, a DeviceError, with a one-line message saying what to do.

``adb shell`` returns the remote command's exit status since Android 7 (shell protocol v2); the
Pixel 1 runs Android 7.1 or later, so a non-zero status is trusted as the command's failure.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass

from ..errors import DeviceError

# stderr/stdout fragments that mean "try again": the USB link or the adb server hiccupped.
TRANSIENT = ("device offline", "error: closed", "connection reset", "protocol fault",
             "device still connecting", "device still authorizing", "broken pipe",
             "cannot connect to daemon", "daemon not running")


class AdbError(DeviceError):
    """An adb failure. `reason` is one of: missing-adb, no-device, unauthorized, offline,
    several-devices, timeout, transport (the link kept dropping), failed."""

    def __init__(self, message: str, reason: str = "failed"):
        super().__init__(message)
        self.reason = reason


@dataclass
class AdbResult:
    args: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout followed by stderr (benchmark_model logs to both)."""
        if self.stdout and self.stderr:
            return self.stdout + ("" if self.stdout.endswith("\n") else "\n") + self.stderr
        return self.stdout or self.stderr


def find_adb(adb_path: str | None = None) -> str | None:
    """Path of the adb executable: an explicit path, $ADB, or `adb` on PATH; None if none."""
    for candidate in (adb_path, os.environ.get("ADB")):
        if candidate:
            if os.path.sep in candidate:
                return candidate if os.access(candidate, os.X_OK) else None
            found = shutil.which(candidate)
            if found:
                return found
    return shutil.which("adb")


def parse_devices(text: str) -> list[tuple[str, str]]:
    """``adb devices`` (or ``-l``) output -> [(serial, state)], e.g. ("FA6AN0301234", "device")."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices") or line.startswith("adb "):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        serial, state = parts[0], parts[1]
        if state == "no" and len(parts) > 2 and parts[2] == "permissions":
            state = "no permissions"
        out.append((serial, state))
    return out


def _classify(text: str, serial: str | None) -> AdbError | None:
    """An AdbError for an adb message that needs a person, None for anything else."""
    low = text.lower()
    where = f"device {serial}" if serial else "the device"
    if "unauthorized" in low:
        return AdbError(f"{where} is unauthorized: unlock the phone and accept the 'Allow USB debugging' "
                        "prompt (or revoke USB debugging authorizations and reconnect)", "unauthorized")
    if "no devices/emulators found" in low:
        return AdbError("no Android device attached (adb devices lists none): connect the phone by USB "
                        "and enable USB debugging", "no-device")
    if serial and f"'{serial}' not found".lower() in low:
        return AdbError(f"device {serial} is not attached (adb devices does not list it)", "no-device")
    if "more than one device" in low:
        return AdbError("several Android devices attached: pass the serial of the one to use", "several-devices")
    if "no permissions" in low or "insufficient permissions" in low:
        return AdbError(f"no permission to open {where} over USB: fix the udev rules "
                        "(see developer.android.com/studio/run/device)", "no-device")
    return None


class Adb:
    """adb for one device (`serial`, else ``$ANDROID_SERIAL`` as adb itself reads it, else the only
    attached one)."""

    def __init__(self, serial: str | None = None, adb_path: str | None = None, timeout: float = 120.0,
                 retries: int = 3, retry_delay: float = 1.0):
        self.serial = serial or os.environ.get("ANDROID_SERIAL") or None
        self.adb_path = adb_path
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay

    # ------------------------------------------------------------------ plumbing
    def executable(self) -> str:
        path = find_adb(self.adb_path)
        if path is None:
            raise AdbError("adb not found on PATH: install Android SDK platform-tools "
                           "(developer.android.com/tools/releases/platform-tools) and put adb on PATH",
                           "missing-adb")
        return path

    def _call(self, args: list, timeout: float | None, check: bool, retries: int | None,
              serial: str | None) -> AdbResult:
        exe = self.executable()
        argv = [exe] + (["-s", serial] if serial else []) + [str(a) for a in args]
        timeout = self.timeout if timeout is None else timeout
        attempts = 1 + (self.retries if retries is None else retries)
        last = None
        for attempt in range(attempts):
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            except FileNotFoundError:
                raise AdbError(f"adb not found: {exe}", "missing-adb") from None
            except subprocess.TimeoutExpired:
                raise AdbError(f"adb {' '.join(shlex.quote(str(a)) for a in args)[:200]} timed out after "
                               f"{timeout:g} s", "timeout") from None
            res = AdbResult(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                            proc.stderr.decode("utf-8", "replace"))
            if res.returncode == 0:
                return res
            text = res.output
            err = _classify(text, serial)
            if err is not None:
                raise err
            low = text.lower()
            if any(t in low for t in TRANSIENT) and attempt + 1 < attempts:
                last = res
                time.sleep(self.retry_delay * (attempt + 1))
                continue
            if "device offline" in low:
                raise AdbError(f"device {serial or '(default)'} is offline: reconnect the USB cable", "offline")
            if not check:
                return res
            msg = " | ".join(l.strip() for l in text.strip().splitlines()[-4:]) or f"exit status {res.returncode}"
            raise AdbError(f"adb {' '.join(shlex.quote(str(a)) for a in args)[:200]} failed "
                           f"(exit {res.returncode}): {msg[:400]}", "failed")
        raise AdbError(f"adb kept failing: {last.output.strip()[:300] if last else ''}", "transport")

    # ------------------------------------------------------------------ host-level
    def list_devices(self) -> list[tuple[str, str]]:
        """[(serial, state)] from ``adb devices``; states: device, unauthorized, offline, ..."""
        res = self._call(["devices"], timeout=30, check=True, retries=None, serial=None)
        return parse_devices(res.stdout)

    devices = list_devices

    def resolve_serial(self) -> str:
        """The serial to talk to; checks that it is attached and usable, else raises AdbError."""
        devices = self.list_devices()
        if not devices:
            raise AdbError("no Android device attached (adb devices lists none): connect the phone by USB "
                           "and enable USB debugging", "no-device")
        if self.serial:
            states = [st for s, st in devices if s == self.serial]
            if not states:
                attached = ", ".join(s for s, _ in devices) or "none"
                raise AdbError(f"device {self.serial} is not attached (adb devices lists: {attached})",
                               "no-device")
            self._check_state(self.serial, states[0])
            return self.serial
        ready = [s for s, st in devices if st == "device"]
        if len(ready) > 1:
            raise AdbError(f"several Android devices attached ({', '.join(ready)}): pass the serial of "
                           "the one to use", "several-devices")
        if not ready:
            serial, state = devices[0]
            self._check_state(serial, state)
        self.serial = ready[0]
        return self.serial

    @staticmethod
    def _check_state(serial: str, state: str) -> None:
        if state == "device":
            return
        if state == "unauthorized":
            raise _classify("unauthorized", serial)
        if state == "offline":
            raise AdbError(f"device {serial} is offline: reconnect the USB cable", "offline")
        if state == "no permissions":
            raise _classify("no permissions", serial)
        raise AdbError(f"device {serial} is in state {state!r}, not ready for adb shell", "offline")

    # ------------------------------------------------------------------ device-level
    def run(self, args: list, timeout: float | None = None, check: bool = True,
            retries: int | None = None) -> AdbResult:
        """``adb -s SERIAL ARGS...``."""
        return self._call(list(args), timeout, check, retries, self.serial)

    def push(self, local, remote: str, timeout: float | None = None) -> AdbResult:
        local = os.fspath(local)
        if not os.path.exists(local):
            raise AdbError(f"cannot push {local}: no such file", "failed")
        return self.run(["push", local, remote], timeout=timeout)

    def shell(self, command, timeout: float | None = None, check: bool = True,
              retries: int | None = None) -> AdbResult:
        """``adb -s SERIAL shell COMMAND``; a list is quoted word by word for the device's sh."""
        if not isinstance(command, str):
            command = " ".join(shlex.quote(str(c)) for c in command)
        return self.run(["shell", command], timeout=timeout, check=check, retries=retries)

    def wait_for_device(self, timeout: float) -> None:
        """``adb -s SERIAL wait-for-device``, bounded: returns once the phone is back in the
        ``device`` state, raises AdbError (reason timeout) after `timeout` seconds."""
        self._call(["wait-for-device"], timeout=timeout, check=True, retries=0, serial=self.serial)

    def getprop(self, name: str) -> str:
        return self.shell(["getprop", name], timeout=30).stdout.strip()
