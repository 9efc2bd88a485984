"""A DRM vendor's SPEKE v2 key provider for the tests, built on the `cpix` library (PyPI, not
ours): it validates each request against the library's CPIX XSD, parses it with the library,
answers with a fresh key per KID and Widevine/PlayReady PSSH boxes the library builds, plus
FairPlay HLS signalling, and records what it gave so a test can decrypt with the vendor's key.

usage: speke_key_provider.py STATE_DIR [MODE]
  writes STATE_DIR/port once listening; every answer's keys go to STATE_DIR/keys.json and
  each request to STATE_DIR/requests/N.xml (with N.headers.json).
  MODE: good (default), unavailable (503), refuse (403), garbled (not XML), encrypted (the key
  in an EncryptedValue), hostile (a FairPlay line that smuggles a segment in), wrong-kid.
"""
import base64
import http.server
import json
import os
import re
import sys
import uuid

import cpix
import cpix.drm.playready
import cpix.drm.widevine
from lxml import etree

STATE, MODE = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "good")
FAIRPLAY = uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
keys = {}
os.makedirs(os.path.join(STATE, "requests"), exist_ok=True)


def answer(request_xml):
    # The library's XSD is CPIX 2.2's, which has no ContentKey@commonEncryptionScheme (CPIX
    # 2.3, mandatory in SPEKE v2): that one attribute is checked here, the rest by the schema.
    root = etree.fromstring(request_xml)
    schemes = [k.get("commonEncryptionScheme") for k in root.iter("{urn:dashif:org:cpix}ContentKey")]
    if schemes != ["cbcs"] * len(schemes) or not schemes:
        raise ValueError(f"every ContentKey must ask for cbcs, not {schemes}")
    for k in root.iter("{urn:dashif:org:cpix}ContentKey"):
        del k.attrib["commonEncryptionScheme"]
    valid, error = cpix.validate(root)
    if not valid:
        raise ValueError(f"the request does not validate against the CPIX schema: {error}")
    if root.get("version") != "2.3":
        raise ValueError(f"CPIX@version is {root.get('version')}, not 2.3")
    rules = list(root.iter("{urn:dashif:org:cpix}ContentKeyUsageRule"))
    if [r.get("intendedTrackType") for r in rules] != ["ALL"]:
        raise ValueError("the encryption contract is not one key for ALL tracks")
    request = cpix.parse(request_xml)
    content_id = request.content_id
    content_keys, systems = cpix.ContentKeyList(), cpix.DRMSystemList()
    for key in request.content_keys:
        kid = str(key.kid)
        keys.setdefault(kid, os.urandom(16))
        cek = base64.b64encode(keys[kid]).decode()
        content_keys.append(cpix.ContentKey(kid if MODE != "wrong-kid" else str(uuid.uuid4()), cek=cek, common_encryption_scheme="cbcs"))
    for system in request.drm_systems:
        kid, system_id = str(system.kid), uuid.UUID(str(system.system_id))
        pssh = media = master = None
        if system_id == cpix.WIDEVINE_SYSTEM_ID:
            pssh = cpix.drm.widevine.generate_pssh(key_ids=[kid], provider="vaultstream-tests", protection_scheme="cbcs")
        elif system_id == cpix.PLAYREADY_SYSTEM_ID:
            pssh = cpix.drm.playready.generate_pssh([{"key_id": kid, "key": keys[kid]}], "https://playready.example/rightsmanager.asmx", algorithm="AESCBC")
        elif system_id == FAIRPLAY:
            line = f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid}",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
            media = line if MODE != "hostile" else line + "\n#EXTINF:4,\nhttps://evil.example/ad.ts"
            master = line.replace("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:")
        b64 = lambda b: base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode() if b is not None else None
        systems.append(cpix.DRMSystem(kid, str(system_id), pssh=b64(pssh), hls_signaling_data=b64(media), hls_signaling_data_master=b64(master)))
    document = cpix.CPIX(content_keys=content_keys, drm_systems=systems, content_id=content_id, version="2.3")
    text = etree.tostring(document.element(), xml_declaration=True, encoding="UTF-8")
    if MODE == "encrypted":
        text = re.sub(rb"<pskc:PlainValue>([^<]*)</pskc:PlainValue>", rb"<pskc:EncryptedValue><enc:CipherData><enc:CipherValue>\1</enc:CipherValue></enc:CipherData></pskc:EncryptedValue>", text)
    with open(os.path.join(STATE, "keys.json"), "w") as f:
        json.dump({k: v.hex() for k, v in keys.items()}, f)
    return text


class Handler(http.server.BaseHTTPRequestHandler):
    count = 0

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Speke-Version", "2.0")
        self.send_header("Speke-User-Agent", "vaultstream-tests-key-provider")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Handler.count += 1
        name = os.path.join(STATE, "requests", str(Handler.count))
        with open(name + ".xml", "wb") as f:
            f.write(body)
        with open(name + ".headers.json", "w") as f:
            json.dump({k.lower(): v for k, v in self.headers.items()}, f)
        if self.headers.get("X-Speke-Version") != "2.0":
            return self.reply(400, b"Unsupported SPEKE version")
        if MODE == "unavailable":
            return self.reply(503, b"key service under maintenance")
        if MODE == "refuse":
            return self.reply(403, b"this encryptor is not entitled to content keys")
        if MODE == "garbled":
            return self.reply(200, b"<html><body>gateway error</body></html>", "text/html")
        try:
            return self.reply(200, answer(body), "application/xml")
        except Exception as e:  # a request the vendor would refuse: say why, as vendors do
            return self.reply(400, str(e).encode())


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(STATE, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(STATE, "port.tmp"), os.path.join(STATE, "port"))
server.serve_forever()
