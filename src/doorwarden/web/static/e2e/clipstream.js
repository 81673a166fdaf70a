// Playing an end-to-end clip while it downloads (docs/e2e.md, "Playing a clip"): the
// sealed chunks fetched by HTTP Range, each opened by its AES-GCM tag as it arrives, the
// fragmented MP4 inside them streamed into Media Source Extensions, seeks served by
// fetching from the chunk that holds the fragment sought. clips.js runs the signature, the
// chain and the key checks first; this module is given the clip key only after them.
//
// The camera seals fragmented MP4 (agent/recording/fragment.py):
//     ftyp | moov (empty, mvex) | sidx | moof mdat | moof mdat | ... | mfra
// The sidx gives every fragment's byte size and duration: a time maps to a fragment, the
// fragment's plaintext offset to the sealed chunk holding it (offset / chunk size), that
// chunk to its byte span in the sealed stream (stream.js sealedSpan). A clip laid out any
// other way (older clips: faststart MP4), or a browser without MSE, gets `null` from
// `streamClip` before any video element is made, and clips.js plays it the old way.
//
// What is shown when:
// * Every chunk is authenticated by its tag, with its index and the last-chunk flag in the
//   nonce, before a byte of it reaches the SourceBuffer: nothing unauthenticated is played.
// * While chunks are still missing, the status says "checking", never "verified": the
//   camera signed hashes of the whole clip, which only the whole clip can match.
// * A seek to a part not yet fetched restarts the download at the chunk holding that
//   fragment; once the end is reached, the chunks skipped over are fetched in the
//   background. So every chunk is always fetched and checked, and the whole-clip sizes and
//   SHA-256 (of the ciphertext and of the MP4) are always checked: only then "verified".
// * A chunk that fails its tag, or a size or hash that does not match: the video is
//   stopped and removed at once, the error thrown to clips.js, which says why.
//
// The whole-clip SHA-256s are WebCrypto digests of the whole ciphertext and plaintext at the
// end, not incremental ones: after a seek the chunks arrive out of order, so an in-order
// incremental hash would have to keep them all anyway, and both buffers are kept regardless
// (the ciphertext for its hash, the MP4 for the download and for re-appending fragments the
// browser evicted). WebCrypto hashes off the main thread, where a JS SHA-256 (noble) would
// compete with playback for it.

import * as P from "./primitives.js";

const HEADER_BYTES = 16;
const TAG_BYTES = 16;
// Chunks per Range request after the first (which is one chunk: enough to tell the layout).
// 4 x the agent's 256 KiB chunks = 1 MiB a request.
export const WINDOW_CHUNKS = 4;
// A fragmented clip's moov holds no samples (a few KB); a bigger one is a faststart index.
const MAX_INIT = 1024 * 1024;
const MAX_SIDX = 4 * 1024 * 1024;

// The clip's <video>, either way it plays (clips.js makes one for a clip played whole).
export function clipVideo(poster, preload) {
  const video = document.createElement("video");
  video.id = "clip-video";
  video.controls = true;
  video.playsInline = true;
  video.preload = preload;
  if (poster) video.poster = poster;
  return video;
}

export class HashMismatch extends P.E2EError {
  constructor(message) { super("HashMismatch", message); }
}

// ---- ISO-BMFF -----------------------------------------------------------------------------

// The box at `at` in `bytes`: {type, start, body, end}, or null when its header is not all
// there yet. `end` may lie past the bytes at hand.
export function boxAt(bytes, at) {
  if (at + 8 > bytes.length) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size = view.getUint32(at);
  const type = String.fromCharCode(bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]);
  let body = at + 8;
  if (size === 1) {
    if (at + 16 > bytes.length) return null;
    size = Number(view.getBigUint64(at + 8));
    body = at + 16;
  } else if (size === 0) {
    size = Infinity; // to the end of the file
  }
  if (size < body - at) throw new P.Malformed(`a ${JSON.stringify(type)} box is shorter than its header`);
  return { type, start: at, body, end: at + size };
}

