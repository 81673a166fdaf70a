// Argon2id off the page's main thread (keyring.js): 64 MiB and a few seconds of work would
// otherwise freeze the page. The noble implementation is the audited one the bundle ships.
import { argon2id } from "/static/vendor/noble/noble.js";

self.onmessage = (event) => {
  const { password, salt, t, m, p } = event.data;
  const started = performance.now();
  try {
    const out = argon2id(password, salt, { t, m, p, dkLen: 32 });
    self.postMessage({ ok: true, out, ms: performance.now() - started });
  } catch (exc) {
    self.postMessage({ ok: false, error: String(exc && exc.message ? exc.message : exc) });
  }
};
