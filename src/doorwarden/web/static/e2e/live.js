// End-to-end live view in the page (docs/live-view.md, "End-to-end live view"): the twin of
// src/doorwarden/crypto/live.py. static/live.js imports this module when a stream's init
// carries an "e2e" block, and every payload goes through session.open() before MSE.
//
//   block   = {session, recipients, device, signature}: Ed25519 by the camera over the
//             canonical JSON of {session, recipients, device}
//   payload = counter (8, big-endian) | nonce (12) | AES-256-GCM ciphertext + tag,
//             aad = session | kind (0 init, 1 keyframe, 2 delta) | counter
//
// The relay strips the kind byte before the viewer (docs/live-view.md), so the page knows
// it from the order: the first payload after an init is the init segment, the next one a
// keyframe (a viewer always starts at one); after that a delta, or a keyframe when the delta
// does not open. A counter that does not rise, or a payload that opens under no allowed
// kind, stops the stream: it is never shown.

import {
  E2EError, aesGcm, b64d, canonicalJson, concat, keyId, unwrapKey, verifyEd25519,
} from "./primitives.js";
import { loadMembers, pinCamera } from "./keystore.js";

const INIT = 0, KEYFRAME = 1, DELTA = 2;
const HEAD = 20; // counter + nonce
const TAG = 16;

export class LiveLocked extends E2EError {
  // No key on this device opens the session: the member has to unlock (or create) theirs.
  constructor(message) { super("LiveLocked", message); }
}
export class LiveTampered extends E2EError {
  constructor(message) { super("LiveTampered", message); }
}

// What the page needs once per camera: its public key and the key page (…/live/key).
const deviceInfo = new Map();
function infoOf(keyUrl) {
  if (!deviceInfo.has(keyUrl)) {
    const request = fetch(keyUrl, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new E2EError("NoDeviceKey", "the camera's public key could not be read (" + response.status + ")");
        return response.json();
      });
    request.catch(() => deviceInfo.delete(keyUrl)); // try again on the next stream
    deviceInfo.set(keyUrl, request);
  }
  return deviceInfo.get(keyUrl);
}

export async function keyPage(keyUrl) {
  try {
    return (await infoOf(keyUrl)).key_page || null;
  } catch {
    return null;
  }
}

function checkBlock(block) {
  if (!block || typeof block !== "object" || Object.keys(block).sort().join() !== "device,recipients,session,signature") {
    throw new E2EError("Malformed", "the live session's e2e block is malformed");
  }
  if (!Array.isArray(block.recipients) || typeof block.device !== "string") {
    throw new E2EError("Malformed", "the live session's e2e block is malformed");
  }
}

// Verify the block against the camera's key, unwrap the session key with one of this
// member's keys (current first), and return the session's opener.
export async function openSession(block, { keyUrl, userId }) {
  checkBlock(block);
  const info = await infoOf(keyUrl);
  const devicePublic = b64d(info.public_key, "device key", 32);
  if (block.device !== info.device_id) {
    throw new E2EError("BadSignature", "this live session names another camera");
  }
  if (userId) await pinCamera(userId, info.device_id, info.public_key); // keystore.js: why
  const signed = canonicalJson({ session: block.session, recipients: block.recipients, device: block.device });
  if (!(await verifyEd25519(devicePublic, signed, b64d(block.signature, "signature", 64)))) {
    throw new E2EError("BadSignature", "this live session is not signed by the camera");
  }
  const session = b64d(block.session, "session", 16);
  const members = userId ? await loadMembers(userId) : [];
  let key = null;
  for (const member of members) {
    const wrapped = block.recipients.find((w) => w && w.recipient === member.keyId);
    if (!wrapped) continue;
    try {
      key = await unwrapKey(wrapped, member.private, member.publicRaw);
      break;
    } catch (err) {
      if (!(err instanceof E2EError)) throw err;
    }
  }
  if (!key) {
    throw new LiveLocked(members.length
      ? "none of your keys on this device is a recipient of this live session"
      : "your end-to-end key is not unlocked on this device");
  }
  return new LiveSession(session, await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]));
}

function aadOf(session, kind, counterBytes) {
  return concat(session, Uint8Array.of(kind), counterBytes);
}

class LiveSession {
  constructor(session, key) {
    this.session = session;
    this.gcm = aesGcm(key);
    this.last = -1n;
    this.opened = 0; // payloads opened: 0 is the init segment, 1 the first keyframe
  }

  // The plaintext of the next payload (an ArrayBuffer or Uint8Array), in arrival order.
  async open(data) {
    const payload = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (payload.length < HEAD + TAG) throw new LiveTampered("a live payload is cut short");
    const counterBytes = payload.subarray(0, 8);
    const counter = new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0);
    if (counter <= this.last) {
      throw new LiveTampered("live payload " + counter + " came after " + this.last + ": replayed or reordered");
    }
    const nonce = payload.subarray(8, HEAD);
    const body = payload.subarray(HEAD);
    const kinds = this.opened === 0 ? [INIT] : this.opened === 1 ? [KEYFRAME] : [DELTA, KEYFRAME];
    for (const kind of kinds) {
      try {
        const plain = await this.gcm.decrypt(nonce, body, aadOf(this.session, kind, counterBytes));
        this.last = counter;
        this.opened += 1;
        return plain;
      } catch {
        // the next allowed kind, or tampered
      }
    }
    throw new LiveTampered("live payload " + counter + " does not open with the session key");
  }
}
