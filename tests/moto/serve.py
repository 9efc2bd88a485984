"""Runs moto in server mode on 127.0.0.1:PORT until the process that started it exits.

Tests start one per test binary; polling the parent means no server outlives its tests.

moto serves requests on threads but does not isolate DynamoDB requests from each other: two
concurrent TransactWriteItems can both pass their conditions and both write, which DynamoDB
never allows. DynamoDB requests are therefore served one at a time (a stricter order than
DynamoDB's, and a correct one); everything else stays concurrent, long polls included.
"""
import os
import sys
import threading
import time

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

port = int(sys.argv[1])
parent = os.getppid()
app = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()


def serve(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with dynamodb:
            return list(app(environ, start_response))
    return app(environ, start_response)


server = make_server("127.0.0.1", port, serve, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.shutdown()
