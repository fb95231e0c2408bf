"""Read a terminal with pyzk (the most-used Python client) and print what it saw as JSON.

Used by the pyzk cross-check test and by scripts/bench-zk. pyzk is GPL-2.0 and is only
run as a separate program, never copied or linked.

usage: pyzk_read.py HOST PORT tcp|udp COMM_KEY
"""
import json
import sys
import time

from zk import ZK


def main():
    host, port, transport, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    started = time.perf_counter()
    terminal = ZK(host, port=port, timeout=30, password=key,
                  force_udp=(transport == "udp"), ommit_ping=True)
    connection = terminal.connect()
    try:
        serial = connection.get_serialnumber()
        users = connection.get_users()
        attendance = connection.get_attendance()
    finally:
        connection.disconnect()
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "serial": serial,
        "seconds": elapsed,
        "users": [{"uid": u.uid, "user_id": u.user_id, "name": u.name,
                   "privilege": u.privilege, "card": u.card} for u in users],
        "attendance": [{"user_id": a.user_id, "uid": a.uid,
                        "timestamp": a.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                        "status": a.status, "punch": a.punch} for a in attendance],
    }))


if __name__ == "__main__":
    main()
