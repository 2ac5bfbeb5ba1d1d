"""Checks a checkpoint note as a transparency-log witness would (run by tests/interop.rs).

Written from the C2SP specifications alone (https://c2sp.org/signed-note,
https://c2sp.org/tlog-checkpoint), with the `cryptography` package's Ed25519, sharing no
code with the hub:

  python note_witness.py '<json>'   {"note", "verifier_key", "origin"}

Prints {"verified": true, "tree_size", "root_hash"} when a signature line of the verifier
key verifies and the note is a checkpoint of the origin, else {"verified": false,
"reason"}. Anything else is a crash (exit code 1).
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = 0x01


def parse_verifier_key(vkey):
    name, key_id, key = vkey.split("+", 2)
    key = base64.b64decode(key, validate=True)
    if key[0] != ED25519 or len(key) != 33:
        raise ValueError("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if bytes.fromhex(key_id) != expected:
        raise ValueError("key id does not match the key")
    return name, expected, Ed25519PublicKey.from_public_bytes(key[1:])


def check(note, vkey, origin):
    name, key_id, public_key = parse_verifier_key(vkey)
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        return {"verified": False, "reason": "not a signed note"}
    text += "\n"
    signed = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            return {"verified": False, "reason": "malformed signature line"}
        line_name, blob = line[2:].split(" ")
        blob = base64.b64decode(blob, validate=True)
        if line_name != name or blob[:4] != key_id:
            continue
        try:
            public_key.verify(blob[4:], text.encode())
        except InvalidSignature:
            return {"verified": False, "reason": "bad signature"}
        signed = True
    if not signed:
        return {"verified": False, "reason": "no signature by the verifier key"}
    lines = text.split("\n")
    if lines[0] != origin:
        return {"verified": False, "reason": "another origin"}
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32 or not lines[1].isdigit():
        return {"verified": False, "reason": "not a checkpoint"}
    return {"verified": True, "tree_size": int(lines[1]), "root_hash": lines[2]}


def main():
    request = json.loads(sys.argv[1])
    result = check(request["note"], request["verifier_key"], request["origin"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
