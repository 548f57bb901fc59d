"""Encodes the same FLOW_MOD mix as benches/flowmod.rs with os-ken (OpenFlow 1.3 parser and
Nicira extensions) and prints messages per second. Usage: osken_encode.py N"""
import sys
import time

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser


class FakeDatapath:
    ofproto = ofp
    ofproto_parser = parser


def build(n):
    dp = FakeDatapath()
    msgs = []
    for i in range(n):
        vni = 5000 + i % 64
        cookie = 0x5746000000000000 | i
        if i % 2 == 0:
            mac = "02:00:00:%02x:%02x:%02x" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)
            match = parser.OFPMatch(metadata=vni, eth_dst=mac)
            actions = [parser.OFPActionSetField(tunnel_id=vni), parser.OFPActionOutput(10 + i % 32, 0)]
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
            m = parser.OFPFlowMod(dp, cookie=cookie, table_id=30, priority=100, buffer_id=0xFFFFFFFF,
                                  out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=match, instructions=inst)
        else:
            dst = "10.0.%d.0" % ((i & 0xFFFF) >> 8)
            match = parser.OFPMatch(ct_state=(0x21, 0x21), eth_type=0x0800, ip_proto=6, reg6=i % 1000 + 1,
                                    ipv4_dst=(dst, "255.255.255.0"), tcp_dst=i % 60000 + 1)
            ct = parser.NXActionCT(flags=1, zone_src="reg13", zone_ofs_nbits=15, recirc_table=255, alg=0,
                                   actions=[parser.OFPActionSetField(ct_mark=1)])
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [ct]), parser.OFPInstructionGotoTable(25)]
            m = parser.OFPFlowMod(dp, cookie=cookie, table_id=21, priority=90, buffer_id=0xFFFFFFFF,
                                  out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=match, instructions=inst)
        m.xid = i
        msgs.append(m)
    return msgs


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    msgs = build(n)
    total = 0
    for m in msgs:
        m.serialize()
        total += len(m.buf)
    # Timed: serialize every message, repeated for about 1.5 s.
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 1.5:
        for m in msgs:
            m.buf = None
            m.serialize()
        done += n
    elapsed = time.perf_counter() - start
    print("total_bytes", total)
    for m in msgs[:2]:
        print("sample_hex", bytes(m.buf).hex())
    print("msgs_per_sec", done / elapsed)


if __name__ == "__main__":
    main()
