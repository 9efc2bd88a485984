"""Runs moto in server mode on 127.0.0.1:PORT until the process that started it exits.

Usage: serve.py PORT [STATE_FILE]

Tests start one per test binary and `vaultstream dev` one per stack; polling the parent means no
server outlives whoever started it, even one killed with SIGKILL.

moto serves requests on threads but does not isolate DynamoDB requests from each other: two
concurrent TransactWriteItems can both pass their conditions and both write, which DynamoDB
never allows. DynamoDB requests are therefore served one at a time (a stricter order than
DynamoDB's, and a correct one); everything else stays concurrent, long polls included.

moto keeps everything in memory. With STATE_FILE, the backends the product uses are loaded from
it at start and written back (atomically, mode 0600) on `POST /_vaultstream/snapshot` and when
the server stops, so a restarted local stack keeps its titles, keys and ledger. Snapshots wait
for requests in flight and hold new ones back while they are taken. The file holds the
emulator's KMS key material: it is development state, never a deployment's.
"""
import copyreg
import os
import pickle
import signal
import sys
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto.backends import get_backend
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# Not Batch: moto's jobs are threads, which do not pickle. Provisioning recreates the queues and
# definitions on every start, and the local job runner keeps what it needs of unfinished jobs.
SERVICES = ["s3", "dynamodb", "dynamodbstreams", "kms", "sqs", "secretsmanager", "events", "iam", "sts"]

port = int(sys.argv[1])
state_file = sys.argv[2] if len(sys.argv) > 2 else None
parent = os.getppid()
app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()


class Gate:
    """Many requests at once, or one snapshot alone."""

    def __init__(self):
        self.cond = threading.Condition()
        self.active = 0
        self.closed = False

    def enter(self):
        with self.cond:
            while self.closed:
                self.cond.wait()
            self.active += 1

    def leave(self):
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def exclusive(self, action):
        with self.cond:
            while self.closed:
                self.cond.wait()
            self.closed = True
            while self.active:
                self.cond.wait()
        try:
            return action()
        finally:
            with self.cond:
                self.closed = False
                self.cond.notify_all()


gate = Gate()


# Locks and the cryptography package's key objects do not pickle; rebuild them on load.
def _new_rlock():
    return threading.RLock()


def _new_lock():
    return threading.Lock()


def _load_private_key(der):
    return serialization.load_der_private_key(der, None)


def _reduce_private_key(key):
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (_load_private_key, (der,))


copyreg.pickle(type(threading.RLock()), lambda _: (_new_rlock, ()))
copyreg.pickle(type(threading.Lock()), lambda _: (_new_lock, ()))
copyreg.pickle(type(rsa.generate_private_key(65537, 2048)), _reduce_private_key)
copyreg.pickle(type(ec.generate_private_key(ec.SECP256R1())), _reduce_private_key)


def save():
    if not state_file:
        return
    saved = {}
    for name in SERVICES:
        try:
            backend = get_backend(name)
            # S3 also keeps a global bucket → account index beside its per-account backends.
            extra = {"bucket_accounts": dict(backend.bucket_accounts)} if name == "s3" else {}
            saved[name] = pickle.dumps((dict(backend), extra), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # a backend moto changed under us: keep the rest, say which
            print(f"snapshot: {name} not saved: {e!r}", file=sys.stderr, flush=True)
    data = pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL)
    tmp = state_file + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, state_file)


def load():
    if not state_file or not os.path.exists(state_file):
        return
    with open(state_file, "rb") as f:
        saved = pickle.load(f)
    for name, data in saved.items():
        accounts, extra = pickle.loads(data)
        backend = get_backend(name)
        backend.update(accounts)
        for attribute, value in extra.items():
            getattr(backend, attribute).update(value)


def expose_etag(start_response):
    """Browsers uploading parts straight to presigned URLs must read each part's ETag."""

    def start(status, headers, exc_info=None):
        if not any(name.lower() == "access-control-expose-headers" for name, _ in headers):
            headers = list(headers) + [("Access-Control-Expose-Headers", "ETag")]
        return start_response(status, headers, exc_info)

    return start


def serve(environ, start_response):
    if environ.get("PATH_INFO") == "/_vaultstream/snapshot" and environ.get("REQUEST_METHOD") == "POST":
        gate.exclusive(save)
        start_response("204 No Content", [])
        return [b""]
    gate.enter()
    start_response = expose_etag(start_response)
    try:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with dynamodb:
                return list(app(environ, start_response))
        return list(app(environ, start_response))
    finally:
        gate.leave()


stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
signal.signal(signal.SIGINT, lambda *_: stopping.set())

load()
server = make_server("127.0.0.1", port, serve, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
try:
    while os.getppid() == parent and not stopping.is_set():
        time.sleep(0.25)
finally:
    gate.exclusive(save)
    server.shutdown()
