"""A real headless Chromium for the HTML report test, driven over the DevTools protocol.

`chromium_binary` finds Debian's `chromium` or installs it with apt-get (as root);
`Browser` starts it with a fresh profile and no network chatter, opens one page
and speaks CDP over the page's websocket (`websocket-client`): evaluate, click at
an element's centre with real mouse events, and capture a PNG.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1500,1100", "--remote-debugging-port=0")


def chromium_binary() -> tuple[str | None, str]:
    """(path, "") when chromium is there or could be installed, else (None, why not)."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, "chromium is not installed and this user cannot apt-get install it (not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"]):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{' '.join(argv)} failed: {e}"
        if proc.returncode != 0:
            return None, f"{' '.join(argv)} failed: {(proc.stderr or proc.stdout).strip()[-400:]}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed chromium but no `chromium` is on PATH")


class Browser:
    """One headless Chromium with one page, closed (and its profile removed) on exit."""

    def __init__(self, binary: str, profile: Path, url: str) -> None:
        import websocket  # websocket-client, a test extra

        profile.mkdir(parents=True)
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace")[-1500:] if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"chromium did not open its DevTools port: {err}")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real left click (mouse pressed and released) at the centre of the element (of its first line, for
        a link that wraps: the centre of its whole box may lie between its lines)."""
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                        f" e.scrollIntoView({{block: 'center'}}); const r = e.getClientRects()[0];"
                        f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def png_ink(path: Path, region: tuple[float, float, float, float] = (0, 0, 1, 1)) -> float:
    """The share of pixels that are not white in `region` (left, top, right, bottom as fractions) of an 8-bit
    RGB or RGBA PNG, as Chromium writes them: a blank screenshot is 0."""
    import struct
    import zlib

    data = path.read_bytes()
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    if depth != 8 or colour not in (2, 6) or header[12]:
        raise ValueError(f"{path}: not an 8-bit non-interlaced RGB(A) PNG")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    left, top, right, bottom = (int(f * n) for f, n in zip(region, (width, height, width, height)))
    prev, ink, total = bytearray(stride), 0, 0
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG filter of this scanline
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        if top <= y < bottom:
            for x in range(left, right):
                total += 1
                ink += line[x * bpp:x * bpp + 3] != b"\xff\xff\xff"
    return ink / total if total else 0.0
