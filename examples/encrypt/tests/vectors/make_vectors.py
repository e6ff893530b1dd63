"""Known-answer vectors for the encryption middleware, made with Python's own implementation.

Generates `python.json` (committed next to this script) from `cryptography.fernet` and the
OpenAI Agents SDK's `EncryptedSession` (openai-agents==0.24.0), with fixed keys, session ids,
timestamps and IVs, and checks envelopes made by the Rust crate decrypt in Python.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install 'openai-agents[encrypt]==0.24.0'
    /tmp/venv/bin/python make_vectors.py > python.json          # regenerate the fixture
    cargo run -p dapr-session-encrypt --example rust_vectors \
        | /tmp/venv/bin/python make_vectors.py --check-rust -      # Python reads what Rust wrote

The fixture records the Python and package versions it was made with.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import platform
import random
import sys
from importlib.metadata import version
from unittest import mock

import cryptography.fernet as fernet_module
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, hmac

from agents.extensions.memory import encrypt_session
from agents.extensions.memory.encrypt_session import EncryptedSession
from agents.memory.session import SessionABC

# 2026-01-01T00:00:00Z: every timestamp below is relative to it.
T0 = 1_767_225_600


class ListSession(SessionABC):
    """An in-memory underlying session holding items exactly as a store would return them."""

    def __init__(self, session_id: str, items: list | None = None):
        self.session_id = session_id
        self.session_settings = None
        self.items = list(items or [])

    async def get_items(self, limit=None):
        if limit is None:
            return list(self.items)
        return list(self.items[-limit:]) if limit > 0 else []

    async def add_items(self, items):
        self.items.extend(items)

    async def pop_item(self):
        return self.items.pop() if self.items else None

    async def clear_session(self):
        self.items.clear()


def stored_text(item) -> str:
    """The text `DaprSession._serialize_item` stores for an item."""
    return json.dumps(item, separators=(",", ":"))


def compact(item) -> str:
    """The plaintext `EncryptedSession` encrypts for an item."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def iv_for(n: int) -> bytes:
    return bytes((n * 17 + i * 7) % 256 for i in range(16))


def master_key_cases() -> list[dict]:
    """Keys of every shape `_ensure_fernet_key_bytes` treats differently, plus seeded fuzz."""
    rng = random.Random(14)
    fernet_like = base64.urlsafe_b64encode(bytes(range(32))).decode()  # 44 chars, one '='
    with_plus = base64.b64encode(bytes(range(200, 232))).decode()  # uses '+' and '/'
    keys = [
        fernet_like,
        fernet_like.rstrip("="),  # 43 chars: "Incorrect padding" -> raw bytes
        fernet_like + "=",  # excess padding after a complete quad: ignored
        fernet_like + "==",
        fernet_like + "\n",  # newline discarded
        " " + fernet_like + " ",
        fernet_like[:10] + "!*~." + fernet_like[10:],  # non-alphabet characters discarded
        fernet_like[:20] + "=" + fernet_like[20:],  # '=' mid-quad: ignored
        fernet_like[:22] + "==" + fernet_like[22:],  # '==' ends decoding at a quad boundary
        fernet_like[:-4],  # 40 chars: 30 bytes -> raw
        fernet_like + "AAAA",  # the padding ends decoding: still 32 bytes
        fernet_like.rstrip("=") + "AAAAA",
        with_plus,  # standard alphabet is accepted too
        with_plus.replace("+", "-").replace("/", "_"),
        base64.urlsafe_b64encode(bytes(31)).decode(),  # 31 bytes -> raw
        base64.urlsafe_b64encode(bytes(33)).decode(),  # 33 bytes -> raw
        base64.urlsafe_b64encode(bytes(48)).decode(),
        "0123456789abcdef" * 4,  # a 64-char hex key: 48 bytes -> raw
        "secret",
        "correct horse battery staple",
        "ключ-🔑-" + fernet_like,  # non-ASCII: the decoder refuses str -> raw UTF-8
        fernet_like[:43] + "é",
        fernet_like[:10] + "é" + fernet_like[10:],  # would decode to 32 bytes if é were skipped
        "🙂" + fernet_like,
        "=" * 44,
        "A",
        "AB",
        "ABC",
        "ABCD",
        "AB==",
        "AB=",
        "ABC=",
        "A===",
        fernet_like.replace("A", "A\t", 3),
        fernet_like[:43] + "\x00=",
        fernet_like[:4] + "=x=" + fernet_like[4:],
    ]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/"
    junk = " \n\t!.*=~$"
    for _ in range(60):  # valid keys with seeded damage
        key = list(base64.urlsafe_b64encode(rng.randbytes(32)).decode())
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            pos = rng.randrange(len(key) + 1)
            if op == 0:
                key.insert(pos, rng.choice(junk))
            elif op == 1 and key:
                del key[min(pos, len(key) - 1)]
            elif op == 2:
                key.insert(pos, rng.choice(alphabet))
            else:
                key.insert(pos, "=")
        keys.append("".join(key))
    for _ in range(40):  # random strings near a key's length
        keys.append("".join(rng.choice(alphabet + junk) for _ in range(rng.randint(40, 48))))
    cases = []
    for key in keys:
        master = encrypt_session._ensure_fernet_key_bytes(key)
        try:
            decoded = base64.urlsafe_b64decode(key)
            decodes = len(decoded) == 32
        except (binascii.Error, ValueError):
            decodes = False
        cases.append({"key": key, "master_hex": master.hex(), "decoded": decodes})
    return cases


