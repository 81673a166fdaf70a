// doorwarden's browser crypto fallback: only what WebCrypto lacks (X25519/Ed25519 on
// older engines) and the passphrase KDFs (WebCrypto has none that is memory-hard).
export { x25519, ed25519 } from "@noble/curves/ed25519.js";
export { sha256 } from "@noble/hashes/sha2.js";
export { hkdf } from "@noble/hashes/hkdf.js";
export { argon2id } from "@noble/hashes/argon2.js";
export { scrypt } from "@noble/hashes/scrypt.js";
