// The "End-to-end key" page (templates/keyring/keyring.html): make the member key in this
// browser, back it up under a passkey's PRF output or a passphrase (Argon2id), unlock it
// on a new device, hand it to another device by code, and replace it after a device is
// lost. The private key leaves this page only wrapped: to a passkey-derived key, to a
// passphrase-derived key, or to another device's ephemeral X25519 key. The record formats
// are crypto/member_backup.py's; the wrapping is crypto/wrap.py's (primitives.js).

import {
  E2EError, aesGcm, b64d, b64e, concat, generateX25519, hkdf, importPrivate, keyId,
  publicOf, unwrapKey, wrapKey,
} from "./primitives.js";
import * as keystore from "./keystore.js";

const root = document.getElementById("keyring");
const userId = keystore.currentUserId() || root.dataset.userId;
const API = "/api/v1/account/keyring";
const utf8 = new TextEncoder();
const BACKUP_INFO = "doorwarden/member-key-backup/v1";
// Argon2id parameters for new backups (RFC 9106's second recommendation, one lane since
// the browser computes on one thread). docs/e2e.md has the time measured in chromium.
export const ARGON2 = { m_kib: 64 * 1024, t: 3, p: 1 };
const MIN_PASSPHRASE = 12;
// The device code: 12 digits from PBKDF2-SHA256 over the new device's public key and its
// request id. The server knows both, so it knows the code; to slip its own key in it would
// need another key whose code is the same, and each try costs this many iterations (about
// 10^12 tries at 100 000 iterations each, in the request's 10 minutes).
const CODE_ITERATIONS = 100000;
const CODE_DIGITS = 12;
const POLL_MS = 1500;

const $ = (id) => document.getElementById(id);

// ---- talking to the server ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `The server answered ${status}.`);
    this.status = status;
    this.code = err.code;
    this.details = err.details;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = root.dataset.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// ---- what the page shows ------------------------------------------------------------------

function say(text) {
  $("keyring-status").textContent = text;
  $("keyring-error").hidden = true;
}

function fail(text) {
  const box = $("keyring-error");
  box.textContent = text;
  box.hidden = false;
}

function show(state) {
  root.dataset.state = state;
  for (const [id, name] of [["key-create", "create"], ["key-unlock", "unlock"], ["key-ready", "ready"]]) {
    $(id).hidden = name !== state;
  }
}