def derived_cases() -> list[dict]:
    keys = [
        base64.urlsafe_b64encode(bytes(range(32))).decode(),
        "correct horse battery staple",
        "0123456789abcdef" * 4,
    ]
    ids = ["user-123", "", "sess:ü/日本語/🙂", "a" * 512, "tenant||x"]
    cases = []
    for key in keys:
        for session_id in ids:
            master = encrypt_session._ensure_fernet_key_bytes(key)
            f = encrypt_session._derive_session_fernet_key(master, session_id)
            derived = f._signing_key + f._encryption_key
            cases.append(
                {
                    "key": key,
                    "session_id": session_id,
                    "fernet_key": base64.urlsafe_b64encode(derived).decode(),
                }
            )
    return cases


def sign(key: bytes, body: bytes) -> bytes:
    h = hmac.HMAC(key[:16], hashes.SHA256())
    h.update(body)
    return h.finalize()


def fernet_cases() -> tuple[list[dict], list[dict]]:
    key = base64.urlsafe_b64encode(bytes(range(100, 132)))
    f = Fernet(key)
    raw_key = base64.urlsafe_b64decode(key)
    plaintexts = [
        b"",
        b"a",
        b"0123456789abcde",
        b"0123456789abcdef",
        b"0123456789abcdefg",
        '{"role":"user","content":"héllo wörld 日本語 🙂"}'.encode(),
        bytes(range(256)) * 4,
    ]
    encrypt = []
    for n, plaintext in enumerate(plaintexts):
        token = f._encrypt_from_parts(plaintext, T0 + n, iv_for(n)).decode()
        encrypt.append(
            {
                "fernet_key": key.decode(),
                "plaintext_hex": plaintext.hex(),
                "time": T0 + n,
                "iv_hex": iv_for(n).hex(),
                "token": token,
            }
        )

    good = f._encrypt_from_parts(b"payload", T0, iv_for(9)).decode()
    raw = base64.urlsafe_b64decode(good)

    def resign(body: bytes) -> str:
        return base64.urlsafe_b64encode(body + sign(raw_key, body)).decode()

    # A block that does not unpad: encrypt 16 bytes ending in 0x00 without padding.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(raw_key[16:]), modes.CBC(iv_for(3))).encryptor()
    bad_pad_ct = enc.update(b"\x00" * 16) + enc.finalize()
    header = b"\x80" + T0.to_bytes(8, "big") + iv_for(3)
    other = Fernet(base64.urlsafe_b64encode(bytes(range(1, 33))))
    tokens = [
        ("fresh", good, 600, T0 + 10),
        ("exactly at the ttl", good, 600, T0 + 600),
        ("one second past the ttl", good, 600, T0 + 601),
        ("60 s in the future", good, 600, T0 - 60),
        ("61 s in the future", good, 600, T0 - 61),
        ("no ttl", good, None, T0 + 10**9),
        ("no ttl, far future", good, None, 0),
        ("tampered ciphertext", base64.urlsafe_b64encode(raw[:30] + bytes([raw[30] ^ 1]) + raw[31:]).decode(), 600, T0),
        ("tampered hmac", base64.urlsafe_b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode(), 600, T0),
        ("wrong key", other._encrypt_from_parts(b"payload", T0, iv_for(9)).decode(), 600, T0),
        ("bad version byte", resign(b"\x81" + raw[1:-32]), 600, T0),
        ("bad padding, authenticated", resign(header + bad_pad_ct), 600, T0),
        ("empty ciphertext, authenticated", resign(header), 600, T0),
        ("ciphertext not a block multiple, authenticated", resign(header + bad_pad_ct[:15]), 600, T0),
        ("nine bytes", base64.urlsafe_b64encode(raw[:9]).decode(), 600, T0),
        ("eight bytes", base64.urlsafe_b64encode(raw[:8]).decode(), 600, T0),
        ("empty", "", 600, T0),
        ("not base64", "!!!!", 600, T0),
        ("one extra character", good + "A", 600, T0),
        ("junk characters inside", good[:10] + "\n*" + good[10:20] + " " + good[20:], 600, T0),
        ("standard alphabet", good.replace("-", "+").replace("_", "/"), 600, T0),
        ("padding stripped", good.rstrip("="), 600, T0),
        ("timestamp far in the past, expired", resign(b"\x80" + (0).to_bytes(8, "big") + raw[9:-32]), 600, T0),
        ("timestamp u64 max", resign(b"\x80" + (2**64 - 1).to_bytes(8, "big") + raw[9:-32]), 600, T0),
        ("timestamp u64 max, no ttl", resign(b"\x80" + (2**64 - 1).to_bytes(8, "big") + raw[9:-32]), None, T0),
    ]
    decrypt = []
    for name, token, ttl, now in tokens:
        try:
            if ttl is None:
                plaintext = f.decrypt(token)
            else:
                plaintext = f.decrypt_at_time(token, ttl, now)
            result = {"ok": True, "plaintext_hex": plaintext.hex()}
        except InvalidToken:
            result = {"ok": False}
        try:
            ts = f.extract_timestamp(token)
            result["authenticated_timestamp"] = ts
        except InvalidToken:
            result["authenticated_timestamp"] = None
        decrypt.append(
            {"name": name, "fernet_key": key.decode(), "token": token, "ttl": ttl, "now": now, **result}
        )
    return encrypt, decrypt


