package e2e

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"strconv"
	"sync"
)

// Service is the seam for a Kubernetes Service: a TCP proxy listening on
// a loopback address of its own (127.x.y.z, all of 127/8 is loopback on
// Linux) at the Service's rendered port, forwarding every connection to a
// harness's real address. Hosts gives the Service's DNS names mapped to
// that address, for a run's /etc/hosts (asrendered's Hosts): a rendered
// URL such as http://gitea-http.gitea.svc:3000 then reaches the harness
// unchanged. What it is not: no cluster DNS (search domains, short names
// resolve only as Hosts lists them), no load balancing, no
// NetworkPolicy.
type Service struct {
	Name, Namespace string
	// Port is the Service's port; IP the loopback address it listens on.
	Port int
	IP   string
	// Target is the harness's host:port.
	Target string

	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
}

// StartService starts the proxy for Service name.namespace:port.
func StartService(ctx context.Context, name, namespace string, port int, target string) (*Service, error) {
	h := fnv.New32a()
	io.WriteString(h, name+"."+namespace)
	seed := h.Sum32()
	var lc net.ListenConfig
	var lastErr error
	// Another test may hold the address the name hashes to: try on.
	for i := uint32(0); i < 64; i++ {
		n := (seed + i*7919) % (250 * 250)
		ip := fmt.Sprintf("127.%d.%d.%d", 100+n/250/250%100, n/250%250+1, n%250+2)
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		s := &Service{Name: name, Namespace: namespace, Port: port, IP: ip, Target: target, ln: ln}
		s.wg.Add(1)
		go s.serve()
		return s, nil
	}
	return nil, fmt.Errorf("service %s.%s:%d: no free loopback address: %w", name, namespace, port, lastErr)
}

func (s *Service) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.forward(c)
	}
}

func (s *Service) forward(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", s.Target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// Addr is the proxy's address (ip:port).
func (s *Service) Addr() string { return net.JoinHostPort(s.IP, strconv.Itoa(s.Port)) }

// Hosts maps the Service's DNS names (name.ns, name.ns.svc,
// name.ns.svc.cluster.local) to its address.
func (s *Service) Hosts() map[string]string {
	base := s.Name + "." + s.Namespace
	return map[string]string{base: s.IP, base + ".svc": s.IP, base + ".svc.cluster.local": s.IP}
}

// Close stops listening; open connections end with their peers.
func (s *Service) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		s.wg.Wait()
	})
	return err
}

// Hosts merges the names of several Services.
func Hosts(svcs ...*Service) map[string]string {
	out := map[string]string{}
	for _, s := range svcs {
		for k, v := range s.Hosts() {
			out[k] = v
		}
	}
	return out
}
