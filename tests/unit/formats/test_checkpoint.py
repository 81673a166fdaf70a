"""Signed checkpoints: published vectors from the reference implementations, round trips,
each kind of tampering refused, and strict parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doorwarden.crypto.keys import SigningKey
from doorwarden.formats.checkpoint import (
    LOG_KEY_INFO,
    MAX_NOTE_BYTES,
    MAX_SIZE,
    Checkpoint,
    CheckpointError,
    NoteKey,
    log_key,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

# golang/mod, sumdb/note/note_test.go (TestSign, TestOpen): keys, text and signatures.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01o"
    "OTGwnWLox33WWd1RvMc+QQ=\n"
).encode()

# transparency-dev/formats, log/note_test.go (TestSumDBNoteParsing): a real
# sum.golang.org checkpoint and the Go checksum database's public key.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
    "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949r"
    "j4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
).encode()
# Same file: a key pair as (verifier key, private key) strings.
TD_LOG_VKEY = "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs"
TD_LOG_SEED = base64.b64decode("AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ")[1:]

ORIGIN = "door.example.org/log"
CP = Checkpoint(ORIGIN, 42, hashlib.sha256(b"root").digest())
SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))


def _vkey(name: str, seed: bytes) -> str:
    return NoteKey(name, SigningKey.from_bytes(seed).public).verifier()


def _key(name: str, seed: bytes) -> NoteKey:
    return NoteKey.from_verifier(_vkey(name, seed))


# -- published vectors ---------------------------------------------------------------


def test_our_signature_matches_the_go_reference_byte_for_byte() -> None:
    assert sign_note(TEXT, "PeterNeumann", PETER_SEED) == TEXT + b"\n" + PETER_SIG


def test_the_reference_note_opens_with_either_cosigner() -> None:
    note = TEXT + b"\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, NoteKey.from_verifier(PETER_VKEY)) == TEXT
    assert open_note(note, NoteKey.from_verifier(ENOCH_VKEY)) == TEXT


def test_a_real_sumdb_checkpoint_verifies() -> None:
    cp = open_checkpoint(
        SUMDB_NOTE, NoteKey.from_verifier(SUMDB_VKEY), origin="go.sum database tree"
    )
    assert cp.size == 6476701
    assert cp.root == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert cp.extensions == ()


def test_verifier_keys_round_trip_and_derive_like_the_reference() -> None:
    for vkey in (PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY, TD_LOG_VKEY):
        assert NoteKey.from_verifier(vkey).verifier() == vkey
    assert _vkey("Log", TD_LOG_SEED) == TD_LOG_VKEY
    assert _vkey("PeterNeumann", PETER_SEED) == PETER_VKEY
    assert NoteKey.from_verifier(PETER_VKEY).key_id == bytes.fromhex("c74f20a3")


@pytest.mark.parametrize(
    "vkey",
    [
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),  # ID does not match
        PETER_VKEY.replace("Peter", "Petra"),  # name does not match the ID
        PETER_VKEY.replace("+ARpc", "+AhPc"),  # other algorithm byte
        PETER_VKEY[:-4],  # truncated key
        PETER_VKEY + "AA==",  # key too long
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # golang/mod note_test.go: wrong length and unknown algorithm, IDs adjusted.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        NoteKey.from_verifier(vkey)


# -- round trips and tampering -------------------------------------------------------

KEY = _key(ORIGIN, SEED)
SIGNED = sign_checkpoint(CP, ORIGIN, SEED)


def test_signed_checkpoint_layout_and_round_trip() -> None:
    body, sigs = SIGNED.split(b"\n\n")
    assert (
        body + b"\n"
        == CP.body()
        == f"{ORIGIN}\n42\n{base64.b64encode(CP.root).decode()}\n".encode()
    )
    assert sigs.decode().startswith(f"\u2014 {ORIGIN} ")
    assert open_checkpoint(SIGNED, KEY, origin=ORIGIN) == CP


def test_one_changed_body_byte_is_refused() -> None:
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(SIGNED.replace(b"\n42\n", b"\n43\n"), KEY)


def test_one_changed_signature_byte_is_refused() -> None:
    body, line = SIGNED.split(b"\n\n")
    prefix, encoded = line.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 1
    note = body + b"\n\n" + prefix + b" " + base64.b64encode(bytes(raw)) + b"\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(note, KEY)


def test_a_signature_under_another_key_id_or_name_is_not_ours() -> None:
    body, line = SIGNED.split(b"\n\n")
    prefix, encoded = line.rstrip(b"\n").rsplit(b" ", 1)
    raw = base64.b64decode(encoded)
    swapped = body + b"\n\n" + prefix + b" " + base64.b64encode(b"\0\0\0\0" + raw[4:]) + b"\n"
    renamed = SIGNED.replace(f"\u2014 {ORIGIN} ".encode(), "\u2014 other.example ".encode())
    for note in (swapped, renamed):
        with pytest.raises(CheckpointError, match="no signature by"):
            open_checkpoint(note, KEY)


def test_cosignatures_by_other_keys_are_ignored_but_not_enough() -> None:
    witness = sign_checkpoint(CP, "witness.example", OTHER_SEED)
    cosigned = SIGNED + witness.split(b"\n\n")[1]
    assert open_checkpoint(cosigned, KEY, origin=ORIGIN) == CP
    assert open_checkpoint(cosigned, _key("witness.example", OTHER_SEED)) == CP
    with pytest.raises(CheckpointError, match="no signature by"):
        open_checkpoint(witness, KEY)


def test_another_logs_checkpoint_is_refused() -> None:
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(SIGNED, KEY, origin="other.example/log")


@pytest.mark.parametrize(
    "note",
    [
        CP.body(),  # no signatures at all
        CP.body() + b"\n",
        SIGNED.rstrip(b"\n"),  # last signature line unterminated
        SIGNED + b"Unexpected line.\n",
        SIGNED.replace(f"\u2014 {ORIGIN}".encode(), b"\xe2\x80\x94 bad name"),
        SIGNED.replace(f"\u2014 {ORIGIN}".encode(), b"- " + ORIGIN.encode()),
        b"\x01" + SIGNED,
        b"\xff" + SIGNED,
        SIGNED.replace(b"\n", b"\r\n"),
        SIGNED + b"\xe2\x80\x94 x AAAA\n",  # too short to hold an ID and a signature
    ],
)
def test_malformed_notes_are_refused(note: bytes) -> None:
    with pytest.raises(CheckpointError):
        open_checkpoint(note, KEY)


def test_size_limits_are_the_documented_ones() -> None:
    line = SIGNED.split(b"\n\n")[1]
    assert open_checkpoint(SIGNED + line * 99, KEY) == CP  # 100 signature lines
    with pytest.raises(CheckpointError, match="more than 100 signatures"):
        open_checkpoint(SIGNED + line * 100, KEY)
    overhead = len(sign_checkpoint(replace(CP, extensions=("x",)), ORIGIN, SEED)) - 1
    at_limit = replace(CP, extensions=("x" * (MAX_NOTE_BYTES - overhead),))
    assert open_checkpoint(sign_checkpoint(at_limit, ORIGIN, SEED), KEY) == at_limit
    over = replace(CP, extensions=("x" * (MAX_NOTE_BYTES - overhead + 1),))
    with pytest.raises(CheckpointError, match="larger than"):
        open_checkpoint(sign_checkpoint(over, ORIGIN, SEED), KEY)


def test_a_valid_signature_on_a_non_checkpoint_is_refused() -> None:
    with pytest.raises(CheckpointError, match="checkpoint"):
        open_checkpoint(sign_note(b"hello\n", ORIGIN, SEED), KEY)


# -- strict parsing ------------------------------------------------------------------

ROOT = base64.b64encode(CP.root)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"o\n1\n",  # no root line
        b"o\n1\n" + ROOT,  # no final newline
        b"\n1\n" + ROOT + b"\n",  # empty origin
        b"o\n01\n" + ROOT + b"\n",
        b"o\n-1\n" + ROOT + b"\n",
        b"o\n+1\n" + ROOT + b"\n",
        b"o\n 1\n" + ROOT + b"\n",
        b"o\n1_0\n" + ROOT + b"\n",
        "o\n\u0661\n".encode() + ROOT + b"\n",  # an Arabic-Indic digit, which int() accepts
        b"o\n%d\n" % (MAX_SIZE + 1) + ROOT + b"\n",
        b"o\n1\n" + ROOT[:-2] + b"\n",  # padding missing
        b"o\n1\n" + ROOT[:-2] + b"!=\n",
        b"o\n1\n" + ROOT[:-2] + b"B=\n",  # non-canonical: nonzero padding bits
        b"o\n1\n" + base64.b64encode(bytes(31)) + b"\n",
        b"o\n1\n" + base64.b64encode(bytes(33)) + b"\n",
        b"o\xff\n1\n" + ROOT + b"\n",
        b"o\r\n1\n" + ROOT + b"\n",
        b"o\t\n1\n" + ROOT + b"\n",
        b"o\n1\n" + ROOT + b"\n\n",  # empty extension line
    ],
)
def test_malformed_checkpoints_are_refused(body: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 0, bytes(32), ()),
        ("a\nb", 0, bytes(32), ()),
        ("o", -1, bytes(32), ()),
        ("o", MAX_SIZE + 1, bytes(32), ()),
        ("o", 0, bytes(31), ()),
        ("o", 0, bytes(32), ("",)),
        ("o", 0, bytes(32), ("a\nb",)),
    ],
)
def test_checkpoints_that_could_not_round_trip_cannot_be_made(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root, extensions)


LINE = st.text(st.characters(min_codepoint=0x20, codec="utf-8"), min_size=1)
CHECKPOINTS = st.builds(
    Checkpoint,
    origin=LINE,
    size=st.integers(0, MAX_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(LINE, max_size=3).map(tuple),
)


@given(CHECKPOINTS)
def test_parse_inverts_body(cp: Checkpoint) -> None:
    assert Checkpoint.parse(cp.body()) == cp


@settings(max_examples=30)
@given(CHECKPOINTS)
def test_open_inverts_sign(cp: Checkpoint) -> None:
    assert open_checkpoint(sign_checkpoint(cp, ORIGIN, SEED), KEY, origin=cp.origin) == cp


# -- the derived log key -------------------------------------------------------------


def test_log_key_is_hkdf_of_the_secret_and_signs_verifiably() -> None:
    secret = b"server secret key"
    key, seed = log_key(secret, ORIGIN)
    # RFC 5869 with an empty salt, computed independently of `cryptography`.
    prk = hmac.new(bytes(32), secret, hashlib.sha256).digest()
    assert seed == hmac.new(prk, LOG_KEY_INFO + b"\x01", hashlib.sha256).digest()
    assert log_key(secret, ORIGIN) == (key, seed)
    assert log_key(b"another secret", ORIGIN)[1] != seed
    assert open_checkpoint(sign_checkpoint(CP, ORIGIN, seed), key) == CP
    with pytest.raises(CheckpointError):
        log_key(b"", ORIGIN)