ITEMS = [
    {"role": "user", "content": "What city is the Golden Gate Bridge in?"},
    {"role": "assistant", "content": "San Francisco."},
    {"role": "user", "content": "Grüße aus Köln, 日本語, emoji 🙂🚀, RTL עברית"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "line\nbreak \"quoted\" back\\slash \t tab", "annotations": []}]},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"},
    {"n": 1.5, "big": 12345678901234567890, "neg": -0.25, "t": True, "f": False, "z": None, "e": []},
    {"ctrl": "\u0000\u001f\u007f\u2028\u2029", "astral": "\U0001F600"},
]


def session_cases() -> list[dict]:
    key = base64.urlsafe_b64encode(bytes(range(50, 82))).decode()
    ids = ["user-123", "sess:ü/日本語/🙂"]
    cases = []
    n = 0
    for session_id in ids + ["raw-key-session"]:
        k = "correct horse battery staple" if session_id == "raw-key-session" else key
        for item in ITEMS:
            n += 1
            inner = ListSession(session_id)
            session = EncryptedSession(session_id, inner, k, ttl=600)
            with mock.patch("time.time", return_value=T0 + n + 0.75), mock.patch.object(
                fernet_module.os, "urandom", return_value=iv_for(n)
            ):
                asyncio.run(session.add_items([item]))
            (envelope,) = inner.items
            cases.append(
                {
                    "encryption_key": k,
                    "session_id": session_id,
                    "time": T0 + n,
                    "iv_hex": iv_for(n).hex(),
                    "plaintext": compact(item),
                    "stored": stored_text(envelope),
                }
            )
    return cases


