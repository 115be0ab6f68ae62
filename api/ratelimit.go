package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is a token bucket per client address for the public endpoints: rate requests a
// second, up to burst at once. Idle buckets are dropped after a minute.
type limiter struct {
	rate, burst float64
	header      string // a trusted proxy's client-address header, or "" for the peer address

	mu      sync.Mutex
	clients map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, header string) *limiter {
	if burst < 1 {
		burst = max(1, int(math.Ceil(rate)))
	}
	return &limiter{rate: rate, burst: float64(burst), header: header, clients: map[string]*bucket{}}
}

// take spends a token of key's bucket, or says how long until one is there.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.clients {
			if now.Sub(b.last) > time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	b, ok := l.clients[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.clients[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *limiter) client(r *http.Request) string {
	if l.header != "" {
		if v := r.Header.Get(l.header); v != "" {
			return v
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limit answers 429 with Retry-After when the client's bucket is empty.
func (s *server) limit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.limiter.take(s.limiter.client(r), time.Now())
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			s.metrics.limited.Inc()
			writeProblem(w, problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
				"this address has made more public requests than the limit allows; retry after "+strconv.Itoa(max(1, secs))+" s"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
