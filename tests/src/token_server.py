"""A token server for the registry tests: Docker's bearer-token flow
(https://distribution.github.io/distribution/spec/auth/token/) in front of
the real distribution registry, which checks the tokens it signs.

GET /token?service=S&scope=repository:NAME:ACTIONS... with Basic
credentials of a known user answers {"token": JWT} granting the actions
asked for; without credentials a token granting nothing (as Docker Hub
does for a private repository); with wrong ones 401. The JWT is ES256,
signed with `openssl dgst` by the key whose self-signed certificate the
registry trusts (`rootcertbundle`), and carries that certificate in its
`x5c` header. Each request is appended to requests.log.

usage: token_server.py PORT DIR USER PASSWORD ISSUER SERVICE
(DIR holds token.key and token.der)
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse

PORT, DIR, USER, PASSWORD, ISSUER, SERVICE = sys.argv[1:7]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(sig: bytes) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> r || s, 32 bytes each."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        v = sig[i + 2 : i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def sign(claims: dict) -> str:
    with open(os.path.join(DIR, "token.der"), "rb") as f:
        cert = base64.b64encode(f.read()).decode()
    header = {"typ": "JWT", "alg": "ES256", "x5c": [cert]}
    payload = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    der = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", os.path.join(DIR, "token.key")],
        input=payload.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return payload + "." + b64url(der_to_raw(der))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]})
                return
            user = u
        scopes = query.get("scope", [])
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write(json.dumps({"user": user, "scopes": scopes, "service": query.get("service")}) + "\n")
        access = []
        if user:
            for s in scopes:
                kind, name, actions = s.split(":")[0], ":".join(s.split(":")[1:-1]), s.split(":")[-1]
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 10,
            "iat": now,
            "jti": str(now) + str(os.getpid()) + str(len(scopes)),
            "access": access,
        }
        self.answer(200, {"token": sign(claims), "expires_in": 600})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