async function busy(button, work) {
  if (button) button.disabled = true;
  try {
    await work();
  } catch (exc) {
    fail(exc instanceof E2EError || exc instanceof ApiError ? exc.message : `Something went wrong: ${exc.message}`);
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- backups (crypto/member_backup.py) ----------------------------------------------------

class WrongSecret extends Error {}

function backupAad(id) {
  return utf8.encode(`${BACKUP_INFO}|${id}|${userId}`);
}

async function backupKey(ikm) {
  return hkdf(ikm, new Uint8Array(0), utf8.encode(BACKUP_INFO), 32);
}

async function sealBackup(privateRaw, ikm, method, kdf) {
  const id = await keyId(await publicOf(privateRaw));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await aesGcm(await backupKey(ikm)).encrypt(nonce, privateRaw, backupAad(id));
  return { key_id: id, method, kdf, nonce: b64e(nonce), ciphertext: b64e(sealed) };
}

// The AES-GCM tag is the only check: a wrong passphrase and a damaged record read the same.
async function openBackup(record, ikm) {
  let raw;
  try {
    raw = await aesGcm(await backupKey(ikm)).decrypt(
      b64d(record.nonce, "nonce", 12), b64d(record.ciphertext, "ciphertext", 48), backupAad(record.key_id));
  } catch {
    throw new WrongSecret("wrong");
  }
  if ((await keyId(await publicOf(raw))) !== record.key_id) throw new WrongSecret("wrong");
  return raw;
}

function argon2(passphrase, kdf) {
  const password = utf8.encode(passphrase.normalize("NFKC"));
  const salt = b64d(kdf.salt, "salt", 16);
  return new Promise((resolve, reject) => {
    const worker = new Worker("/static/e2e/kdf-worker.js", { type: "module" });
    worker.onmessage = (event) => {
      worker.terminate();
      if (!event.data.ok) return reject(new Error(event.data.error));
      root.dataset.kdfMs = String(Math.round(event.data.ms));
      resolve(new Uint8Array(event.data.out));
    };
    worker.onerror = (event) => { worker.terminate(); reject(new Error(event.message || "the KDF worker failed")); };
    worker.postMessage({ password, salt, t: kdf.t, m: kdf.m_kib, p: kdf.p });
  });
}

// ---- the key on this device ---------------------------------------------------------------

function serverKeyId() {
  return root.dataset.serverKeyId || "";
}

async function currentLocal() {
  const members = await keystore.loadMembers(userId);
  return members.find((m) => m.current) || null;
}

// A key arrived (backup or another device): keep its earlier keys too, wrapped to it on the
// server (the retired-keys blob), so clips from before a rotation stay readable here.
async function install(privateRaw) {
  const publicRaw = await publicOf(privateRaw);
  const id = await keyId(publicRaw);
  if (id !== serverKeyId()) {
    throw new E2EError("OldKey", "This opens an earlier key of yours, not your current one.");
  }
  let retired = [];
  try {
    const blob = await api("GET", `${API}/retired`);
    if (blob.sealed_under === id) retired = blob.keys;
  } catch (exc) {
    if (!(exc instanceof ApiError && exc.status === 404)) throw exc;
  }
  const member = await importPrivate(privateRaw);
  // Oldest first: each save makes that key current and retires the one before, so the
  // current key, saved last, ends up current.
  for (const r of retired.slice().reverse()) {
    const raw = await unwrapKey(r.wrapped, member, publicRaw);
    await keystore.saveMember(userId, raw);
  }
  await keystore.saveMember(userId, privateRaw);
  await ready(`Your key is unlocked on this device${retired.length ? `, with ${retired.length} earlier key(s)` : ""}.`);
}

async function ready(message) {
  const current = await currentLocal();
  $("ready-key-id").textContent = current ? current.keyId : "";
  show("ready");
  say(message);
}

// ---- create -------------------------------------------------------------------------------

async function createKey() {
  say("Making your key…");
  const { privateRaw, publicRaw } = await generateX25519();
  await keystore.saveMember(userId, privateRaw);
  const registered = await api("PUT", "/api/v1/account/e2e-key", { public_key: b64e(publicRaw) });
  root.dataset.serverKeyId = registered.key_id;
  await ready("Your key is made and stays in this browser. Now back it up: with a passkey, or a passphrase.");
}

// ---- passphrase ---------------------------------------------------------------------------

async function backupWithPassphrase(event) {
  event.preventDefault();
  const passphrase = $("backup-passphrase").value;
  if (passphrase.length < MIN_PASSPHRASE) return fail(`Use at least ${MIN_PASSPHRASE} characters.`);
  if (passphrase !== $("backup-passphrase-again").value) return fail("The two passphrases differ.");
  say("Deriving a key from your passphrase (a few seconds)…");
  const raw = await keystore.exportMemberRaw(userId);
  const kdf = { name: "argon2id", ...ARGON2, salt: b64e(crypto.getRandomValues(new Uint8Array(16))) };
  const record = await sealBackup(raw, await argon2(passphrase, kdf), "passphrase", kdf);
  await api("PUT", `${API}/backups/passphrase`, record);
  $("backup-passphrase").value = $("backup-passphrase-again").value = "";
  say("Backed up with your passphrase. Keep it somewhere safe: nobody can reset it.");
}

async function unlockWithPassphrase(event) {
  event.preventDefault();
  const passphrase = $("unlock-passphrase").value;
  const record = await api("POST", `${API}/backups/passphrase/fetch`);
  say("Checking your passphrase (a few seconds)…");
  let raw;
  try {
    raw = await openBackup(record, await argon2(passphrase, record.kdf));
  } catch (exc) {
    if (exc instanceof WrongSecret) { say(""); return fail("Wrong passphrase."); }
    throw exc;
  }
  $("unlock-passphrase").value = "";
  await install(raw);
}

// ---- passkey (WebAuthn PRF) ---------------------------------------------------------------

function prfMissing() {
  $("prf-missing").hidden = false;
  fail("This passkey or browser has no PRF support: use a recovery passphrase instead.");
}

// What the server gets: the ceremony's signed parts, never the PRF output.
function forServer(credential) {
  const json = credential.toJSON();
  json.clientExtensionResults = {};
  return json;
}

async function prfOf(credential, salt) {
  const results = credential.getClientExtensionResults().prf;
  if (results && results.results && results.results.first) return new Uint8Array(results.results.first);
  if (!results || results.enabled === false) return null;
  // Some authenticators enable PRF at creation but evaluate it only in an assertion.
  const assertion = await navigator.credentials.get({
    publicKey: {
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      allowCredentials: [{ type: "public-key", id: credential.rawId }],
      userVerification: "required",
      extensions: { prf: { eval: { first: salt } } },
    },
  });
  const again = assertion.getClientExtensionResults().prf;
  return again && again.results && again.results.first ? new Uint8Array(again.results.first) : null;
}

async function backupWithPasskey() {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) return prfMissing();
  const started = await api("POST", `${API}/passkeys/registration-options`);
  const salt = b64d(started.prf_salts[""], "salt", 32);
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(started.options);
  publicKey.extensions = { prf: { eval: { first: salt } } };
  say("Follow your browser's passkey prompt…");
  const credential = await navigator.credentials.create({ publicKey });
  const prf = await prfOf(credential, salt);
  if (!prf) return prfMissing();
  const raw = await keystore.exportMemberRaw(userId);
  const kdf = { name: "webauthn-prf", credential_id: b64e(new Uint8Array(credential.rawId)), salt: started.prf_salts[""] };
  const backup = await sealBackup(raw, prf, "passkey", kdf);
  await api("POST", `${API}/passkeys`, { ceremony_id: started.ceremony_id, credential: forServer(credential), backup });
  say("Backed up with your passkey.");
}

async function unlockWithPasskey() {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) return prfMissing();
  const started = await api("POST", `${API}/passkeys/authentication-options`);
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(started.options);
  const evalByCredential = {};
  for (const [id, salt] of Object.entries(started.prf_salts)) evalByCredential[id] = { first: b64d(salt, "salt", 32) };
  publicKey.extensions = { prf: { evalByCredential } };
  say("Follow your browser's passkey prompt…");
  const assertion = await navigator.credentials.get({ publicKey });
  const results = assertion.getClientExtensionResults().prf;
  if (!results || !results.results || !results.results.first) return prfMissing();
  const record = await api("POST", `${API}/passkeys/unlock`, { ceremony_id: started.ceremony_id, credential: forServer(assertion) });
  let raw;
  try {
    raw = await openBackup(record, new Uint8Array(results.results.first));
  } catch (exc) {
    if (exc instanceof WrongSecret) return fail("This passkey does not open your backup.");
    throw exc;
  }
  await install(raw);
}

