// Opening an end-to-end clip in the page (templates/clips/player.html, #e2e-player): the
// server hands over ciphertext and the signed manifest (clips/e2e/router.py); this page
// makes every check `doorwarden verify` makes, with the member's own key from this device,
// and shows the video only once all of them passed.
//
// Order: the signature over the manifest first (nothing unsigned is trusted), then the
// chain link, then the member's key, then the sealed bytes chunk by chunk — each chunk's
// AES-GCM tag names the chunk that was altered — and last the hashes and sizes the camera
// signed, of the ciphertext and of the MP4. Only then is a video element made, its source a
// Blob of the verified MP4, so nothing unverified is ever played or offered for download.
//
// A clip the camera sealed as fragmented MP4 is played while it downloads instead
// (clipstream.js, after the same signature, chain and key checks): every chunk is still
// authenticated by its tag before it reaches the player, the status says "checking" until
// every chunk and both whole-clip hashes have matched, and only then "verified" and the
// download. The player says which way it plays: data-playback="stream" or "whole".

import * as P from "./primitives.js";
import { clipVideo, streamClip } from "./clipstream.js";
import { currentUserId, loadMembers, pinCamera } from "./keystore.js";

const GENESIS = "0".repeat(64);
const KEY_PAGE = "/account/keyring";

class HashMismatch extends P.E2EError {
  constructor(message) { super("HashMismatch", message); }
}
class NoKey extends P.E2EError {
  constructor(message) { super("NoKey", message); }
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new P.E2EError("Server", `the server answered ${response.status} for ${url}`);
  return response.json();
}

async function getBytes(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new P.E2EError("Server", `the server answered ${response.status} for ${url}`);
  return new Uint8Array(await response.arrayBuffer());
}

function parseSigned(text) {
  let signed;
  try { signed = JSON.parse(text); } catch { throw new P.Malformed("the signed manifest is not JSON"); }
  if (!signed || typeof signed !== "object" || typeof signed.signature !== "string" || !signed.manifest || typeof signed.manifest !== "object") {
    throw new P.Malformed("a signed manifest has a manifest and a signature");
  }
  return signed;
}

async function checkSignature(signed, devicePublic) {
  const signature = P.b64d(signed.signature, "signature", 64);
  if (!(await P.verifyEd25519(devicePublic, P.canonicalJson(signed.manifest), signature))) {
    throw new P.BadSignature("the camera's signature does not match this clip's manifest");
  }
}

// The manifest's `previous` against the clip before it: {intact, detail}.
async function checkChain(manifest, predecessor, devicePublic) {
  if (manifest.sequence === 0) {
    return manifest.previous === GENESIS
      ? { intact: true, detail: "the first clip of this camera" }
      : { intact: false, detail: "clip 0 does not start the chain" };
  }
  const before = manifest.sequence - 1;
  if (!predecessor) {
    return { intact: false, detail: `the chain has a gap: clip ${before} of this camera is not on the server` };
  }
  if (predecessor.deleted) {
    // Only its tombstone's hash is left; the server states it, nobody can re-check it.
    return predecessor.digest === manifest.previous
      ? { intact: true, detail: `clip ${before} was deleted; its recorded hash matches` }
      : { intact: false, detail: `the chain is broken: deleted clip ${before} does not match` };
  }
  const prior = parseSigned(predecessor.signed_manifest);
  try {
    await checkSignature(prior, devicePublic);
  } catch {
    return { intact: false, detail: `the chain is broken: clip ${before}'s signature does not match` };
  }
  const digest = P.hex(await P.sha256(P.canonicalJson(prior.manifest)));
  if (prior.manifest.sequence !== before || prior.manifest.device !== manifest.device || digest !== manifest.previous) {
    return { intact: false, detail: `the chain is broken: clip ${before} is not the one this clip follows` };
  }
  return { intact: true, detail: `follows clip ${before}` };
}

// The clip key, from the first of this device's keys (current first) it was wrapped to.
async function clipKey(manifest) {
  const userId = currentUserId();
  const members = userId ? await loadMembers(userId) : [];
  if (!members.length) throw new NoKey("this device has no end-to-end key for your account");
  for (const member of members) {
    const wrapped = manifest.recipients.find((r) => r && r.recipient === member.keyId);
    if (wrapped) return P.unwrapKey(wrapped, member.private, member.publicRaw);
  }
  throw new P.NotARecipient(`not encrypted to your key ${members[0].keyId.slice(0, 8)}`);
}

