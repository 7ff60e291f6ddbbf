//go:build !unix

package metal

import "net"

func setBroadcast(*net.UDPConn) error { return nil }
