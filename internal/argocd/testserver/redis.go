package testserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// startRedis runs redis-server as the install's argocd-redis does (no
// persistence, the password of the Secret argocd-redis), on loopback. The
// password goes into a 0600 config file, not argv, where ps would show it.
func (s *Server) startRedis(ctx context.Context) error {
	password, err := s.redisPassword()
	if err != nil {
		return err
	}
	conf := s.path("redis", "redis.conf")
	return s.launch(ctx, "redis-server", s.opts.RedisServer, "", 1, func(ports []int) ([]string, []string, func(context.Context) error) {
		s.RedisAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
		text := strings.Join([]string{
			"bind 127.0.0.1",
			"port " + strconv.Itoa(ports[0]),
			`save ""`,
			"appendonly no",
			"dir " + s.path("redis"),
			`logfile ""`,
			"requirepass " + strconv.Quote(password),
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			// The check reports it: nothing listens without a config.
			return nil, nil, func(context.Context) error { return fmt.Errorf("write %s: %w", conf, err) }
		}
		return []string{conf}, nil, redisPing(s.RedisAddr, password)
	})
}

// redisPassword is the value the components get as REDIS_PASSWORD.
func (s *Server) redisPassword() (string, error) {
	for _, component := range []string{repoServer, appController, apiServer} {
		for _, kv := range s.envs[component] {
			if v, ok := strings.CutPrefix(kv, "REDIS_PASSWORD="); ok {
				if strings.ContainsAny(v, "\r\n") {
					return "", fmt.Errorf("the argocd-redis Secret's auth holds a line break")
				}
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("install.yaml gives no component REDIS_PASSWORD (has the install layout changed?)")
}

// redisPing is a readiness check: AUTH and PING are answered +OK, +PONG.
func redisPing(addr, password string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		req := fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n", len(password), password)
		if _, err := c.Write([]byte(req)); err != nil {
			return err
		}
		r := bufio.NewReader(c)
		for _, want := range []string{"+OK", "+PONG"} {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			// Only the status word: an error line could echo the request.
			if got := strings.TrimSpace(line); got != want {
				return fmt.Errorf("redis answered %.20q, want %s", got, want)
			}
		}
		return nil
	}
}