// The boxes directly inside [start, end) of `bytes` (all of it there).
export function children(bytes, start, end) {
  const out = [];
  for (let at = start; at < end;) {
    const box = boxAt(bytes, at);
    if (!box || box.end > end) throw new P.Malformed("a box runs past its parent");
    out.push(box);
    at = box.end;
  }
  return out;
}

function find(bytes, text, from, to) {
  const codes = Array.from(text, (c) => c.charCodeAt(0));
  outer: for (let i = from; i + codes.length <= to; i++) {
    for (let j = 0; j < codes.length; j++) if (bytes[i + j] !== codes[j]) continue outer;
    return i;
  }
  return -1;
}

// The MSE type of an init segment, as the live view's (agent/live/tap.py): the H.264
// profile from avcC, and the AAC object type from the esds's AudioSpecificConfig if there
// is an audio track. null if there is no H.264 track.
export function mimeOf(bytes, start, end) {
  const avcc = find(bytes, "avcC", start, end);
  if (avcc < 0 || avcc + 8 > end || bytes[avcc + 4] !== 1) return null;
  const hex2 = (b) => b.toString(16).padStart(2, "0");
  let codecs = `avc1.${hex2(bytes[avcc + 5])}${hex2(bytes[avcc + 6])}${hex2(bytes[avcc + 7])}`;
  const mp4a = find(bytes, "mp4a", start, end);
  if (mp4a >= 0) {
    let objectType = 2;
    const esds = find(bytes, "esds", mp4a, end);
    const asc = esds >= 0 ? decoderSpecificInfo(bytes, esds + 8, end) : -1;
    if (asc >= 0 && bytes[asc] >> 3) objectType = bytes[asc] >> 3;
    codecs += `, mp4a.40.${objectType}`;
  }
  return `video/mp4; codecs="${codecs}"`;
}