async function openThumbnail(url, manifest, key) {
  const sealed = await getBytes(url);
  if (sealed.length !== manifest.thumbnail_size || P.hex(await P.sha256(sealed)) !== manifest.thumbnail_sha256) {
    throw new HashMismatch("the thumbnail is not the one the camera signed");
  }
  const jpeg = await P.decryptAll(key, sealed);
  let bin = "";
  for (let i = 0; i < jpeg.length; i += 0x8000) bin += String.fromCharCode.apply(null, jpeg.subarray(i, i + 0x8000));
  return `data:image/jpeg;base64,${btoa(bin)}`; // img-src allows data:, not blob:
}

// The verified MP4 of a sealed clip (bytes, or an async iterable of pieces as they
// arrive): every chunk opened as soon as it is in (its tag names a tampered chunk), then
// sizes and hashes against the signed manifest. Pieces are kept in one buffer of the
// signed size for the ciphertext hash (WebCrypto has no incremental SHA-256); bytes
// already in memory are hashed while the chunks decrypt (both run off the main thread).
// The plaintext goes straight into one buffer of the signed size, hashed at the end.
export async function decryptVerified(sealed, manifest, key, progress = () => {}) {
  let cipher = sealed;
  let received = 0;
  let cipherDigest = null;
  if (sealed instanceof Uint8Array) {
    cipherDigest = P.sha256(sealed);
    cipherDigest.catch(() => {}); // awaited below; a refusal may come first
    received = sealed.length;
  } else {
    cipher = new Uint8Array(manifest.ciphertext_size);
    sealed = (async function* keep(pieces) {
      for await (const piece of pieces) {
        if (received + piece.length > cipher.length) throw new HashMismatch("the sealed clip is longer than the camera signed");
        cipher.set(piece, received);
        received += piece.length;
        yield piece;
      }
    })(sealed);
  }
  const mp4 = new Uint8Array(manifest.size);
  let done = 0;
  for await (const part of P.decryptStream(key, sealed)) {
    if (done + part.length > mp4.length) throw new HashMismatch("the decrypted video is longer than the camera recorded");
    mp4.set(part, done);
    done += part.length;
    progress(`Decrypting on this device… ${Math.floor((100 * done) / Math.max(1, manifest.size))} %`);
  }
  if (received !== manifest.ciphertext_size) throw new HashMismatch("the sealed clip is not the size the camera signed");
  if (P.hex(await (cipherDigest || P.sha256(cipher))) !== manifest.ciphertext_sha256) {
    throw new HashMismatch("the sealed clip is not the one the camera signed");
  }
  if (done !== manifest.size || P.hex(await P.sha256(mp4)) !== manifest.sha256) {
    throw new HashMismatch("the decrypted video is not the one the camera recorded");
  }
  return mp4;
}

// The sealed clip as it downloads: decryption keeps pace with the network.
async function openClip(facts, manifest, key, progress) {
  progress("Downloading the sealed clip…");
  const response = await fetch(facts.ciphertext_url, { credentials: "same-origin" });
  if (!response.ok) throw new P.E2EError("Server", `the server answered ${response.status} for the sealed clip`);
  const reader = response.body.getReader();
  async function* body() {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  }
  try {
    return new Blob([await decryptVerified(body(), manifest, key, progress)], { type: "video/mp4" });
  } finally {
    reader.cancel().catch(() => {}); // a refusal mid-way stops the download
  }
}

function refusal(exc) {
  switch (exc.code) {
    case "ChunkTampered":
      return `Refused: chunk ${exc.index} of this clip failed its check — it was altered after the camera sealed it. Nothing of it is shown.`;
    case "Truncated":
      return `Refused: this clip is cut short (${exc.message}). Nothing of it is shown.`;
    case "BadSignature":
      return "Refused: the camera's signature does not match this clip. It was altered after it was recorded; nothing of it is shown.";
    case "HashMismatch":
      return `Refused: ${exc.message}. Nothing of it is shown.`;
    case "NotARecipient":
      return "This clip was not encrypted to your key, so it cannot be opened here: it was recorded before your key was added to the household, or after your key was replaced. A member whose key it was encrypted to can still open it.";
    case "NoKey":
      return "This device has no end-to-end key for your account: set one up or unlock yours on your key page, then come back.";
    case "CameraKeyChanged":
      return "Refused: this camera now presents another signing key than the one this device first saw for it. A camera paired again appears as a new camera, so the server may have substituted the key; nothing is shown. Tell the household's owner.";
    case "KeystoreDamaged":
      return "This device's copy of your key does not open: unlock your key again on your key page.";
    case "Malformed":
      return `Refused: this clip's data is malformed (${exc.message}).`;
    default:
      return `This clip could not be opened: ${exc.message}`;
  }
}

