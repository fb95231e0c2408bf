"""A third-party ADMS terminal against our receiver: django-fingerprint-attendance's
`ADMSDeviceSimulator` (PyPI, MIT), written for Django's test client, talks here to a
real server over a real socket through a small adapter with the same call shape.

Usage: python adms_device_simulator.py URL SERIAL:FIRMWARE...

Each terminal (firmware: legacy, push2 or biodata) handshakes, uploads a user's name
(OPERLOG), punches 30 times uploading each at once, goes offline for 20 more punches,
comes back (handshake, catch-up upload), carries out the commands queued for it
(acknowledging them), and uploads whatever those commands asked it to send again.
Prints one JSON object: per serial, the punches it made, every HTTP status it got and
the commands it carried out.
"""

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fingerprint_attendance.testing import ADMSDeviceSimulator


class Response:
    def __init__(self, status_code, content):
        self.status_code = status_code
        self.content = content


class SocketClient:
    """Django test `Client`'s get/post, sent to `base` over HTTP."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.statuses = []

    def _send(self, request):
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                response = Response(answer.status, answer.read())
        except urllib.error.HTTPError as error:
            response = Response(error.code, error.read())
        self.statuses.append(response.status_code)
        return response

    def get(self, path, params=None, **_meta):
        query = f"?{urlencode(params)}" if params else ""
        return self._send(urllib.request.Request(f"{self.base}{path}{query}"))

    def post(self, path, data=b"", content_type="text/plain", **_meta):
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, headers={"Content-Type": content_type}
        )
        return self._send(request)


def drive(base, serial, firmware, first):
    client = SocketClient(base)
    device = ADMSDeviceSimulator(client, serial=serial, firmware=firmware)
    device.handshake()
    device.push_user("1001", name="Ama Mensah")
    for i in range(30):
        device.punch(str(1001 + i % 5), first + timedelta(minutes=i), status=i % 2)
    device.go_offline()
    for i in range(30, 50):
        device.punch(str(1001 + i % 5), first + timedelta(minutes=i), status=i % 2)
    device.go_online()
    executed = device.run_commands()
    device.upload_pending()
    return {
        "punches": [[p.pin, p.when.strftime("%Y-%m-%d %H:%M:%S")] for p in device.log],
        "statuses": client.statuses,
        "executed": executed,
    }


def main():
    base, terminals = sys.argv[1], sys.argv[2:]
    first = datetime(2026, 9, 14, 7, 30)
    report = {}
    for index, terminal in enumerate(terminals):
        serial, firmware = terminal.split(":")
        report[serial] = drive(base, serial, firmware, first + timedelta(days=index))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