// ---- adding a device by code --------------------------------------------------------------

export async function deviceCode(publicRaw, requestId) {
  const base = await crypto.subtle.importKey("raw", publicRaw, "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: utf8.encode(`doorwarden/device-code/v1|${requestId}`), iterations: CODE_ITERATIONS },
    base, 64));
  let n = 0n;
  for (const b of bits) n = (n << 8n) | BigInt(b);
  const digits = (n % 10n ** BigInt(CODE_DIGITS)).toString().padStart(CODE_DIGITS, "0");
  return digits.match(/.{4}/g).join(" ");
}

async function requestFromAnotherDevice() {
  const ephemeral = await generateX25519();
  const request = await api("POST", `${API}/device-requests`, { public_key: b64e(ephemeral.publicRaw) });
  $("device-code").textContent = await deviceCode(ephemeral.publicRaw, request.id);
  $("device-code-box").hidden = false;
  say("Type this code on a device that has your key (End-to-end key, Approve another device).");
  const member = await importPrivate(ephemeral.privateRaw);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const state = await api("GET", `${API}/device-requests/${request.id}`);
    if (state.status === "pending") continue;
    if (state.status !== "approved") {
      $("device-code-box").hidden = true;
      return fail(state.status === "expired" ? "The code expired. Show a new one." : "This request was cancelled. Show a new code.");
    }
    const collected = await api("POST", `${API}/device-requests/${request.id}/collect`);
    const raw = await unwrapKey(collected.wrapped, member, ephemeral.publicRaw);
    $("device-code-box").hidden = true;
    return install(raw);
  }
}

