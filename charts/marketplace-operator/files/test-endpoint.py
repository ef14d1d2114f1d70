"""helm test: the marketplace endpoint answers, and signs what it answers.

Posts a basic call without a signature to ENDPOINT_URL and passes when the reply is resultCode
000001 (authentication failed) carrying a Body-Sign header that verifies with the basic key in
KEYS_DIR: HMAC-SHA256 of the exact reply body, base64, as KooGallery checks it. The key is read
and used, never printed.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import urllib.request

SIGN = re.compile(r'^\s*sign_type="HMAC-SHA256",\s*signature="([A-Za-z0-9+/=]+)"\s*$')


def main():
    url = os.environ["ENDPOINT_URL"]
    body = json.dumps({"activity": "newInstance", "instanceId": "helm-test"}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json;charset=UTF-8"})
    # The endpoint's own certificate names the public host, not the Service: trust is not what
    # this checks, the reply and its signature are.
    ctx = ssl._create_unverified_context() if url.startswith("https:") else None
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
        status, header, reply = resp.status, resp.headers.get("Body-Sign", ""), resp.read()
    if status != 200:
        return "HTTP %d from %s, want 200" % (status, url)
    code = json.loads(reply).get("resultCode")
    if code != "000001":
        return "resultCode %r, want 000001 (an unsigned call is refused)" % code
    m = SIGN.match(header)
    if not m:
        return "Body-Sign %r is not sign_type=\"HMAC-SHA256\", signature=\"<base64>\"" % header
    # The manager signs with the current basic key, read as it reads it: trailing newlines dropped.
    with open(os.path.join(os.environ["KEYS_DIR"], "basic"), "rb") as f:
        key = f.read().rstrip(b"\r\n")
    want = hmac.new(key, reply, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64decode(m.group(1)), want):
        return "Body-Sign does not verify with the basic key of the keys Secret"
    print("ok: %s answered 000001 with a Body-Sign the basic key verifies" % url)
    return None


if __name__ == "__main__":
    err = main()
    if err:
        print("FAIL: " + err, file=sys.stderr)
        sys.exit(1)