// The offset of the AudioSpecificConfig in an esds body (MPEG-4 descriptors), or -1.
function decoderSpecificInfo(bytes, at, end) {
  const descriptor = (pos) => {
    if (pos >= end) return null;
    const tag = bytes[pos++];
    let length = 0;
    for (let i = 0; i < 4 && pos < end; i++) {
      const b = bytes[pos++];
      length = (length << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    return { tag, body: pos, end: Math.min(end, pos + length) };
  };
  const es = descriptor(at);
  if (!es || es.tag !== 0x03) return -1;
  let pos = es.body + 2;
  const flags = bytes[pos++];
  if (flags & 0x80) pos += 2;
  if (flags & 0x40) pos += 1 + bytes[pos];
  if (flags & 0x20) pos += 2;
  const config = descriptor(pos);
  if (!config || config.tag !== 0x04) return -1;
  const info = descriptor(config.body + 13);
  return info && info.tag === 0x05 && info.body < end ? info.body : -1;
}

function parseSidx(bytes, box, size) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = box.body;
  const version = bytes[at];
  at += 8; // version, flags, reference_ID
  const timescale = view.getUint32(at);
  at += 4;
  let earliest;
  let firstOffset;
  if (version === 0) {
    earliest = view.getUint32(at);
    firstOffset = view.getUint32(at + 4);
    at += 8;
  } else {
    earliest = Number(view.getBigUint64(at));
    firstOffset = Number(view.getBigUint64(at + 8));
    at += 16;
  }
  const count = view.getUint16(at + 2);
  at += 4;
  if (!timescale || at + 12 * count > box.end) throw new P.Malformed("the clip's segment index is malformed");
  const fragments = [];
  let offset = box.end + firstOffset;
  let time = earliest;
  for (let i = 0; i < count; i++, at += 12) {
    const word = view.getUint32(at);
    if (word >>> 31) return null; // refers to another sidx: not the layout the camera writes
    const length = word & 0x7fffffff;
    const duration = view.getUint32(at + 4);
    fragments.push({ offset, end: offset + length, start: time / timescale, until: (time + duration) / timescale });
    offset += length;
    time += duration;
  }
  if (!fragments.length || offset > size) throw new P.Malformed("the clip's segment index runs past its end");
  return { fragments, duration: time / timescale };
}

// What the start of a clip's MP4 says about its layout: {more: true} while undecided,
// {fragmented: false} for anything but ftyp + moov (with mvex) + sidx, else the layout:
// {fragmented: true, initEnd, mime, duration, fragments: [{offset, end, start, until}]}.
export function layoutOf(plain, have, size) {
  const bytes = plain.subarray(0, have);
  const more = { more: true };
  const ftyp = boxAt(bytes, 0);
  if (!ftyp) return have >= size ? { fragmented: false } : more;
  if (ftyp.type !== "ftyp" || ftyp.end > MAX_INIT) return { fragmented: false };
  const moov = boxAt(bytes, ftyp.end);
  if (!moov) return have >= size ? { fragmented: false } : more;
  if (moov.type !== "moov" || moov.end > MAX_INIT) return { fragmented: false };
  const sidx = boxAt(bytes, moov.end);
  if (!sidx) return have >= size ? { fragmented: false } : more;
  if (sidx.type !== "sidx" || sidx.end - sidx.start > MAX_SIDX) return { fragmented: false };
  if (sidx.end > have) return have >= size ? { fragmented: false } : more;
  if (!children(bytes, moov.body, moov.end).some((box) => box.type === "mvex")) return { fragmented: false };
  const mime = mimeOf(bytes, moov.body, moov.end);
  const index = parseSidx(bytes, sidx, size);
  if (!mime || !index) return { fragmented: false };
  return { fragmented: true, initEnd: moov.end, mime, ...index };
}

// ---- the sealed chunks ----------------------------------------------------------------------

async function fetchRange(url, start, end, signal) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Range: `bytes=${start}-${end - 1}` }, signal });
  if (response.status !== 206) {
    response.body?.cancel().catch(() => {});
    if (response.ok) return null; // the server ignored the range
    throw new P.E2EError("Server", `the server answered ${response.status} for the sealed clip`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length !== end - start) throw new P.Truncated(`the server sent ${bytes.length} of the ${end - start} bytes asked for`);
  return bytes;
}

const mediaSourceClass = () => globalThis.MediaSource || globalThis.ManagedMediaSource || null;

// The clip streamed into a video element: `null` (nothing made, nothing shown) if it cannot
// be (no MSE, not fragmented, a codec this browser lacks); else it resolves with the verified
// MP4 once every chunk and both hashes matched, or rejects after removing the video.
//
// opts: {facts, manifest, key (raw bytes), poster, mount(video) -> undo, progress(k, n)}
export async function streamClip({ facts, manifest, key, poster, mount, progress }) {
  const Source = mediaSourceClass();
  if (!Source) return null;
  const url = facts.ciphertext_url;
  const head = await fetchRange(url, 0, HEADER_BYTES);
  if (!head) return null;
  const chunkSize = P.readHeader(head);
  const size = manifest.size;
  const count = Math.max(1, Math.ceil(size / chunkSize));
  if (manifest.ciphertext_size !== HEADER_BYTES + size + count * TAG_BYTES) {
    throw new HashMismatch("the sealed clip is not the size the camera signed");
  }
  const clip = new SealedClip(url, head, chunkSize, count, size, manifest, key);
  await clip.init();
  // The layout, from the first chunks.
  let layout;
  for (;;) {
    layout = layoutOf(clip.plain, clip.prefix(), size);
    if (!layout.more) break;
    await clip.fetchWindow(clip.prefix() === 0 ? 1 : WINDOW_CHUNKS);
  }
  if (!layout.fragmented || !Source.isTypeSupported(layout.mime)) {
    clip.abort();
    return null;
  }
  return clip.play(layout, Source, poster, mount, progress);
}