async function approveDevice(event) {
  event.preventDefault();
  const typed = $("approve-code").value.replace(/\D/g, "");
  if (typed.length !== CODE_DIGITS) return fail(`The code has ${CODE_DIGITS} digits.`);
  say("Looking for the device that shows this code…");
  const waiting = await api("GET", `${API}/device-requests`);
  const matches = [];
  for (const request of waiting) {
    // Recomputed here from the public key the server handed over: a key of the server's
    // own would give another code, and is refused.
    const code = (await deviceCode(b64d(request.public_key, "public key", 32), request.id)).replace(/\D/g, "");
    if (code === typed) matches.push(request);
  }
  if (matches.length !== 1) return fail("No waiting device shows this code. Check it, or show a new code there.");
  const [request] = matches;
  const current = await currentLocal();
  const raw = await keystore.exportMemberRaw(userId, current.keyId);
  const wrapped = await wrapKey(raw, b64d(request.public_key, "public key", 32));
  await api("POST", `${API}/device-requests/${request.id}/approval`, { key_id: current.keyId, wrapped });
  $("approve-code").value = "";
  say("Approved: the other device now has your key.");
}

// ---- rotation ("I lost a device") ---------------------------------------------------------

async function rotateKey() {
  const members = await keystore.loadMembers(userId);
  const previous = members.find((m) => m.current);
  if (!previous || previous.keyId !== serverKeyId()) return fail("Unlock your current key on this device first.");
  say("Making your new key…");
  const fresh = await generateX25519();
  const retired = [];
  for (const m of members) {
    const raw = await keystore.exportMemberRaw(userId, m.keyId);
    retired.push({ key_id: m.keyId, public_key: b64e(m.publicRaw), wrapped: await wrapKey(raw, fresh.publicRaw) });
  }
  const previousRaw = await keystore.exportMemberRaw(userId, previous.keyId);
  await keystore.saveMember(userId, fresh.privateRaw);
  try {
    await api("POST", `${API}/rotation`, { previous_key_id: previous.keyId, public_key: b64e(fresh.publicRaw), retired });
  } catch (exc) {
    await keystore.saveMember(userId, previousRaw); // the server kept the old key: so do we
    throw exc;
  }
  root.dataset.serverKeyId = await keyId(fresh.publicRaw);
  await ready("Your key was replaced; earlier keys are kept. Your backups were of the old key: make a new one now.");
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  if (!userId) return fail("Sign in first.");
  const current = await currentLocal();
  if (current && current.keyId === serverKeyId()) return ready("Your key is on this device.");
  if (serverKeyId()) {
    show("unlock");
    return say(current ? "This device has an earlier key of yours: unlock your current one." : "Unlock your key on this device.");
  }
  show("create");
  say("You have no end-to-end key yet.");
}

$("create-key").addEventListener("click", (e) => busy(e.currentTarget, createKey));
$("backup-passphrase-form").addEventListener("submit", (e) => busy(e.submitter, () => backupWithPassphrase(e)));
$("backup-passkey").addEventListener("click", (e) => busy(e.currentTarget, backupWithPasskey));
$("unlock-passphrase-form").addEventListener("submit", (e) => busy(e.submitter, () => unlockWithPassphrase(e)));
$("unlock-passkey").addEventListener("click", (e) => busy(e.currentTarget, unlockWithPasskey));
$("request-device").addEventListener("click", (e) => busy(e.currentTarget, requestFromAnotherDevice));
$("approve-form").addEventListener("submit", (e) => busy(e.submitter, () => approveDevice(e)));
$("rotate-key").addEventListener("click", (e) => busy(e.currentTarget, rotateKey));
busy(null, start);
