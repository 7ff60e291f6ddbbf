package testserver

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
)

// Mail is one message an SMTPServer accepted.
type Mail struct {
	From string
	To   []string
	// Data is the message (headers and body) with the SMTP dot-stuffing
	// undone and CRLF line ends.
	Data string
	// User and Password are what the client authenticated with ("" when
	// it did not); TLS whether STARTTLS preceded the message.
	User, Password string
	TLS            bool
}

// SMTPServer is a small ESMTP server (RFC 5321) for tests: STARTTLS with
// the CA's certificate, AUTH PLAIN and LOGIN (only after STARTTLS, as real
// submission servers do), and every message handed to Mails. It accepts
// any credentials: the test asserts which were sent.
type SMTPServer struct {
	// Addr is host:port.
	Addr  string
	Mails chan Mail

	tls *tls.Config
	ln  net.Listener
	wg  sync.WaitGroup
}

// StartSMTP listens on a free loopback port.
func StartSMTP(ca *CA) (*SMTPServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtp listen: %w", err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), Mails: make(chan Mail, 16), tls: ca.Server, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = s.session(c)
			}()
		}
	}()
	return s, nil
}

// Close stops listening and waits for open sessions.
func (s *SMTPServer) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

type smtpConn struct {
	c net.Conn
	r *bufio.Reader
}

func (sc *smtpConn) reply(lines ...string) error {
	_, err := sc.c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	return err
}

func (sc *smtpConn) line() (string, error) {
	l, err := sc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(l) > 4096 {
		return "", errors.New("line too long")
	}
	return strings.TrimRight(l, "\r\n"), nil
}

func (s *SMTPServer) session(c net.Conn) error {
	sc := &smtpConn{c: c, r: bufio.NewReader(c)}
	if err := sc.reply("220 hl-test ESMTP"); err != nil {
		return err
	}
	var m Mail
	for {
		l, err := sc.line()
		if err != nil {
			return err
		}
		verb, arg, _ := strings.Cut(l, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250-hl-test"}
			if m.TLS {
				ext = append(ext, "250-AUTH PLAIN LOGIN")
			} else {
				ext = append(ext, "250-STARTTLS")
			}
			err = sc.reply(append(ext, "250 8BITMIME")...)
		case "STARTTLS":
			if m.TLS {
				err = sc.reply("503 already in TLS")
				break
			}
			if err := sc.reply("220 go ahead"); err != nil {
				return err
			}
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return err
			}
			sc = &smtpConn{c: tc, r: bufio.NewReader(tc)}
			m = Mail{TLS: true} // RFC 3207: forget everything said before
		case "AUTH":
			if !m.TLS {
				err = sc.reply("538 encryption required")
				break
			}
			err = s.auth(sc, &m, arg)
		case "MAIL":
			m.From = pathArg(arg)
			err = sc.reply("250 ok")
		case "RCPT":
			m.To = append(m.To, pathArg(arg))
			err = sc.reply("250 ok")
		case "DATA":
			if err := sc.reply("354 end with ."); err != nil {
				return err
			}
			var b strings.Builder
			for {
				dl, err := sc.line()
				if err != nil {
					return err
				}
				if dl == "." {
					break
				}
				b.WriteString(strings.TrimPrefix(dl, ".") + "\r\n")
			}
			m.Data = b.String()
			s.Mails <- m
			m = Mail{TLS: m.TLS, User: m.User, Password: m.Password}
			err = sc.reply("250 queued")
		case "RSET":
			m = Mail{TLS: m.TLS, User: m.User, Password: m.Password}
			err = sc.reply("250 ok")
		case "NOOP":
			err = sc.reply("250 ok")
		case "QUIT":
			_ = sc.reply("221 bye")
			return nil
		default:
			err = sc.reply("502 not implemented")
		}
		if err != nil {
			return err
		}
	}
}

func (s *SMTPServer) auth(sc *smtpConn, m *Mail, arg string) error {
	mech, initial, _ := strings.Cut(arg, " ")
	read := func(prompt string) (string, error) {
		if err := sc.reply("334 " + base64.StdEncoding.EncodeToString([]byte(prompt))); err != nil {
			return "", err
		}
		l, err := sc.line()
		if err != nil {
			return "", err
		}
		b, err := base64.StdEncoding.DecodeString(l)
		return string(b), err
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		var resp string
		var err error
		if initial != "" {
			var b []byte
			b, err = base64.StdEncoding.DecodeString(initial)
			resp = string(b)
		} else {
			resp, err = read("")
		}
		parts := strings.Split(resp, "\x00")
		if err != nil || len(parts) != 3 {
			return sc.reply("501 malformed PLAIN response")
		}
		m.User, m.Password = parts[1], parts[2]
	case "LOGIN":
		u, err := read("Username:")
		if err != nil {
			return sc.reply("501 malformed LOGIN response")
		}
		p, err := read("Password:")
		if err != nil {
			return sc.reply("501 malformed LOGIN response")
		}
		m.User, m.Password = u, p
	default:
		return sc.reply("504 unrecognized authentication type")
	}
	return sc.reply("235 authenticated")
}

// pathArg is the address of "FROM:<a@b> SIZE=1" or "TO:<a@b>".
func pathArg(arg string) string {
	_, addr, _ := strings.Cut(arg, ":")
	addr = strings.TrimSpace(addr)
	if i := strings.IndexByte(addr, '>'); i >= 0 {
		addr = addr[:i]
	}
	return strings.TrimPrefix(addr, "<")
}
