package webhook

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// What an unauthenticated caller can make the endpoint hold is bounded here: connections
// (limitListener), and the memory of request bodies (readBody with a bodyBudget). The CPU of
// checking signatures is bounded by the verifier (koogallery.VerifierConfig.MaxConcurrent).

// smallBodyBytes is the size up to which a body is read without a reservation: every legitimate
// basic call is far smaller, and MaxConnections bounds these bodies together.
const smallBodyBytes = 64 << 10

var (
	errBodyTooLarge = errors.New("request body is larger than the accepted limit")
	errBodyBusy     = errors.New("too many large request bodies are being read, retry later")
)

// bodyBudget is the memory that bodies over smallBodyBytes may hold at once.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

func (b *bodyBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// readBody reads at most limit bytes; a longer body is refused without reading the rest. The
// buffer is allocated once when the Content-Length is known, and grows by doubling otherwise.
// Whatever the buffer holds beyond smallBodyBytes is first reserved from the budget; a body that
// finds no room is refused (errBodyBusy). release returns the reservation once the call is
// answered.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	res := &reservation{budget: s.bodies}
	if r.ContentLength > limit {
		return nil, res.release, errBodyTooLarge
	}
	size, known := r.ContentLength, r.ContentLength >= 0
	if !known {
		size = min(4<<10, limit)
	}
	if !res.grow(size) {
		return nil, res.release, errBodyBusy
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if known || int64(cap(buf)) >= limit {
				// Full at the Content-Length or the limit: expect the end.
				return expectEnd(rd, buf, res)
			}
			next := min(max(2*int64(cap(buf)), 4<<10), limit)
			if !res.grow(next) {
				return nil, res.release, errBodyBusy
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, res.release, nil
		}
		if err != nil {
			return nil, res.release, bodyError(err)
		}
	}
}

// expectEnd returns buf if rd has nothing more to give.
func expectEnd(rd io.Reader, buf []byte, res *reservation) ([]byte, func(), error) {
	var one [1]byte
	n, err := rd.Read(one[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return buf, res.release, nil
	}
	return nil, res.release, bodyError(err)
}

// reservation is what one body holds of the budget: the size of its buffer beyond
// smallBodyBytes, all of it once the buffer is larger.
type reservation struct {
	budget *bodyBudget
	held   int64
}

// grow reserves up to n bytes in all, or reports that the budget has no room.
func (r *reservation) grow(n int64) bool {
	if n <= smallBodyBytes || n <= r.held {
		return true
	}
	if !r.budget.take(n - r.held) {
		return false
	}
	r.held = n
	return true
}

func (r *reservation) release() { r.budget.give(r.held) }

// interfaceOf is the interface label of a call's metrics: basic or kit.
func interfaceOf(k exchangeKind) string {
	if k.kit {
		return "kit"
	}
	return "basic"
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errBodyTooLarge
	}
	return errors.New("request body could not be read")
}

// limitListener accepts at most cap(slots) connections at once: Accept waits for one to close,
// and callers beyond the limit wait in the kernel's listen backlog.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, slots: l.slots}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn gives its slot back when it is closed, once.
type limitConn struct {
	net.Conn
	slots     chan struct{}
	closeOnce sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { <-c.slots })
	return err
}

// CloseWrite lets net/http half-close the connection after an error reply (431, 400), so that
// the reply is not lost to a reset while the client is still sending.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
