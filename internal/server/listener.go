package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// limitListener bounds the connections a listener holds: at most max at
// once (Accept waits for a free slot, so further clients queue in the
// kernel's backlog instead of using the process's file descriptors), and
// at most perIP from one remote address (more are closed at once), so that
// one client holding connections open cannot take every slot.
type limitListener struct {
	net.Listener
	name  string
	perIP int
	slots chan struct{}
	log   *slog.Logger

	mu       sync.Mutex
	byIP     map[string]int
	lastWarn time.Time
	closed   chan struct{}
	once     sync.Once
}

// newLimitListener wraps l; max or perIP 0 means no such limit.
func newLimitListener(l net.Listener, name string, max, perIP int, log *slog.Logger) net.Listener {
	if max <= 0 && perIP <= 0 {
		return l
	}
	ll := &limitListener{Listener: l, name: name, perIP: perIP, log: log, byIP: map[string]int{}, closed: make(chan struct{})}
	if max > 0 {
		ll.slots = make(chan struct{}, max)
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-l.closed:
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.freeSlot()
			return nil, err
		}
		ip := remoteIP(c)
		if !l.acquire(ip) {
			c.Close()
			l.freeSlot()
			l.warn(ip)
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *limitListener) acquire(ip string) bool {
	if l.perIP <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP[ip] >= l.perIP {
		return false
	}
	l.byIP[ip]++
	return true
}

func (l *limitListener) release(ip string) {
	if l.perIP > 0 {
		l.mu.Lock()
		if l.byIP[ip]--; l.byIP[ip] <= 0 {
			delete(l.byIP, ip)
		}
		l.mu.Unlock()
	}
	l.freeSlot()
}

func (l *limitListener) freeSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// warn reports refused connections, at most once a minute: a flood must not
// flood the log too.
func (l *limitListener) warn(ip string) {
	l.mu.Lock()
	now := time.Now()
	due := now.Sub(l.lastWarn) >= time.Minute
	if due {
		l.lastWarn = now
	}
	l.mu.Unlock()
	if due {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "refusing connections over the per-address limit",
			slog.String("listener", l.name), slog.String("remote_ip", ip), slog.Int("limit", l.perIP))
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
