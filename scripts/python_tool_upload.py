"""The Python iclock-sync 1.1.0's pipeline, reduced to what decides its Firestore data:
read a terminal with pyzk, upload every punch with firebase-admin. Prints the document
IDs it handled as JSON.

Used by the Python-tool cross-check test: the documents our schoolsync schema writes
for a terminal must be indistinguishable from the ones this writes for the same
terminal (except `uploadedAt`). Per record, as the old tool did: the ID is the MD5 of
"{user_id}_{YYYY-MM-DD HH:MM:SS}"; the body holds the PIN as a string, pyzk's naive
timestamp (the device's wall time, which the client library stores as if it were
UTC), pyzk's `status` (the verify mode) and `punch` (the state), and the server time;
a get() first, then set() when the document is absent. Logs whose staffId is not a
positive number are skipped, with the old tool's message on stderr. pyzk and firebase-admin are
only run as separate programs, never copied or linked.

Runs against the emulator named by FIRESTORE_EMULATOR_HOST.
usage: python_tool_upload.py HOST PORT PROJECT
"""
import hashlib
import json
import sys

import firebase_admin
from firebase_admin import firestore
from google.auth.credentials import AnonymousCredentials
from zk import ZK


class EmulatorCredential(firebase_admin.credentials.Base):
    """No Google credentials exist here; the emulator needs none."""

    def get_credential(self):
        return AnonymousCredentials()


def main():
    host, port, project = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    terminal = ZK(host, port=port, timeout=30, ommit_ping=True)
    connection = terminal.connect()
    try:
        attendance = connection.get_attendance()
    finally:
        connection.disconnect()

    app = firebase_admin.initialize_app(EmulatorCredential(), {"projectId": project})
    db = firestore.client(app)
    ids = []
    skipped = 0
    for record in attendance:
        try:
            valid = int(record.user_id) > 0
        except ValueError:
            valid = False
        if not valid:
            skipped += 1
            continue
        when = record.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        doc_id = hashlib.md5(f"{record.user_id}_{when}".encode("utf-8")).hexdigest()
        ref = db.collection("staffAttendanceLogs").document(doc_id)
        if not ref.get().exists:
            ref.set({
                "staffId": str(record.user_id),
                "timestamp": record.timestamp,
                "status": record.status,
                "workCode": record.punch,
                "uploadedAt": firestore.SERVER_TIMESTAMP,
            })
        ids.append(doc_id)
    if skipped:
        print(f"Skipped {skipped} logs with invalid staffId", file=sys.stderr)
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
