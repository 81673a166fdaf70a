// The DWS1 sealed stream (crypto/stream.py) in the browser: chunked AES-256-GCM, opened
// chunk by chunk with WebCrypto (every browser has AES-GCM). Exported through
// primitives.js, whose errors it throws (the import cycle is safe: nothing here touches
// them until a function runs).

import { ChunkTampered, Malformed, Truncated, concat } from "./primitives.js";

const subtle = globalThis.crypto.subtle;

const HEADER_BYTES = 16;
const TAG_BYTES = 16;
const MAX_CHUNK = 16 * 1024 * 1024;
// Chunks decrypting at once: WebCrypto works off the main thread, so while the caller
// handles chunk i the next ones are already being opened. Bounded: memory stays a few chunks.
export const STREAM_AHEAD = 4;

export function readHeader(header) {
  if (header.length < HEADER_BYTES || header[0] !== 0x44 || header[1] !== 0x57 || header[2] !== 0x53 || header[3] !== 0x31) {
    throw new Malformed("not a sealed clip (bad header)");
  }
  const chunkSize = new DataView(header.buffer, header.byteOffset, HEADER_BYTES).getUint32(4);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK) throw new Malformed(`chunk size ${chunkSize} out of range`);
  return chunkSize;
}

// nonce prefix[:7] | chunk index (u32, big-endian) | 1 if last chunk else 0
export function chunkNonce(header, index, last) {
  const nonce = new Uint8Array(12);
  nonce.set(header.subarray(8, 15));
  new DataView(nonce.buffer).setUint32(7, index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

async function* pieces(sealed) {
  for await (const block of sealed) yield block instanceof Uint8Array ? block : new Uint8Array(block);
}

// Sealed chunks in order, each with whether it is the last: a chunk is known to be a middle
// one only once a byte after it has arrived, so at most one chunk is held back. Whole
// chunks inside a piece are handed on as views; only chunks spanning pieces are copied,
// once, into a buffer of their own.
async function* sealedChunks(blocks, size) {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const block of blocks) {
    let at = 0;
    while (at < block.length) {
      if (fill === size) { // more bytes follow the held chunk: it is a middle one
        yield [buf, false];
        buf = new Uint8Array(size);
        fill = 0;
      }
      if (fill === 0 && block.length - at > size) {
        yield [block.subarray(at, at + size), false];
        at += size;
        continue;
      }
      const take = Math.min(size - fill, block.length - at);
      buf.set(block.subarray(at, at + take), fill);
      fill += take;
      at += take;
    }
  }
  yield [buf.subarray(0, fill), true];
}

// The same for bytes already in memory: views into them, no copies.
function* wholeChunks(view, size) {
  let at = 0;
  while (view.length - at > size) { yield [view.subarray(at, at + size), false]; at += size; }
  yield [view.subarray(at), true];
}

async function openChunk(key, header, size, index, chunk, last) {
  const open = (isLast) => subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(header, index, isLast), additionalData: header }, key, chunk);
  if (chunk.length < TAG_BYTES) throw new Truncated("the sealed clip ends inside a chunk");
  if (last && chunk.length === size) {
    // A full last chunk: either the stream was cut after it (it opens as a middle one) or it
    // was altered.
    try { await open(false); } catch { throw new ChunkTampered(index); }
    throw new Truncated(`the sealed clip was cut after chunk ${index}`);
  }
  try {
    return new Uint8Array(await open(last));
  } catch {
    throw new ChunkTampered(index);
  }
}

// The header and the sealed chunks of `sealed` (bytes, or an async iterable of pieces).
async function split(sealed) {
  if (sealed instanceof ArrayBuffer) sealed = new Uint8Array(sealed);
  if (sealed instanceof Uint8Array) {
    if (sealed.length < HEADER_BYTES) throw new Truncated("the sealed clip ends inside its header");
    const header = sealed.slice(0, HEADER_BYTES);
    const size = readHeader(header) + TAG_BYTES;
    return { header, size, chunks: wholeChunks(sealed.subarray(HEADER_BYTES), size) };
  }
  const source = pieces(sealed);
  let head = new Uint8Array(0);
  while (head.length < HEADER_BYTES) {
    const { value, done } = await source.next(); // not for-await: `break` would close it
    if (done) throw new Truncated("the sealed clip ends inside its header");
    head = head.length ? concat(head, value) : value;
  }
  const header = head.slice(0, HEADER_BYTES);
  const size = readHeader(header) + TAG_BYTES;
  const rest = head.subarray(HEADER_BYTES);
  async function* remaining() { if (rest.length) yield rest; yield* source; }
  return { header, size, chunks: sealedChunks(remaining(), size) };
}

// The plaintext of a sealed stream, chunk by chunk. As with crypto/stream.py decrypt, a
// consumer must treat everything received as void when this throws.
export async function* decryptStream(keyRaw, sealed) {
  const { header, size, chunks } = await split(sealed);
  const key = keyRaw instanceof CryptoKey ? keyRaw : await subtle.importKey("raw", keyRaw, "AES-GCM", false, ["decrypt"]);
  const inflight = [];
  let index = 0;
  for await (const [chunk, last] of chunks) {
    const p = openChunk(key, header, size, index++, chunk, last);
    p.catch(() => {}); // awaited below, in order; no unhandled rejection meanwhile
    inflight.push(p);
    if (inflight.length >= STREAM_AHEAD) yield await inflight.shift();
  }
  while (inflight.length) yield await inflight.shift();
}

// Chunk `index`'s byte span in a sealed stream (crypto/stream.py sealed_span): for seeking.
export function sealedSpan(index, plaintextSize, chunkSize) {
  const start = HEADER_BYTES + index * (chunkSize + TAG_BYTES);
  const plain = Math.min(chunkSize, plaintextSize - index * chunkSize);
  return [start, start + plain + TAG_BYTES];
}

// Everything in one buffer (small things: thumbnails, test vectors).
export async function decryptAll(keyRaw, sealed) {
  const parts = [];
  for await (const part of decryptStream(keyRaw, sealed)) parts.push(part);
  return concat(...parts);
}
