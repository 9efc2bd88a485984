"""Runs moto in server mode on 127.0.0.1:PORT until the process that started it exits.

Tests start one per test binary; polling the parent means no server outlives its tests.
"""
import os
import sys
import time

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.stop()