class SealedClip {
  constructor(url, header, chunkSize, count, size, manifest, key) {
    Object.assign(this, { url, header, chunkSize, count, size, manifest, keyRaw: key });
    this.cipher = new Uint8Array(manifest.ciphertext_size);
    this.cipher.set(header);
    this.plain = new Uint8Array(size);
    this.seen = new Uint8Array(count);
    this.checked = 0;
    this.cursor = 0; // the next chunk wanted (a seek moves it)
    this.seeks = 0;
    this.window = null; // {from, to, controller} in flight
    this.failure = null;
    this.onChunks = () => {};
  }

  async init() {
    this.key = await crypto.subtle.importKey("raw", this.keyRaw, "AES-GCM", false, ["decrypt"]);
  }

  span(index) { return P.sealedSpan(index, this.size, this.chunkSize); }

  // Plaintext bytes decrypted from the start on, without a gap.
  prefix() {
    let i = 0;
    while (i < this.count && this.seen[i]) i++;
    return Math.min(this.size, i * this.chunkSize);
  }

  // The first chunk not yet checked from the cursor on, then from the start.
  next() {
    for (let i = this.cursor; i < this.count; i++) if (!this.seen[i]) return i;
    for (let i = 0; i < this.cursor; i++) if (!this.seen[i]) return i;
    return -1;
  }

  abort() { this.window?.controller.abort(); }

  // Fetches up to `most` chunks from next(), opens each by its tag, in order; a
  // rejection is a refusal. Returns quietly if a seek aborted it.
  async fetchWindow(most) {
    const from = this.next();
    if (from < 0) return;
    let to = from;
    while (to < this.count && to - from < most && !this.seen[to]) to++;
    const controller = new AbortController();
    const window = { from, to, controller };
    this.window = window;
    const seeks = this.seeks;
    const start = this.span(from)[0];
    const end = this.span(to - 1)[1];
    let sealed;
    try {
      sealed = await fetchRange(this.url, start, end, controller.signal);
    } catch (exc) {
      if (controller.signal.aborted) return;
      throw exc;
    } finally {
      if (this.window === window) this.window = null;
    }
    if (!sealed) throw new P.E2EError("Server", "the server did not answer a byte range of the sealed clip");
    const opened = [];
    for (let i = from; i < to; i++) {
      const [a, b] = this.span(i);
      const chunk = sealed.subarray(a - start, b - start);
      const p = crypto.subtle.decrypt(
        { name: "AES-GCM", iv: P.chunkNonce(this.header, i, i === this.count - 1), additionalData: this.header },
        this.key, chunk,
      );
      p.catch(() => {}); // awaited below, in order
      opened.push(p);
    }
    for (let i = from; i < to; i++) {
      let part;
      try {
        part = new Uint8Array(await opened[i - from]);
      } catch {
        throw new P.ChunkTampered(i);
      }
      if (this.seen[i]) continue; // fetched twice (a seek raced it): the same bytes
      const [a, b] = this.span(i);
      this.cipher.set(sealed.subarray(a - start, b - start), a);
      this.plain.set(part, i * this.chunkSize);
      this.seen[i] = 1;
      this.checked++;
    }
    if (seeks === this.seeks) this.cursor = to;
    this.onChunks();
  }

  // A seek to `time`: the fragment there, from memory if its chunks are in, else the
  // download restarts at the chunk holding the fragment's first byte.
  seekTo(time) {
    const frags = this.layout.fragments;
    let f = frags.findIndex((x) => time < x.until);
    if (f < 0) f = frags.length - 1;
    const frag = frags[f];
    const first = Math.floor(frag.offset / this.chunkSize);
    const last = Math.floor((frag.end - 1) / this.chunkSize);
    let all = true;
    for (let i = first; i <= last; i++) if (!this.seen[i]) all = false;
    if (all) {
      this.queueFragment(f, true);
      return;
    }
    // Always a new request from that chunk, even if the one in flight would get there:
    // one rule, and the sought fragment never waits behind the chunks before it.
    this.seeks++;
    this.cursor = first;
    this.abort();
  }

