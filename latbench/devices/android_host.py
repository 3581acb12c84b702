"""Host-side helpers of the Android path: the binary's ABI, the per-phone lock, listing phones.

- `elf_abi`: the Android ABI an ELF executable is built for (from its header), so a wrong
  benchmark_model (x86_64 host build, 32-bit ARM) is refused before it is pushed and run;
- `PhoneLock`: one latbench process per phone. Two processes timing on one phone share its
  cores and heat it together, so each measures the other; an advisory ``flock`` on a host file
  per serial (released by the kernel when the process dies) makes the second one stop with a
  clear error. Devices of one process share the lock (refcounted), so shards and helpers work;
- `list_phones`: serial, state, model, Android version and ABI of every attached phone, read with
  one ``adb shell getprop`` each, without pushing anything.
"""
from __future__ import annotations

import os
import re
import struct
import tempfile
import threading
from pathlib import Path

from ..errors import DeviceError

# ELF e_machine -> Android ABI (64-bit class unless noted)
_MACHINES = {(183, 2): "arm64-v8a", (40, 1): "armeabi-v7a", (62, 2): "x86_64", (3, 1): "x86",
             (243, 2): "riscv64"}


def elf_abi(path) -> str:
    """Android ABI of an ELF executable (arm64-v8a, armeabi-v7a, x86_64, x86, riscv64)."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise DeviceError(f"{path}: not an ELF executable (expected the android_aarch64 benchmark_model binary)")
    ei_class, ei_data = head[4], head[5]
    machine = struct.unpack("<H" if ei_data == 1 else ">H", head[18:20])[0]
    abi = _MACHINES.get((machine, ei_class))
    if abi is None:
        raise DeviceError(f"{path}: an ELF executable for machine {machine} (class {ei_class}), not an Android ABI")
    return abi


def check_abi(binary, phone_abis: list[str], serial: str) -> str:
    """The binary's ABI if the phone can run it, else DeviceError naming both."""
    abi = elf_abi(binary)
    if abi not in phone_abis:
        raise DeviceError(f"{binary}: benchmark_model is built for {abi}, but phone {serial} runs "
                          f"{', '.join(phone_abis) or 'an unknown ABI'}: get the android_"
                          f"{'aarch64' if 'arm64-v8a' in phone_abis else phone_abis[0] if phone_abis else '?'} build")
    return abi


# ---------------------------------------------------------------------- one process per phone
def lock_dir() -> Path:
    return Path(os.environ.get("LATBENCH_LOCK_DIR") or Path(tempfile.gettempdir()) / "latbench-locks")


class PhoneLock:
    """An exclusive, process-wide lock on one phone (by serial)."""

    _held: dict = {}  # lock file path -> [file object, refcount]
    _guard = threading.Lock()

    def __init__(self, serial: str):
        self.serial = serial
        self.acquired = False

    def path(self) -> Path:
        return lock_dir() / (re.sub(r"[^A-Za-z0-9._-]", "_", self.serial) + ".lock")

    def acquire(self) -> None:
        if self.acquired:
            return
        import fcntl

        path = self._path = self.path()
        with self._guard:
            held = self._held.get(path)
            if held is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = open(path, "a+")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    fh.seek(0)
                    owner = fh.read().strip() or "another process"
                    fh.close()
                    raise DeviceError(f"phone {self.serial} is in use by another latbench process ({owner}; lock "
                                      f"{path}): wait for it to finish, or use another phone") from None
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()}\n")
                fh.flush()
                held = self._held[path] = [fh, 0]
            held[1] += 1
        self.acquired = True

    def release(self) -> None:
        if not self.acquired:
            return
        path = self._path
        with self._guard:
            held = self._held.get(path)
            if held is not None:
                held[1] -= 1
                if held[1] <= 0:
                    held[0].close()  # closing the file drops the flock
                    del self._held[path]
        self.acquired = False


# ---------------------------------------------------------------------- listing phones
_PROP_RE = re.compile(r"^\[([^\]]+)\]:\s*\[(.*)\]\s*$")


def parse_getprop(text: str) -> dict:
    """``adb shell getprop`` output (``[ro.product.model]: [Pixel]`` lines) -> dict."""
    out = {}
    for line in text.splitlines():
        m = _PROP_RE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def phone_abis(props: dict) -> list[str]:
    """ABIs the phone runs: ro.product.cpu.abilist (arm64 phones list armeabi-v7a too), else .abi."""
    abis = [a for a in props.get("ro.product.cpu.abilist", "").split(",") if a]
    return abis or [a for a in (props.get("ro.product.cpu.abi"),) if a]


def list_phones(adb) -> list[dict]:
    """[{serial, state, model, device, android, sdk, abi}] of every phone adb lists; the props are
    read only from phones in the ``device`` state (the others cannot answer)."""
    from .adb import Adb, AdbError

    rows = []
    for serial, state in adb.list_devices():
        row = {"serial": serial, "state": state, "model": None, "device": None, "android": None, "sdk": None,
               "abi": None}
        if state == "device":
            try:
                props = parse_getprop(Adb(serial, adb_path=adb.adb_path, retries=1).shell(["getprop"], timeout=30).stdout)
            except AdbError as exc:
                row["error"] = str(exc)
            else:
                row.update(model=props.get("ro.product.model"), device=props.get("ro.product.device"),
                           android=props.get("ro.build.version.release"), sdk=props.get("ro.build.version.sdk"),
                           abi=props.get("ro.product.cpu.abi"))
        rows.append(row)
    return rows


def model_label(model: str | None) -> str:
    """A file-name-safe label of a phone model (``Pixel 4a`` -> ``pixel-4a``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (model or "").lower()).strip("-")
    return slug or "android"