def read_cases(sessions: list[dict]) -> list[dict]:
    """What `EncryptedSession.get_items` returns from mixed stored items at fixed times."""
    by_id = {}
    for case in sessions:
        by_id.setdefault((case["encryption_key"], case["session_id"]), []).append(case)
    (key, session_id), own = next(iter(by_id.items()))
    foreign = next(c for (k, s), cs in by_id.items() if s != session_id for c in cs)
    stored = [
        json.loads(own[0]["stored"]),
        {"role": "user", "content": "plain, never returned"},
        json.loads(own[1]["stored"]),
        json.loads(foreign["stored"]),  # another session's key
        {"__enc__": 1, "v": 1, "kid": "hkdf-v1"},  # no payload: not an envelope
        {"__enc__": 1, "v": 1, "kid": "hkdf-v1", "payload": "garbage"},
        json.loads(own[2]["stored"]),
        {"__enc__": 1, "v": 2, "kid": "other", "payload": json.loads(own[3]["stored"])["payload"]},
        json.loads(own[4]["stored"]),
        # Python's `== 1`: true and 1.0 mark envelopes too.
        {"__enc__": True, "v": 1, "kid": "hkdf-v1", "payload": json.loads(own[5]["stored"])["payload"]},
        {"__enc__": 1.0, "v": 1, "kid": "hkdf-v1", "payload": json.loads(own[6]["stored"])["payload"]},
    ]
    # The same items with every unreadable one newest: limited reads must widen.
    junk_last = [stored[i] for i in (0, 2, 6, 8, 9, 10, 1, 3, 4, 5, 7)]
    junk_last[-1] = {"__enc__": 1, "v": 1, "kid": "hkdf-v1", "payload": "gAAAAAB" + "A" * 90}
    reads = []
    for limit in (1, 2, 3, 7, None):
        session = EncryptedSession(session_id, ListSession(session_id, junk_last), key, ttl=600)
        with mock.patch("time.time", return_value=T0 + 10.5):
            got = asyncio.run(session.get_items(limit))
        reads.append(
            {
                "encryption_key": key,
                "session_id": session_id,
                "ttl": 600,
                "now": T0 + 10,
                "limit": limit,
                "stored": [stored_text(s) for s in junk_last],
                "expected": [compact(i) for i in got],
            }
        )
    for now, ttl, limit in [
        (T0 + 10, 600, None),
        (T0 + 10, 600, 2),
        (T0 + 10, 600, 5),
        (own[2]["time"] + 600, 600, None),  # own[0], own[1] expired, own[2] at the edge
        (own[2]["time"] + 601, 600, 1),
        (own[2]["time"] + 601, 600, 3),
        (T0 - 59, 600, None),  # the first item (T0 + 1) exactly 60 s ahead, the rest further
        (T0 - 62, 600, None),  # every item more than 60 s ahead
    ]:
        session = EncryptedSession(session_id, ListSession(session_id, stored), key, ttl=ttl)
        with mock.patch("time.time", return_value=now + 0.5):
            got = asyncio.run(session.get_items(limit))
        reads.append(
            {
                "encryption_key": key,
                "session_id": session_id,
                "ttl": ttl,
                "now": now,
                "limit": limit,
                "stored": [stored_text(s) for s in stored],
                "expected": [compact(i) for i in got],
            }
        )
    return reads


def generate() -> dict:
    encrypt, decrypt = fernet_cases()
    sessions = session_cases()
    return {
        "made_by": "examples/encrypt/tests/vectors/make_vectors.py",
        "python": platform.python_version(),
        "openai_agents": version("openai-agents"),
        "cryptography": version("cryptography"),
        "master_keys": master_key_cases(),
        "derived_keys": derived_cases(),
        "fernet_encrypt": encrypt,
        "fernet_decrypt": decrypt,
        "session_items": sessions,
        "session_reads": read_cases(sessions),
    }


def check_rust(path: str) -> int:
    """Reads envelopes the Rust crate wrote and checks `EncryptedSession` returns their items."""
    data = json.load(sys.stdin if path == "-" else open(path, encoding="utf-8"))
    failures = 0
    for case in data["cases"]:
        session_id = case["session_id"]
        stored = [json.loads(s) for s in case["stored"]]
        inner = ListSession(session_id, stored)
        session = EncryptedSession(session_id, inner, case["encryption_key"], ttl=case["ttl"])
        with mock.patch("time.time", return_value=case["now"] + 0.5):
            got = asyncio.run(session.get_items())
        want = [json.loads(text) for text in case["items"]]
        if got != want:
            failures += 1
            print(f"MISMATCH {case['name']}: {got!r} != {want!r}", file=sys.stderr)
        tokens = [s["payload"] for s in stored]
        for token, text in zip(tokens, case["items"]):
            try:
                same = session.cipher.decrypt(token) == text.encode("utf-8")
            except InvalidToken:
                same = False
            if not same:
                failures += 1
                print(f"PLAINTEXT {case['name']}: not the text Rust was given", file=sys.stderr)
    print(f"python read {len(data['cases'])} Rust cases, {failures} failures", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-rust":
        sys.exit(check_rust(sys.argv[2]))
    json.dump(generate(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
