"""The browser's end-to-end crypto (static/e2e/primitives.js) against the Python that seals
clips (src/doorwarden/crypto/): the same bytes both ways, in chromium, through WebCrypto and
again through the noble fallback (forced), so both paths a browser may take are proven.

Every vector is made here in Python with the real modules; the page only gets bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from playwright.sync_api import Browser, Page

from doorwarden.crypto import stream
from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import ChunkError, MalformedError, TruncatedError
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d, b64e, key_id
from doorwarden.crypto.wrap import WrappedKey, unwrap_key, wrap_key
from tests.e2e.conftest import ConsoleLog, Server, open_page
from tests.sealed_clips import seal_clip

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("fallback", [False, True])]

# Runs `body` with P (primitives.js) loaded and the path chosen; `a` is the argument.
PRELUDE = """async (a) => {
  const P = await import('/static/e2e/primitives.js');
  P.forceFallback(a.fallback);
  const d = (s) => P.b64d(s);
  const attempt = async (f) => {
    try { await f(); return "ok"; } catch (e) { return e.code || String(e); }
  };
"""


@pytest.fixture
def crypto_page(browser: Browser, server: Server) -> Iterator[tuple[Page, ConsoleLog]]:
    console = ConsoleLog()
    page = open_page(browser, console)
    page.goto(f"{server.url}/login")  # any page of the app: same origin, same CSP
    try:
        yield page, console
    finally:
        page.context.close()
    assert console.errors == []


def run(page: Page, fallback: bool, body: str, arg: dict[str, Any] | None = None) -> Any:
    return page.evaluate(PRELUDE + body + "\n}", {"fallback": fallback, **(arg or {})})


def test_the_path_asked_for_is_the_path_taken(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    assert run(page, fallback, "return await P.usingFallback();") is fallback


def test_canonical_json_is_byte_identical(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    device = SigningKey.generate()
    sealed = seal_clip("dev-1", device, [RecipientKey.generate().public], 3, labels=("person",))
    manifest = canonical_json_of_sealed(sealed.manifest)
    tricky = {
        "é": 'café ☕ \u2028 \x00\x1f\x7f "quoted" back\\slash \n\t\b\f\r',
        "😀": [1, -5, 0, 2**53, -(2**53), True, False, None, [], {}],
        "\ue000": {"z": 1, "a": {"b": "x"}},  # after 😀 by code point, before it in UTF-16
        "a": "",
    }
    got = run(
        page,
        fallback,
        """
        const out = [P.hex(P.canonicalJson(a.manifest)), P.hex(P.canonicalJson(a.tricky))];
        for (const bad of [1.5, 2 ** 53 + 2, "\\ud800", {x: undefined}]) {
          out.push(await attempt(() => P.canonicalJson(bad)));
        }
        return out;
        """,
        {"manifest": manifest, "tricky": tricky},
    )
    assert got[0] == canonical_json(manifest).hex()
    assert got[1] == canonical_json(tricky).hex()
    assert got[2:] == ["Malformed"] * 4
    with pytest.raises(MalformedError):  # Python refuses the same values (the integer ones)
        canonical_json(2**53 + 2)


def canonical_json_of_sealed(manifest_bytes: bytes) -> dict[str, Any]:
    """The manifest object of a signed manifest, as the page receives it (parsed JSON)."""
    data: dict[str, Any] = json.loads(manifest_bytes)["manifest"]
    return data


def test_wrap_in_the_page_unwraps_in_python_and_back(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    member = RecipientKey.generate()
    secret = os.urandom(32)
    from_python = wrap_key(secret, member.public).to_json()
    got = run(
        page,
        fallback,
        """
        const member = await P.importPrivate(d(a.private));
        const pub = d(a.public);
        const other = await P.generateX25519();
        const flipped = d(a.wrapped.wrapped);
        flipped[3] ^= 1;
        const tampered = {...a.wrapped, wrapped: P.b64e(flipped)};
        const stranger = await P.importPrivate(other.privateRaw);
        return {
          fromPage: await P.wrapKey(d(a.secret), pub),
          unwrapped: P.b64e(await P.unwrapKey(a.wrapped, member, pub)),
          keyId: await P.keyId(pub),
          publicOf: P.b64e(await P.publicOf(d(a.private))),
          otherKey: await attempt(() => P.unwrapKey(a.wrapped, stranger, other.publicRaw)),
          tampered: await attempt(() => P.unwrapKey(tampered, member, pub)),
          malformed: await attempt(() => P.unwrapKey({recipient: "x"}, member, pub)),
        };
        """,
        {
            "private": b64e(member.private_bytes()),
            "public": b64e(member.public),
            "secret": b64e(secret),
            "wrapped": from_python,
        },
    )
    assert unwrap_key(WrappedKey.from_json(got["fromPage"]), member) == secret
    assert got["unwrapped"] == b64e(secret)
    assert got["keyId"] == key_id(member.public)
    assert got["publicOf"] == b64e(member.public)
    assert got["otherKey"] == "NotARecipient"
    assert got["tampered"] == "NotARecipient"
    assert got["malformed"] == "Malformed"


def test_a_key_made_in_the_page_opens_in_python(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    secret = os.urandom(32)
    got = run(
        page,
        fallback,
        """
        const k = await P.generateX25519();
        const w = await P.wrapKey(d(a.secret), k.publicRaw);
        return {private: P.b64e(k.privateRaw), public: P.b64e(k.publicRaw), wrapped: w};
        """,
        {"secret": b64e(secret)},
    )
    made = RecipientKey.from_bytes(bytes_of(got["private"]))
    assert b64e(made.public) == got["public"]
    assert unwrap_key(WrappedKey.from_json(got["wrapped"]), made) == secret


def bytes_of(text: str) -> bytes:
    return b64d(text, what="test value")


def python_outcome(key: bytes, sealed: bytes) -> str:
    """What crypto/stream.py says of `sealed`: the plaintext's hex, or the error's name."""
    try:
        return b"".join(stream.decrypt(key, [sealed])).hex()
    except ChunkError as exc:
        return f"ChunkTampered {str(exc).split()[1]}"
    except TruncatedError:
        return "Truncated"


DECRYPT = """
  const outcome = async (sealed, pieceSize) => {
    async function* pieces() {
      for (let i = 0; i < sealed.length; i += pieceSize) yield sealed.slice(i, i + pieceSize);
    }
    try {
      const parts = [];
      for await (const p of P.decryptStream(d(a.key), pieceSize ? pieces() : sealed)) parts.push(p);
      return P.hex(P.concat(...parts));
    } catch (e) {
      return e.code === "ChunkTampered" ? `ChunkTampered ${e.index}` : (e.code || String(e));
    }
  };
  const out = [];
  for (const s of a.cases) for (const piece of [0, 7, 1000]) out.push(await outcome(d(s), piece));
  return out;
"""


def test_sealed_streams_open_in_the_page_as_in_python(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    key, chunk = stream.new_key(), 256
    overhead = chunk + stream.TAG_BYTES

    def seal(data: bytes) -> bytes:
        return b"".join(stream.encrypt(key, [data], chunk_size=chunk))

    several = seal(os.urandom(1000))  # 3 full chunks and a short last one
    aligned = seal(os.urandom(4 * chunk))  # 4 full chunks and an empty last one
    flipped = bytearray(several)
    flipped[stream.HEADER_BYTES + 2 * overhead + 5] ^= 1  # inside chunk 2
    cases = [
        several,
        aligned,
        seal(b""),  # nothing but the empty last chunk
        bytes(flipped),
        aligned[: stream.HEADER_BYTES + 2 * overhead],  # cut at a chunk boundary
        several[:-40],  # cut inside the last chunk
        several[: stream.HEADER_BYTES + overhead + 10],  # cut leaving 10 bytes of a chunk
        several[:10],  # cut inside the header
        b"XXXX" + several[4:],  # not a sealed stream
    ]
    expected = [python_outcome(key, c) for c in cases[:7]] + ["Truncated", "Malformed"]
    # The vectors do test what they claim to (Python's own verdicts on them):
    assert expected[3] == "ChunkTampered 2"
    assert expected[4] == expected[6] == "Truncated"
    assert expected[5] == "ChunkTampered 3"
    got = run(page, fallback, DECRYPT, {"key": b64e(key), "cases": [b64e(c) for c in cases]})
    for case, want in enumerate(expected):
        assert got[case * 3 : case * 3 + 3] == [want] * 3, f"case {case}"


def test_signatures_verify_as_in_python(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    device, other = SigningKey.generate(), SigningKey.generate()
    data = canonical_json({"device": "d", "sequence": 1})
    signature = device.sign(data)
    got = run(
        page,
        fallback,
        """
        const v = (pub, data, sig) => P.verifyEd25519(d(pub), d(data), d(sig));
        const flipped = d(a.sig); flipped[10] ^= 1;
        const changed = d(a.data); changed[0] ^= 1;
        return [
          await v(a.pub, a.data, a.sig),
          await P.verifyEd25519(d(a.pub), changed, d(a.sig)),
          await P.verifyEd25519(d(a.pub), d(a.data), flipped),
          await v(a.other, a.data, a.sig),
          await P.verifyEd25519(d(a.pub), d(a.data), new Uint8Array(63)),
        ];
        """,
        {
            "pub": b64e(device.public),
            "other": b64e(other.public),
            "data": b64e(data),
            "sig": b64e(signature),
        },
    )
    assert got == [True, False, False, False, False]


KEYSTORE = """
  const K = await import('/static/e2e/keystore.js');
  const user = a.user, other = a.user + "-other";
  const raw = d(a.private);
  const saved = await K.saveMember(user, raw);
  const again = await K.saveMember(user, raw);  // the same key twice: still one record
  let members = await K.loadMembers(user);
  const first = {
    keyId: saved.keyId, again: again.keyId, count: members.length, current: members[0].current,
    kind: members[0].private.kind,
    extractable: members[0].private.kind === "webcrypto"
      ? members[0].private.handle.extractable : null,
    exported: P.b64e(await K.exportMemberRaw(user)),
    otherUser: (await K.loadMembers(other)).length,
  };
  // What IndexedDB holds: never the raw key in clear.
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open("doorwarden-e2e"); r.onsuccess = () => ok(r.result); r.onerror = fail;
  });
  const records = await new Promise((ok) => {
    const r = db.transaction("members").objectStore("members").getAll();
    r.onsuccess = () => ok(r.result);
  });
  db.close();
  const stored = records.filter((r) => r.userId === user)[0];
  first.sealedHasRaw = P.hex(stored.sealed).includes(P.hex(raw));
  first.storedPrivate = stored.private === null ? null : stored.private.extractable;
  // Rotation: a new key becomes current, the old one stays, retired, and still opens.
  const next = await P.generateX25519();
  await K.saveMember(user, next.privateRaw);
  members = await K.loadMembers(user);
  const wrapped = await P.wrapKey(new Uint8Array(32).fill(5), d(a.public));
  const old = members.find((m) => m.keyId === saved.keyId);
  first.rotated = {
    count: members.length, currentIsNew: members[0].current && members[0].keyId !== saved.keyId,
    oldRetired: old.current === false,
    oldOpens: P.hex(await P.unwrapKey(wrapped, old.private, old.publicRaw)),
    exportOld: P.b64e(await K.exportMemberRaw(user, saved.keyId)),
  };
  await K.retireCurrent(user);
  first.afterRetire = (await K.loadMembers(user)).filter((m) => m.current).length;
  await K.forget(user);
  first.afterForget = (await K.loadMembers(user)).length;
  first.noKey = await attempt(() => K.exportMemberRaw(user));
  first.noUser = await attempt(() => K.loadMembers(""));
  return first;
