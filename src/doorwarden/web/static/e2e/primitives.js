// doorwarden end-to-end crypto in the browser: the same formats as src/doorwarden/crypto/
// (keys.py, canonical.py, wrap.py, stream.py), byte for byte, so what the camera seals in
// Python opens here and what this page wraps opens in `doorwarden decrypt`.
//
// WebCrypto first (X25519, Ed25519, AES-GCM, HKDF, SHA-256: keys can be non-extractable and
// the work runs natively); the audited noble bundle only where a browser's WebCrypto lacks
// X25519 or Ed25519 (Chromium < 133, older Safari). AES-GCM, HKDF and SHA-256 are in every
// WebCrypto, so clip decryption is always native.

import * as noble from "/static/vendor/noble/noble.js";

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

// ---- errors -------------------------------------------------------------------------------

export class E2EError extends Error {
  constructor(code, message) {
    super(message);
    this.name = code;
    this.code = code;
  }
}
export class NotARecipient extends E2EError {
  constructor(message) { super("NotARecipient", message); }
}
export class ChunkTampered extends E2EError {
  constructor(index) {
    super("ChunkTampered", `chunk ${index} failed authentication`);
    this.index = index;
  }
}
export class Truncated extends E2EError {
  constructor(message) { super("Truncated", message); }
}
export class Malformed extends E2EError {
  constructor(message) { super("Malformed", message); }
}
export class BadSignature extends E2EError {
  constructor(message) { super("BadSignature", message); }
}

// ---- bytes --------------------------------------------------------------------------------

export function b64e(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64d(text, what = "value", length = null) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new Malformed(`${what}: not base64url`);
  }
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (length !== null && out.length !== length) {
    throw new Malformed(`${what}: expected ${length} bytes, got ${out.length}`);
  }
  return out;
}

export function hex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

// crypto/keys.py key_id: the first 16 bytes of the public key's SHA-256, in hex.
export async function keyId(publicRaw) {
  return hex(await sha256(publicRaw)).slice(0, 32);
}

// ---- canonical JSON (crypto/canonical.py) ---------------------------------------------------

// Python sorts keys by code point; JS's default sort compares UTF-16 units, which differ
// when an astral character meets one in U+E000..U+FFFF.
function byCodePoint(a, b) {
  const x = Array.from(a), y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function canonicalText(value, path) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "string") {
    // Python cannot encode a lone surrogate to UTF-8 either: refuse rather than differ.
    if (LONE_SURROGATE.test(value)) throw new Malformed(`${path}: lone surrogate`);
    return JSON.stringify(value); // same escapes as json.dumps(ensure_ascii=False)
  }
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Malformed(`${path}: only integers are allowed`);
    if (Math.abs(value) > 2 ** 53) throw new Malformed(`${path}: integer out of range`);
    return String(value === 0 ? 0 : value); // -0 is 0, as Python reads it
  }
  if (Array.isArray(value)) {
    return "[" + value.map((v, i) => canonicalText(v, `${path}[${i}]`)).join(",") + "]";
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).sort(byCodePoint);
    return "{" + keys.map((k) => canonicalText(k, path) + ":" + canonicalText(value[k], `${path}.${k}`)).join(",") + "}";
  }
  throw new Malformed(`${path}: ${typeof value} is not allowed in canonical JSON`);
}

export function canonicalJson(value) {
  return utf8.encode(canonicalText(value, "$"));
}

// ---- curves: WebCrypto or noble -------------------------------------------------------------

// PKCS#8 for an X25519 private key is this fixed prefix then the 32 raw bytes (RFC 8410);
// WebCrypto imports X25519 private keys only as pkcs8 or jwk.
const X25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

let forced = false;
const support = {};

// Test and benchmark hook: use the noble fallback even where WebCrypto has the curve, so
// both paths run against the same Python vectors.
export function forceFallback(on) { forced = Boolean(on); }

async function probe(name) {
  try {
    if (name === "X25519") {
      await subtle.importKey("raw", new Uint8Array(32).fill(9), { name }, false, []);
    } else {
      await subtle.importKey("raw", new Uint8Array(32), { name }, false, ["verify"]);
    }
    return true;
  } catch {
    return false;
  }
}

async function native(name) {
  if (forced) return false;
  if (!(name in support)) support[name] = probe(name);
  return support[name];
}

export async function usingFallback() {
  return !(await native("X25519")) || !(await native("Ed25519"));
}

// A member's private key: a non-extractable WebCrypto key, or (fallback) the raw bytes in
// memory only — the keystore keeps those sealed under a non-extractable AES key at rest.
export class MemberPrivate {
  constructor(kind, handle) {
    this.kind = kind; // "webcrypto" | "noble"
    this.handle = handle;
  }
}

function checkKey(raw, what) {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) {
    throw new Malformed(`${what}: expected 32 bytes`);
  }
}

export async function importPrivate(privateRaw, { extractable = false } = {}) {
  checkKey(privateRaw, "private key");
  if (await native("X25519")) {
    const pkcs8 = concat(X25519_PKCS8_PREFIX, privateRaw);
    const key = await subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, extractable, ["deriveBits"]);
    return new MemberPrivate("webcrypto", key);
  }
  return new MemberPrivate("noble", privateRaw.slice());
}

