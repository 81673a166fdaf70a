// A member's end-to-end keys on this device: IndexedDB "doorwarden-e2e", per signed-in user
// (<body data-user-id>). For daily use the private key is a non-extractable WebCrypto key —
// script on this page can use it but never read it. Beside it, a copy of the raw key sealed
// under a non-extractable AES-GCM "device key" kept in the same database: the raw key can be
// recovered on this device only (to approve another device or write a backup), and a copy of
// the database alone, taken off the browser, does not give it (the device key's bytes are
// held by the browser, not in the records).
//
// Where WebCrypto lacks X25519 (the noble fallback), no non-extractable X25519 key exists:
// only the sealed copy is stored, and it is opened into memory when the keys are loaded.

import {
  E2EError, MemberPrivate, aesGcm, concat, importPrivate, keyId as keyIdOf, publicOf,
} from "./primitives.js";

const DB_NAME = "doorwarden-e2e";
const DB_VERSION = 2; // 2: the cameras' pinned keys
const utf8 = new TextEncoder();

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

let opened = null;
function db() {
  if (!opened) {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = (event) => {
      const d = req.result;
      if (event.oldVersion < 1) {
        d.createObjectStore("device", { keyPath: "userId" });
        const members = d.createObjectStore("members", { keyPath: ["userId", "keyId"] });
        members.createIndex("byUser", "userId");
      }
      if (event.oldVersion < 2) d.createObjectStore("cameras", { keyPath: ["userId", "deviceId"] });
    };
    opened = request(req);
  }
  return opened;
}

function checkUser(userId) {
  if (typeof userId !== "string" || !userId) throw new E2EError("NoUser", "no signed-in user");
}

// IndexedDB transactions commit as soon as they wait on anything but IndexedDB, so all the
// crypto happens before a transaction opens and each write is one transaction.
async function read(store, fn) {
  const tx = (await db()).transaction(store, "readonly");
  return fn(tx.objectStore(store));
}

async function deviceKey(userId) {
  const existing = await read("device", (s) => request(s.get(userId)));
  if (existing) return existing.key;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const tx = (await db()).transaction("device", "readwrite");
  // add, not put: if another tab made one meanwhile, this fails and we read theirs.
  tx.objectStore("device").add({ userId, key });
  try {
    await done(tx);
    return key;
  } catch {
    return (await read("device", (s) => request(s.get(userId)))).key;
  }
}

function sealAad(userId, keyId) {
  return utf8.encode(`doorwarden/keystore/v1|${userId}|${keyId}`);
}

async function membersOf(userId) {
  return read("members", (s) => request(s.index("byUser").getAll(userId)));
}

async function writeMembers(records) {
  const tx = (await db()).transaction("members", "readwrite");
  for (const r of records) tx.objectStore("members").put(r);
  await done(tx);
}

export async function saveMember(userId, privateRaw) {
  checkUser(userId);
  const publicRaw = await publicOf(privateRaw);
  const keyId = await keyIdOf(publicRaw);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await aesGcm(await deviceKey(userId)).encrypt(nonce, privateRaw, sealAad(userId, keyId));
  const member = await importPrivate(privateRaw);
  const now = Date.now();
  const updates = [];
  for (const r of await membersOf(userId)) {
    if (r.current && r.keyId !== keyId) updates.push({ ...r, current: false, retiredAt: now });
  }
  updates.push({
    userId, keyId, publicRaw, current: true, createdAt: now, retiredAt: null,
    sealed: concat(nonce, sealed),
    // The non-extractable key itself (structured-cloned by IndexedDB), or null (fallback).
    private: member.kind === "webcrypto" ? member.handle : null,
  });
  await writeMembers(updates);
  return { publicRaw, keyId };
}

async function unseal(userId, record) {
  const key = await deviceKey(userId);
  try {
    return await aesGcm(key).decrypt(record.sealed.subarray(0, 12), record.sealed.subarray(12), sealAad(userId, record.keyId));
  } catch {
    throw new E2EError("KeystoreDamaged", "this device's copy of the key does not open");
  }
}

export async function loadMembers(userId) {
  checkUser(userId);
  const records = await membersOf(userId);
  records.sort((a, b) => (b.current - a.current) || ((b.retiredAt || 0) - (a.retiredAt || 0)));
  const out = [];
  for (const r of records) {
    const priv = r.private
      ? new MemberPrivate("webcrypto", r.private)
      : await importPrivate(await unseal(userId, r));
    out.push({ private: priv, publicRaw: r.publicRaw, keyId: r.keyId, current: Boolean(r.current) });
  }
  return out;
}

export async function exportMemberRaw(userId, keyId) {
  checkUser(userId);
  const records = await membersOf(userId);
  const record = keyId ? records.find((r) => r.keyId === keyId) : records.find((r) => r.current);
  if (!record) throw new E2EError("NoKey", keyId ? `no key ${keyId} on this device` : "no key on this device");
  return unseal(userId, record);
}

export async function retireCurrent(userId) {
  checkUser(userId);
  const now = Date.now();
  const current = (await membersOf(userId)).filter((r) => r.current);
  await writeMembers(current.map((r) => ({ ...r, current: false, retiredAt: now })));
}

export async function forget(userId) {
  checkUser(userId);
  const records = await membersOf(userId);
  const tx = (await db()).transaction(["members", "device"], "readwrite");
  for (const r of records) tx.objectStore("members").delete([userId, r.keyId]);
  tx.objectStore("device").delete(userId);
  await done(tx);
}

// A camera's signing key, pinned on first use. The page learns a camera's public key from
// the server; a server that later swapped it for a key of its own could sign a forged clip
// or live stream and wrap it to the members. The first key this device saw for a camera is
// kept, and a different one for the same camera is refused: a camera paired again is a new
// device with a new id, so a changed key has no innocent cause.
export class CameraKeyChanged extends E2EError {
  constructor(deviceId) {
    super("CameraKeyChanged", `the camera ${deviceId} now presents another signing key than the one this device first saw for it`);
  }
}

export async function pinCamera(userId, deviceId, publicB64, retry = true) {
  checkUser(userId);
  const known = await read("cameras", (s) => request(s.get([userId, deviceId])));
  if (known) {
    if (known.publicKey !== publicB64) throw new CameraKeyChanged(deviceId);
    return "same";
  }
  const tx = (await db()).transaction("cameras", "readwrite");
  tx.objectStore("cameras").add({ userId, deviceId, publicKey: publicB64, pinnedAt: Date.now() });
  try {
    await done(tx);
    return "new";
  } catch (err) { // another tab pinned it meanwhile: theirs must agree
    if (!retry) throw err;
    return pinCamera(userId, deviceId, publicB64, false);
  }
}

// The signed-in user's id, from <body data-user-id> (web/templates/base.html).
export function currentUserId() {
  return document.body.dataset.userId || null;
}
