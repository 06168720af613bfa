#!/usr/bin/env python3
"""Writes the lvsadm golden files by feeding the golden table (the same data as
lvsd/tests/lvsadm_golden.rs builds) through ipvsadm 1.31's own printf format strings,
copied verbatim from ipvsadm.c (print_title, print_service_entry, print_largenum,
list_all, list_conn/print_conn, list_timeout). Python's % operator implements C printf's
%-Ns / %Nd / %*llu semantics; nothing here is lvsadm code. Run from this directory."""

def largenum(i, exact):                      # print_largenum
    if exact:
        n = len("%d" % i)
        return "%*d" % (9 if n <= 8 else n + 1, i)
    if i < 100000000: return "%9d" % i
    if i < 1000000000: return "%8dK" % (i // 1000)
    if i < 100000000000: return "%8dM" % (i // 1000000)
    if i < 100000000000000: return "%8dG" % (i // 1000000000)
    return "%8dT" % (i // 1000000000000)

# (name, sched, flags text, persistent, mask, stats, rates, dests sorted by address)
# dest: (addr:port, fwd, weight, active, inactive, upper, lower, persist, stats, rates)
Z5 = (0, 0, 0, 0, 0)
SVCS = [
  ("TCP  198.18.0.10:80", "-t 198.18.0.10:80", "wlc", "", None, None,
   (1234, 123456789, 98765432109, 123456789012345, 99999999),
   (25, 250, 125, 123456789, 12500), [
    ("198.19.0.11:8000", "Masq", "-m", 2, 12, 3, 100, 50, 0,
     (1000, 100000000, 5, 999999999, 1000000000), (20, 200, 100, 100000000, 1000), ""),
    ("198.19.0.12:80", "Route", "-g", 1, 1, 200, 0, 0, 0, (234, 0, 0, 0, 0), Z5, ""),
    ("198.19.0.13:80", "Tunnel", "-i", 0, 0, 0, 0, 0, 0, Z5, Z5, " --tun-type ipip")]),
  ("UDP  198.18.0.10:53", "-u 198.18.0.10:53", "rr", "", None, None, Z5, Z5, [
    ("198.19.0.11:53", "Masq", "-m", 1, 0, 4, 0, 0, 0, Z5, Z5, ""),
    ("198.19.0.14:53", "Local", "-g", 1, 0, 0, 0, 0, 0, Z5, Z5, "")]),
  ("FWM  7", "-f 7", "sh", "sh-fallback,sh-port", 600, "255.255.255.0", Z5, Z5, [
    ("198.19.0.21:0", "Route", "-g", 1, 3, 0, 0, 0, 5, Z5, Z5, ""),
    ("198.19.0.22:0", "Tunnel", "-i", 1, 0, 0, 0, 0, 2, Z5, Z5, " --tun-type ipip")]),
]

def listing(mode, exact=False):
    o = "IP Virtual Server version %d.%d.%d (size=%d)\n" % (1, 2, 1, 4096)
    if mode == "stats":
        o += "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
    elif mode == "rate":
        o += "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
    elif mode == "thresholds":
        o += "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
    elif mode == "pconn":
        o += "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
    else:
        o += ("Prot LocalAddress:Port Scheduler Flags\n"
              "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
    for (name, _, sched, flags, pers, mask, st, rt, dests) in SVCS:
        if mode == "stats":
            o += "%-33s" % name + "".join(largenum(v, exact) for v in st)
        elif mode == "rate":
            o += "%-33s" % name + "".join(largenum(v, exact) for v in rt)
        else:
            o += "%s %s" % (name, sched)
            if flags: o += " (" + flags + ")"
            if pers is not None:
                o += " persistent %u" % pers
                if mask: o += " mask %s" % mask
        o += "\n"
        for (d, fwd, _, w, act, ina, u, l, pc, dst, drt, _) in dests:
            if mode == "stats":
                o += "  -> %-28s" % d + "".join(largenum(v, exact) for v in dst) + "\n"
            elif mode == "rate":
                o += "  -> %-28s %8u %8u %8u" % (d, drt[0], drt[1], drt[2])
                o += largenum(drt[3], exact) + largenum(drt[4], exact) + "\n"
            elif mode == "thresholds":
                o += "  -> %-28s %-10u %-10u %-10u %-10u\n" % (d, u, l, act, ina)
            elif mode == "pconn":
                o += "  -> %-28s %-9u %-11u %-10u %-10u\n" % (d, w, pc, act, ina)
            else:
                o += "  -> %-28s %-7s %-6d %-10u %-10u\n" % (d, fwd, w, act, ina)
    return o

def save():
    o = ""
    for (_, rname, sched, flags, pers, mask, _, _, dests) in SVCS:
        o += "-A %s -s %s" % (rname, sched)
        if pers is not None:
            o += " -p %u" % pers
            if mask: o += " -M %s" % mask
        if flags: o += " -b " + flags
        o += "\n"
        for (d, _, sw, w, *_rest, tun) in dests:
            o += "-a %s -r %s %s -w %d" % (rname, d, sw, w) + tun + "\n"
    return o

CONNS = [  # proto, expires s, state, client, virtual, dest
    ("TCP", 899, "ESTABLISHED", "203.0.113.7:51234", "198.18.0.10:80", "198.19.0.11:8000"),
    ("TCP", 119, "FIN_WAIT", "203.0.113.8:40000", "198.18.0.10:80", "198.19.0.12:80"),
    ("UDP", 3725, "UDP", "203.0.113.9:5353", "198.18.0.10:53", "198.19.0.14:53"),
    ("IP", 599, "NONE", "203.0.113.0:0", "0.0.0.7:0", "198.19.0.21:0"),
]

def conns():
    o = "IPVS connection entries\n"
    o += "pro expire %-11s %-18s %-18s %s\n" % ("state", "source", "virtual", "destination")
    for (p, e, s, c, v, d) in CONNS:
        o += "%-3s %-6s %-11s %-18s %-18s %s\n" % (p, "%02d:%02d" % (e // 60, e % 60), s, c, v, d)
    return o

files = {
    "list_n.txt": listing("plain"),
    "list_n_stats.txt": listing("stats"),
    "list_n_stats_exact.txt": listing("stats", True),
    "list_n_rate.txt": listing("rate"),
    "list_n_thresholds.txt": listing("thresholds"),
    "list_n_persistent_conn.txt": listing("pconn"),
    "list_nc.txt": conns(),
    "save_n.txt": save(),
    "timeout.txt": "Timeout (tcp tcpfin udp): %d %d %d\n" % (900, 120, 300),
}
for name, text in files.items():
    open(name, "w").write(text)