export async function publicOf(privateRaw) {
  checkKey(privateRaw, "private key");
  if (await native("X25519")) {
    const key = await importPrivate(privateRaw, { extractable: true });
    const jwk = await subtle.exportKey("jwk", key.handle);
    return b64d(jwk.x, "public key", 32);
  }
  return noble.x25519.getPublicKey(privateRaw);
}

export async function generateX25519() {
  if (await native("X25519")) {
    const pair = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
    const publicRaw = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
    return { privateRaw: pkcs8.slice(pkcs8.length - 32), publicRaw };
  }
  const privateRaw = noble.x25519.utils.randomSecretKey();
  return { privateRaw, publicRaw: noble.x25519.getPublicKey(privateRaw) };
}

export async function x25519(member, peerPublicRaw) {
  checkKey(peerPublicRaw, "peer public key");
  if (!(member instanceof MemberPrivate)) throw new Malformed("not a member private key");
  try {
    if (member.kind === "webcrypto") {
      const peer = await subtle.importKey("raw", peerPublicRaw, { name: "X25519" }, false, []);
      return new Uint8Array(await subtle.deriveBits({ name: "X25519", public: peer }, member.handle, 256));
    }
    const shared = noble.x25519.getSharedSecret(member.handle, peerPublicRaw);
    if (shared.every((b) => b === 0)) throw new Error("all-zero shared secret");
    return shared;
  } catch (exc) {
    // A low-order peer key (all-zero secret): Python's cryptography refuses it too.
    throw new Malformed(`key agreement failed: ${exc.message}`);
  }
}

export async function verifyEd25519(publicRaw, data, signature) {
  checkKey(publicRaw, "device key");
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (await native("Ed25519")) {
    const key = await subtle.importKey("raw", publicRaw, { name: "Ed25519" }, false, ["verify"]);
    return subtle.verify({ name: "Ed25519" }, key, signature, data);
  }
  // Strict RFC 8032 (not ZIP-215), as OpenSSL in crypto/keys.py and BoringSSL verify.
  try {
    return noble.ed25519.verify(signature, data, publicRaw, { zip215: false });
  } catch {
    return false;
  }
}

// ---- symmetric: HKDF and AES-GCM (always native) -------------------------------------------

export async function hkdf(ikm, salt, info, length = 32) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

export function aesGcm(key) {
  const ready = key instanceof CryptoKey
    ? Promise.resolve(key)
    : subtle.importKey("raw", key, "AES-GCM", false, ["encrypt", "decrypt"]);
  const params = (iv, aad) => (aad ? { name: "AES-GCM", iv, additionalData: aad } : { name: "AES-GCM", iv });
  return {
    async encrypt(nonce, data, aad) {
      return new Uint8Array(await subtle.encrypt(params(nonce, aad), await ready, data));
    },
    async decrypt(nonce, data, aad) {
      return new Uint8Array(await subtle.decrypt(params(nonce, aad), await ready, data));
    },
  };
}

// ---- wrapping a key to a recipient (crypto/wrap.py) ----------------------------------------

const WRAP_INFO = utf8.encode("doorwarden/clip-key-wrap/v1");
const ZERO_NONCE = new Uint8Array(12);

async function kek(shared, ephemeral, recipient) {
  return hkdf(shared, concat(ephemeral, recipient), WRAP_INFO, 32);
}

export async function wrapKey(secret, recipientPublicRaw) {
  checkKey(secret, "secret");
  checkKey(recipientPublicRaw, "recipient public key");
  const eph = await generateX25519();
  const shared = await x25519(await importPrivate(eph.privateRaw), recipientPublicRaw);
  const aad = concat(eph.publicRaw, recipientPublicRaw);
  const wrapped = await aesGcm(await kek(shared, eph.publicRaw, recipientPublicRaw)).encrypt(ZERO_NONCE, secret, aad);
  return { recipient: await keyId(recipientPublicRaw), ephemeral: b64e(eph.publicRaw), wrapped: b64e(wrapped) };
}

export async function unwrapKey(wrappedJson, member, memberPublicRaw) {
  const w = wrappedJson;
  if (!w || typeof w !== "object" || Object.keys(w).sort().join() !== "ephemeral,recipient,wrapped") {
    throw new Malformed("a wrapped key needs exactly recipient, ephemeral, wrapped");
  }
  if (![w.recipient, w.ephemeral, w.wrapped].every((v) => typeof v === "string")) {
    throw new Malformed("wrapped key fields must be strings");
  }
  const ephemeral = b64d(w.ephemeral, "ephemeral key", 32);
  const ciphertext = b64d(w.wrapped, "wrapped key", 48);
  if (w.recipient !== (await keyId(memberPublicRaw))) {
    throw new NotARecipient("the clip key was not wrapped to this key");
  }
  const shared = await x25519(member, ephemeral);
  try {
    const aad = concat(ephemeral, memberPublicRaw);
    return await aesGcm(await kek(shared, ephemeral, memberPublicRaw)).decrypt(ZERO_NONCE, ciphertext, aad);
  } catch {
    throw new NotARecipient("the wrapped clip key does not open with this key");
  }
}

// ---- the DWS1 sealed stream (crypto/stream.py): in stream.js, part of this module's API ---

export { STREAM_AHEAD, chunkNonce, decryptAll, decryptStream, readHeader, sealedSpan } from "./stream.js";
