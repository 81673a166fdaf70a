"""In-browser decryption of an end-to-end clip next to raw WebCrypto AES-GCM, in chromium.

A clip (default 32 MiB of plaintext) is sealed here with crypto/stream.py as a camera
seals it (256 KiB chunks); the page fetches the sealed bytes once, then times, in the
same page on the same bytes:

- decryptStream (static/e2e/primitives.js): header parsing, nonces, chunk splitting, the
  tag of every chunk checked, chunks handed out in order;
- the baseline, raw WebCrypto AES-GCM: `crypto.subtle.decrypt` of the same chunks with
  nonces precomputed outside the timing, with as many chunks in flight as decryptStream
  keeps (STREAM_AHEAD, 4): the strongest comparable baseline; for scale also one at a
  time and all at once;
- what the clip page does in all (static/e2e/clips.js decryptVerified): decryptStream
  plus SHA-256 of the ciphertext and of the plaintext, checked against the signed
  manifest's figures (made here), as `doorwarden verify` checks them; once from bytes in
  memory and once fed in 64 KiB pieces, as the page gets them from a download.

Rounds alternate (each starting at another case) and the fastest of each is reported
(noise on a shared machine only ever adds time). Target: decryptStream >= 0.8 of the raw
baseline.

The pages are served by a plain HTTP server on 127.0.0.1 (a secure context, so WebCrypto
is there) from src/doorwarden/web/static: the module is the one the app serves.

Run: .venv/bin/python bench/bench_e2e_web.py [--mib 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from doorwarden.crypto import stream
from doorwarden.crypto.keys import b64e

STATIC = Path(__file__).resolve().parent.parent / "src" / "doorwarden" / "web" / "static"
CHUNK = stream.DEFAULT_CHUNK  # 256 KiB, as the agent seals
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]

PAGE = """async ({key, rounds, manifest}) => {
  const P = await import("/static/e2e/primitives.js");
  const C = await import("/static/e2e/clips.js");
  const sealed = new Uint8Array(await (await fetch("/sealed.dws")).arrayBuffer());
  const keyRaw = P.b64d(key);
  const header = sealed.slice(0, 16);
  const chunkSize = P.readHeader(header);
  const spans = [];
  for (let at = 16, i = 0; at < sealed.length; at += chunkSize + 16, i++) {
    const end = Math.min(at + chunkSize + 16, sealed.length);
    const last = end === sealed.length && end - at < chunkSize + 16;
    spans.push({data: sealed.subarray(at, end), iv: P.chunkNonce(header, i, last)});
  }
  const ck = await crypto.subtle.importKey("raw", keyRaw, "AES-GCM", false, ["decrypt"]);
  const one = (s) =>
    crypto.subtle.decrypt({name: "AES-GCM", iv: s.iv, additionalData: header}, ck, s.data);
  let plainBytes = 0;
  const cases = {
    async rawAhead() {  // the same pipelining depth as decryptStream
      const q = [];
      for (const s of spans) { q.push(one(s)); if (q.length >= P.STREAM_AHEAD) await q.shift(); }
      await Promise.all(q);
    },
    async rawSerial() { for (const s of spans) await one(s); },
    async rawAll() { await Promise.all(spans.map(one)); },
    async decryptStream() {
      let n = 0;
      for await (const part of P.decryptStream(keyRaw, sealed)) n += part.length;
      plainBytes = n;
    },
    async clipPage() { await C.decryptVerified(sealed, manifest, keyRaw); },
    async clipPageStreamed() {  // as from a fetch body: 64 KiB pieces, copied as they come
      async function* pieces() {
        for (let i = 0; i < sealed.length; i += 65536) yield sealed.slice(i, i + 65536);
      }
      await C.decryptVerified(pieces(), manifest, keyRaw);
    },
  };
  const best = {};
  for (const name in cases) { await cases[name](); best[name] = Infinity; }  // warm up
  const names = Object.keys(cases);
  for (let r = 0; r < rounds; r++) {
    // Each round starts at another case, so none always runs after the one whose garbage
    // the collector is still clearing.
    for (const name of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
      const t0 = performance.now();
      await cases[name]();
      best[name] = Math.min(best[name], performance.now() - t0);
    }
  }
  return {best, plainBytes, chunks: spans.length, agent: navigator.userAgent};
}"""


@contextlib.contextmanager
def served(sealed: bytes) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "static").symlink_to(STATIC)
        (root / "sealed.dws").write_bytes(sealed)
        (root / "index.html").write_text("<!doctype html><title>bench</title>")
        handler = functools.partial(_QuietHandler, directory=str(root))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = stream.new_key()
    plain = os.urandom(args.mib * 1024 * 1024)
    sealed = b"".join(stream.encrypt(key, [plain], chunk_size=CHUNK))
    with served(sealed) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{url}/index.html")
            facts = {
                "size": len(plain),
                "sha256": hashlib.sha256(plain).hexdigest(),
                "ciphertext_size": len(sealed),
                "ciphertext_sha256": hashlib.sha256(sealed).hexdigest(),
            }
            result = page.evaluate(
                PAGE, {"key": b64e(key), "rounds": args.rounds, "manifest": facts}
            )
        finally:
            browser.close()
    assert result["plainBytes"] == len(plain), "decryptStream lost bytes"
    best: dict[str, float] = result["best"]  # milliseconds
    mib = args.mib

    def rate(name: str) -> float:
        return mib / (best[name] / 1000)

    base = rate("rawAhead")
    browser_name = result["agent"].split(") ")[-1]
    print(f"{browser_name}; {mib} MiB sealed in {result['chunks']} chunks of 256 KiB")
    print(f"{'case (in the page)':<52} {'MiB/s':>8} {'vs raw':>8}")
    rows = [
        ("raw WebCrypto AES-GCM, 4 in flight (baseline)", "rawAhead"),
        ("raw WebCrypto AES-GCM, one at a time", "rawSerial"),
        ("raw WebCrypto AES-GCM, all at once", "rawAll"),
        ("decryptStream (primitives.js)", "decryptStream"),
        ("clip page: decryptStream + 2x SHA-256", "clipPage"),
        ("clip page, fed in 64 KiB pieces (as downloaded)", "clipPageStreamed"),
    ]
    for label, name in rows:
        print(f"{label:<52} {rate(name):>8.0f} {rate(name) / base:>8.2f}")


if __name__ == "__main__":
    main()