"""


def test_the_keystore_keeps_keys_per_user_never_in_clear(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    page, _ = crypto_page
    member = RecipientKey.generate()
    got = run(
        page,
        fallback,
        KEYSTORE,
        {
            "user": f"user-{os.urandom(4).hex()}",
            "private": b64e(member.private_bytes()),
            "public": b64e(member.public),
        },
    )
    assert got["keyId"] == got["again"] == key_id(member.public)
    assert got["count"] == 1 and got["current"] is True
    assert got["exported"] == b64e(member.private_bytes())
    assert got["otherUser"] == 0
    assert got["sealedHasRaw"] is False
    if fallback:  # no non-extractable X25519 key exists: only the sealed copy is kept
        assert got["kind"] == "noble" and got["storedPrivate"] is None
    else:
        assert got["kind"] == "webcrypto" and got["extractable"] is False
        assert got["storedPrivate"] is False
    assert got["rotated"] == {
        "count": 2,
        "currentIsNew": True,
        "oldRetired": True,
        "oldOpens": "05" * 32,
        "exportOld": b64e(member.private_bytes()),
    }
    assert got["afterRetire"] == 0
    assert got["afterForget"] == 0
    assert got["noKey"] == "NoKey"
    assert got["noUser"] == "NoUser"


def test_the_vendored_bundle_exports_its_contract_and_matches_python(
    crypto_page: tuple[Page, ConsoleLog], fallback: bool
) -> None:
    """static/vendor/noble/noble.js: exactly the six names, and the passphrase KDFs give
    what Python's gives (argon2-cffi, hashlib.scrypt) for the same inputs."""
    page, _ = crypto_page
    salt, secret = os.urandom(16), b"correct horse battery staple"
    got = run(
        page,
        fallback,
        """
        const N = await import('/static/vendor/noble/noble.js');
        const pw = new TextEncoder().encode(a.secret);
        return {
          names: Object.keys(N).sort(),
          argon2id: P.hex(N.argon2id(pw, d(a.salt), {t: 2, m: 256, p: 1, dkLen: 32})),
          scrypt: P.hex(N.scrypt(pw, d(a.salt), {N: 1024, r: 8, p: 1, dkLen: 32})),
          hkdf: P.hex(N.hkdf(N.sha256, d(a.salt), new Uint8Array(0), pw, 32)),
          nativeHkdf: P.hex(await P.hkdf(d(a.salt), new Uint8Array(0), pw, 32)),
        };
        """,
        {"salt": b64e(salt), "secret": secret.decode()},
    )
    assert got["names"] == ["argon2id", "ed25519", "hkdf", "scrypt", "sha256", "x25519"]
    argon = hash_secret_raw(secret, salt, time_cost=2, memory_cost=256, parallelism=1,
                            hash_len=32, type=Type.ID)  # fmt: skip
    assert got["argon2id"] == argon.hex()
    assert got["scrypt"] == hashlib.scrypt(secret, salt=salt, n=1024, r=8, p=1, dklen=32).hex()
    python_hkdf = HKDF(hashes.SHA256(), 32, salt=b"", info=secret).derive(salt)
    assert got["hkdf"] == got["nativeHkdf"] == python_hkdf.hex()
