package metal

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
)

// MagicPacket is the Wake-on-LAN payload for mac: 6×0xff then the MAC 16
// times.
func MagicPacket(mac string) ([]byte, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("%q is not a MAC address", mac)
	}
	return append(bytes.Repeat([]byte{0xff}, 6), bytes.Repeat(hw, 16)...), nil
}

// SendWakeOnLAN sends the magic packet for mac to addr (UDP host:port,
// usually the node network's broadcast address, port 9).
func SendWakeOnLAN(mac, addr string) error {
	pkt, err := MagicPacket(mac)
	if err != nil {
		return err
	}
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		return err
	}
	defer c.Close()
	if ua.IP.Equal(net.IPv4bcast) || !ua.IP.IsLoopback() {
		_ = setBroadcast(c)
	}
	_, err = c.Write(pkt)
	return err
}

// BroadcastAddr is the directed broadcast address of a CIDR with port 9.
func BroadcastAddr(cidr string) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("%q is not an IPv4 CIDR", cidr)
	}
	a := p.Masked().Addr().As4()
	bits := p.Bits()
	for i := 0; i < 4; i++ {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 1 << (7 - b)
			}
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a), 9).String(), nil
}