async function run(root) {
  const status = root.querySelector("#e2e-status");
  const downloadRow = root.querySelector("#e2e-download-row");
  const download = root.querySelector("#e2e-download"); // absent without clip:download
  const look = { working: "callout", checking: "callout", verified: "alert alert-ok", warning: "alert notices", refused: "alert alert-error" };
  const say = (state, text) => {
    status.dataset.state = state;
    status.className = look[state];
    status.textContent = text;
  };
  try {
    say("working", "Checking the camera's signature…");
    const facts = await getJson(root.dataset.e2eClip);
    const signed = parseSigned(facts.signed_manifest);
    const manifest = signed.manifest;
    const devicePublic = P.b64d(facts.device.public_key, "device key", 32);
    const userId = currentUserId();
    if (userId) await pinCamera(userId, facts.device.id, facts.device.public_key);
    await checkSignature(signed, devicePublic);
    if (manifest.mode !== "e2e" || manifest.device !== facts.device.id || manifest.sequence !== facts.sequence || !Array.isArray(manifest.recipients)) {
      throw new P.Malformed("the signed manifest does not describe this clip");
    }
    const chain = await checkChain(manifest, facts.predecessor, devicePublic);
    say("working", "Opening the clip key with your key…");
    const key = await clipKey(manifest);
    let poster = null;
    let thumbNote = "";
    if (facts.thumbnail_url) {
      try {
        poster = await openThumbnail(facts.thumbnail_url, manifest, key);
      } catch {
        thumbNote = " Its thumbnail did not verify and is not shown.";
      }
    }
    const camera = facts.device.name;
    const checked = chain.intact ? "signature and chain verified" : `signature verified, but ${chain.detail}`;
    let player = null;
    const mount = (video) => {
      player = document.createElement("div");
      player.className = "player";
      player.append(video);
      status.after(player);
      root.dataset.playback = "stream";
      return () => player.remove();
    };
    say("working", "Downloading the sealed clip…");
    const streamed = await streamClip({
      facts, manifest, key, poster, mount,
      progress: (done, total) => say("checking", `Playing while checking: ${checked}, ${done} of ${total} chunks checked.`),
    });
    let url;
    if (streamed) {
      url = URL.createObjectURL(new Blob([streamed], { type: "video/mp4" }));
    } else {
      // Not fragmented, or no Media Source here: the whole clip, checked, then played.
      const blob = await openClip(facts, manifest, key, (text) => say("working", text));
      url = URL.createObjectURL(blob);
      const video = clipVideo(poster, "metadata");
      video.src = url;
      mount(video);
      root.dataset.playback = "whole";
    }
    if (download) {
      download.href = url;
      downloadRow.hidden = false;
    }
    if (chain.intact) {
      say("verified", `Verified: signed by ${camera}, chain intact (${chain.detail}). Decrypted on this device.${thumbNote}`);
    } else {
      say("warning", `Signed by ${camera} and decrypted on this device, but ${chain.detail}: a clip before it may have been removed or replaced.${thumbNote}`);
    }
  } catch (exc) {
    downloadRow.hidden = true;
    say("refused", refusal(exc));
    if (exc.code === "NoKey" || exc.code === "KeystoreDamaged") {
      const link = document.createElement("a");
      link.href = KEY_PAGE;
      link.textContent = "Go to your key page";
      status.append(" ", link);
    }
  }
}

// A picture for each sealed clip on the day's timeline: the same checks as the player's
// poster (signature, then the thumbnail's signed hash), one clip at a time. A clip that
// does not open here keeps its "Sealed picture" placeholder.
async function thumbnails(spots) {
  const userId = currentUserId();
  const members = userId ? await loadMembers(userId) : [];
  if (!members.length) return;
  for (const spot of spots) {
    try {
      const facts = await getJson(spot.dataset.e2eThumb);
      const signed = parseSigned(facts.signed_manifest);
      await pinCamera(userId, facts.device.id, facts.device.public_key);
      await checkSignature(signed, P.b64d(facts.device.public_key, "device key", 32));
      const manifest = signed.manifest;
      const mine = members.find((m) => manifest.recipients.some((r) => r && r.recipient === m.keyId));
      if (!mine || !facts.thumbnail_url) continue;
      const wrapped = manifest.recipients.find((r) => r.recipient === mine.keyId);
      const key = await P.unwrapKey(wrapped, mine.private, mine.publicRaw);
      const img = document.createElement("img");
      img.alt = "";
      img.width = 160;
      img.height = 90;
      img.src = await openThumbnail(facts.thumbnail_url, manifest, key);
      spot.replaceWith(img);
    } catch {
      // Left as the placeholder: the clip page says why when the clip is opened.
    }
  }
}

const root = document.getElementById("e2e-player");
if (root) run(root);
const spots = document.querySelectorAll("[data-e2e-thumb]");
if (spots.length) thumbnails(spots);