  queueFragment(f, again = false) {
    if (this.appended[f] && !again) return;
    const frag = this.layout.fragments[f];
    this.appended[f] = 1;
    this.queue.push(this.plain.subarray(frag.offset, frag.end));
    this.pump();
  }

  // Every fragment whose chunks are all checked, into the SourceBuffer once.
  feed() {
    this.layout.fragments.forEach((frag, f) => {
      if (this.appended[f]) return;
      const first = Math.floor(frag.offset / this.chunkSize);
      const last = Math.floor((frag.end - 1) / this.chunkSize);
      for (let i = first; i <= last; i++) if (!this.seen[i]) return;
      this.queueFragment(f);
    });
  }

  pump() {
    const buffer = this.buffer;
    if (!buffer || buffer.updating || this.failure) return;
    if (!this.queue.length) {
      if (this.finished && this.source.readyState === "open") this.source.endOfStream();
      return;
    }
    try {
      buffer.appendBuffer(this.queue.shift());
    } catch (exc) {
      // QuotaExceededError: the browser keeps less than the clip; what it evicts is appended
      // again from memory when sought (seekTo). Anything else: the video cannot play.
      if (exc.name !== "QuotaExceededError") this.fail(new P.E2EError("Player", `the video could not be played: ${exc.message}`));
    }
  }

  fail(exc) {
    if (!this.failure) this.failure = exc;
    this.abort();
    const video = this.video;
    if (video) {
      video.pause();
      try { if (this.source.readyState === "open") this.source.endOfStream("decode"); } catch { /* closed */ }
      video.removeAttribute("src");
      video.load();
    }
    this.unmount?.();
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
  }

  async play(layout, Source, poster, mount, progress) {
    this.layout = layout;
    this.appended = new Uint8Array(layout.fragments.length);
    this.queue = [this.plain.slice(0, layout.initEnd)];
    this.finished = false;
    const video = clipVideo(poster, "auto");
    const source = new Source();
    if (Source !== globalThis.MediaSource) video.disableRemotePlayback = true; // ManagedMediaSource
    this.video = video;
    this.source = source;
    this.objectUrl = URL.createObjectURL(source);
    const opened = new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
    video.src = this.objectUrl;
    this.unmount = mount(video);
    video.addEventListener("seeking", () => {
      const t = video.currentTime;
      const ranges = video.buffered;
      for (let i = 0; i < ranges.length; i++) if (ranges.start(i) <= t && t < ranges.end(i)) return;
      this.seekTo(t);
    });
    video.addEventListener("error", () => {
      this.fail(new P.E2EError("Player", `the video could not be played (error ${video.error?.code})`));
    });
    try {
      await opened;
      if (this.failure) throw this.failure;
      this.buffer = source.addSourceBuffer(layout.mime);
      this.buffer.mode = "segments"; // each fragment at its own tfdt, in whatever order it comes
      this.buffer.addEventListener("updateend", () => this.pump());
      source.duration = layout.duration; // the whole clip seekable from the start
      this.pump();
      this.feed();
      progress(this.checked, this.count);
      this.onChunks = () => {
        this.feed();
        progress(this.checked, this.count);
      };
      while (this.checked < this.count) {
        if (this.failure) throw this.failure;
        // A seek aborts the window in flight: this returns, and the next window starts at
        // the new cursor.
        await this.fetchWindow(WINDOW_CHUNKS);
      }
      if (this.failure) throw this.failure;
      await this.verify();
      this.finished = true;
      this.pump();
      return this.plain;
    } catch (exc) {
      this.fail(exc);
      throw this.failure;
    }
  }

  async verify() {
    const m = this.manifest;
    if (P.hex(await P.sha256(this.cipher)) !== m.ciphertext_sha256) {
      throw new HashMismatch("the sealed clip is not the one the camera signed");
    }
    if (P.hex(await P.sha256(this.plain)) !== m.sha256) {
      throw new HashMismatch("the decrypted video is not the one the camera recorded");
    }
  }
}
