"""A member's end-to-end keyring: what the server keeps so a member's private key can
reach their other devices without the server ever reading it (backups sealed by a
passphrase or a passkey's PRF output, device approval by code, retired keys sealed under
the current one)."""
