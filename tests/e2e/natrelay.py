"""A NAT that rebinds, for test_kcp.py's roaming test:

  natrelay.py LISTEN SERVER PERIOD READYFILE EVERY

forwards the client's datagrams to the server from a source port it
replaces every PERIOD seconds or EVERY datagrams up, whichever comes first
(so a fast transfer sees rebinds too), and the answers back. It prints
"rebind N ADDR" at each rebind and creates READYFILE once it listens."""

import select, socket, sys, time
listen, server, period = sys.argv[1], sys.argv[2], float(sys.argv[3])
every = int(sys.argv[5])
host, port = listen.rsplit(":", 1)
shost, sport = server.rsplit(":", 1)
down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
down.bind((host, int(port)))
def new_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    return s
up, client, changed, rebinds = new_up(), None, time.monotonic(), 0
sent = 0
open(sys.argv[4], "w").close()
while True:
    if time.monotonic() - changed > period or sent >= every:
        up.close()
        up, changed, rebinds = new_up(), time.monotonic(), rebinds + 1
        sent = 0
        print("rebind", rebinds, up.getsockname(), flush=True)
    r, _, _ = select.select([down, up], [], [], 0.1)
    for s in r:
        data, addr = s.recvfrom(65536)
        if s is down:
            client = addr
            up.sendto(data, (shost, int(sport)))
            sent += 1
        elif client:
            down.sendto(data, client)
